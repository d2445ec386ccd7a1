//! SQL tasks: statements run one by one (each its own implicit transaction through the simple
//! query protocol, so `VACUUM` and `REINDEX DATABASE` work) against a PostgreSQL server whose
//! password or connection URI comes from a Secret, with an optional `statement_timeout`.
//!
//! A task runs in the background of the controller process; the reconcile polls it. Its
//! result is kept in memory until the reconcile records it in status. A task marked running in
//! status that this process does not know was started by a process that stopped: it is marked
//! failed and not run again (statements may have run partly; running them twice could do
//! harm).
//!
//! Connections are plain TCP: `sslMode` `Require`, `VerifyCA` and `VerifyFull` are refused
//! with a message saying so (TLS for maintenance SQL is not built yet).

use std::time::Duration;

use kube::Client;
use tokio_postgres::config::SslMode as PgSslMode;
use tokio_postgres::{Config, NoTls};

use crate::api::common::{PostgresConnection, SslMode};
use crate::api::maintenance_window::SqlTask;
use crate::controller::alerting::read_secret;

/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// What a finished SQL task reports.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SqlOutcome {
    /// Whether every statement succeeded.
    pub succeeded: bool,
    /// Statements that completed.
    pub completed: u32,
    /// Summary or error (the server's message, never credentials).
    pub message: String,
}

/// Reads the connection's Secrets and builds the client configuration.
pub async fn connection_config(
    client: &Client,
    namespace: &str,
    connection: &PostgresConnection,
) -> Result<Config, String> {
    if matches!(
        connection.ssl_mode,
        Some(SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull)
    ) {
        return Err(
            "sslMode Require, VerifyCA and VerifyFull are not supported by maintenance SQL tasks yet"
                .into(),
        );
    }
    let mut config = if let Some(uri) = &connection.uri_secret_ref {
        let text = read_secret(client, namespace, &uri.name, &uri.key)
            .await
            .map_err(|e| format!("Secret {} key {}: {e}", uri.name, uri.key))?;
        text.parse::<Config>().map_err(|_| {
            format!(
                "Secret {} key {} is not a PostgreSQL connection URI",
                uri.name, uri.key
            )
        })?
    } else {
        let mut config = Config::new();
        config
            .host(connection.host.as_deref().unwrap_or_default())
            .port(connection.port.unwrap_or(5432))
            .dbname(connection.database.as_deref().unwrap_or_default())
            .user(connection.user.as_deref().unwrap_or_default());
        if let Some(secret) = &connection.password_secret_ref {
            let password = read_secret(client, namespace, &secret.name, &secret.key)
                .await
                .map_err(|e| format!("Secret {} key {}: {e}", secret.name, secret.key))?;
            config.password(password);
        }
        config
    };
    if config.get_ssl_mode() == PgSslMode::Require {
        return Err("the connection URI asks for sslmode=require, which maintenance SQL tasks do not support yet".into());
    }
    config
        .ssl_mode(PgSslMode::Disable)
        .connect_timeout(CONNECT_TIMEOUT)
        .application_name("watchkeeper:maintenance");
    Ok(config)
}

/// Runs the task's statements in order; the first failure stops it.
pub async fn run(config: Config, task: &SqlTask) -> SqlOutcome {
    let failed = |completed: u32, message: String| SqlOutcome {
        succeeded: false,
        completed,
        message,
    };
    let (client, connection) = match config.connect(NoTls).await {
        Ok(pair) => pair,
        Err(error) => return failed(0, format!("connecting: {}", error_text(&error))),
    };
    let driver = tokio::spawn(async move {
        // Ends when the client is dropped.
        let _ = connection.await;
    });
    if let Some(timeout) = &task.statement_timeout {
        let millis = timeout.parse().map(|d| d.as_millis()).unwrap_or(0);
        if let Err(error) = client
            .simple_query(&format!("SET statement_timeout = {millis}"))
            .await
        {
            driver.abort();
            return failed(
                0,
                format!("setting statement_timeout: {}", error_text(&error)),
            );
        }
    }
    let mut completed = 0u32;
    for (i, statement) in task.statements.iter().enumerate() {
        if let Err(error) = client.simple_query(statement).await {
            drop(client);
            driver.abort();
            return failed(
                completed,
                format!("statement {} failed: {}", i + 1, error_text(&error)),
            );
        }
        completed += 1;
    }
    drop(client);
    driver.abort();
    SqlOutcome {
        succeeded: true,
        completed,
        message: format!("{completed} statement(s) completed"),
    }
}

/// The server's message with its SQLSTATE rather than the generic "db error".
fn error_text(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => format!("{} (SQLSTATE {})", db.message(), db.code().code()),
        None => error.to_string(),
    }
}
