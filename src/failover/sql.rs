//! SQL steps: statements run in order against a PostgreSQL server (each its own transaction,
//! through the simple query protocol, so results come back as text), the first column of the
//! first row of the last statement compared with `expect`.
//!
//! Check before act for promotion: when every statement calls `pg_promote`, the server is
//! asked `pg_is_in_recovery()` first, and a server that is already primary counts as done
//! (a try repeated after a crash does not fail on "recovery is not in progress"). Other SQL
//! runs again when a try is repeated, so it should be written to be repeatable. The try's key
//! is set as `application_name` (`watchkeeper:<key>`), visible in `pg_stat_activity` and the
//! server log.

use std::fmt;
use std::time::Duration;

use tokio_postgres::config::SslMode as PgSslMode;
use tokio_postgres::{Client, Config, NoTls, SimpleQueryMessage};

use crate::api::common::SslMode;

use super::machine::{StepFailure, StepRun};

/// Where to connect, with the password or URI resolved.
#[derive(Clone, PartialEq, Eq)]
pub enum SqlTarget {
    /// A whole connection URI (from a Secret).
    Uri(String),
    /// The parts.
    Parts {
        /// Host.
        host: String,
        /// Port.
        port: u16,
        /// Database.
        database: String,
        /// Role.
        user: String,
        /// Password, when the role has one.
        password: Option<String>,
    },
}

/// An SQL step ready to run.
#[derive(Clone, PartialEq, Eq)]
pub struct SqlCall {
    /// The server.
    pub target: SqlTarget,
    /// TLS mode asked for.
    pub ssl_mode: SslMode,
    /// Statements, in order.
    pub statements: Vec<String>,
    /// Expected text of the last statement's first value.
    pub expect: Option<String>,
    /// `statement_timeout` per statement.
    pub statement_timeout: Option<Duration>,
}

impl SqlCall {
    /// `host:port/database` for messages (never the URI, which holds the password).
    pub fn describe(&self) -> String {
        match &self.target {
            SqlTarget::Uri(uri) => match uri.parse::<Config>() {
                Ok(config) => {
                    let host = config
                        .get_hosts()
                        .first()
                        .map(|h| match h {
                            tokio_postgres::config::Host::Tcp(h) => h.clone(),
                            #[allow(unreachable_patterns)]
                            _ => "socket".to_string(),
                        })
                        .unwrap_or_default();
                    let port = config.get_ports().first().copied().unwrap_or(5432);
                    format!("{host}:{port}/{}", config.get_dbname().unwrap_or(""))
                }
                Err(_) => "the server of the connection URI".to_string(),
            },
            SqlTarget::Parts {
                host,
                port,
                database,
                ..
            } => format!("{host}:{port}/{database}"),
        }
    }
}

impl fmt::Debug for SqlCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqlCall")
            .field("target", &self.describe())
            .field("ssl_mode", &self.ssl_mode)
            .field("statements", &self.statements)
            .field("expect", &self.expect)
            .finish_non_exhaustive()
    }
}

fn config(call: &SqlCall, run: &StepRun) -> Result<Config, StepFailure> {
    let mut config = match &call.target {
        SqlTarget::Uri(uri) => uri.parse::<Config>().map_err(|_| {
            StepFailure::permanent(
                "the connection URI from the Secret is not a valid PostgreSQL URI",
            )
        })?,
        SqlTarget::Parts {
            host,
            port,
            database,
            user,
            password,
        } => {
            let mut config = Config::new();
            config.host(host).port(*port).dbname(database).user(user);
            if let Some(password) = password {
                config.password(password);
            }
            config
        }
    };
    let tls_required = matches!(
        call.ssl_mode,
        SslMode::Require | SslMode::VerifyCa | SslMode::VerifyFull
    ) || config.get_ssl_mode() == PgSslMode::Require;
    if tls_required {
        return Err(StepFailure::permanent(format!(
            "{}: TLS connections (sslMode Require, VerifyCA, VerifyFull) are not supported by the failover SQL step yet",
            call.describe()
        )));
    }
    config
        .ssl_mode(PgSslMode::Disable)
        .connect_timeout(run.timeout)
        .application_name(format!("watchkeeper:{}", run.key));
    Ok(config)
}

async fn connect(call: &SqlCall, run: &StepRun) -> Result<Client, StepFailure> {
    let (client, connection) = config(call, run)?.connect(NoTls).await.map_err(|e| {
        let message = format!("connecting to {}: {}", call.describe(), error_text(&e));
        // Wrong credentials or a missing database do not fix themselves between tries.
        let permanent = e.as_db_error().is_some_and(|db| {
            let code = db.code().code();
            code.starts_with("28") || code == "3D000"
        });
        if permanent {
            StepFailure::permanent(message)
        } else {
            StepFailure::transient(message)
        }
    })?;
    tokio::spawn(async move {
        // Ends when the client is dropped; its error surfaces on the next query.
        let _ = connection.await;
    });
    Ok(client)
}

/// The server's message (with SQLSTATE) rather than tokio-postgres' generic "db error".
fn error_text(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => format!("{} {}: {}", db.severity(), db.code().code(), db.message()),
        None => super::http::error_chain(error),
    }
}

/// The first value of the first row, as text.
async fn first_value(client: &Client, sql: &str) -> Result<Option<String>, tokio_postgres::Error> {
    let messages = client.simple_query(sql).await?;
    Ok(messages
        .iter()
        .find_map(|m| match m {
            SimpleQueryMessage::Row(row) => Some(row.get(0).map(str::to_string)),
            _ => None,
        })
        .flatten())
}

/// Whether the statements only promote a standby.
pub fn is_promotion(statements: &[String]) -> bool {
    !statements.is_empty()
        && statements
            .iter()
            .all(|s| s.to_ascii_lowercase().contains("pg_promote("))
}

/// Runs one try. A dry run connects and asks whether the server is in recovery, and runs
/// nothing.
pub async fn execute(call: &SqlCall, run: &StepRun) -> Result<String, StepFailure> {
    let client = connect(call, run).await?;
    let where_ = call.describe();
    let in_recovery = first_value(&client, "SELECT pg_is_in_recovery()")
        .await
        .map_err(|e| StepFailure::transient(format!("{where_}: {}", error_text(&e))))?
        .is_some_and(|v| v == "t");
    if is_promotion(&call.statements) && !in_recovery {
        return Ok(format!(
            "{where_} is already a primary (not in recovery); nothing run"
        ));
    }
    if run.dry_run {
        return Ok(format!(
            "dry run: connected to {where_} ({}); would run {} statement(s)",
            if in_recovery {
                "in recovery"
            } else {
                "primary"
            },
            call.statements.len()
        ));
    }
    if let Some(timeout) = call.statement_timeout {
        client
            .simple_query(&format!("SET statement_timeout = {}", timeout.as_millis()))
            .await
            .map_err(|e| StepFailure::transient(format!("{where_}: {}", error_text(&e))))?;
    }
    let mut last = None;
    for (i, statement) in call.statements.iter().enumerate() {
        last = first_value(&client, statement).await.map_err(|e| {
            let message = format!("{where_}: statement {}: {}", i + 1, error_text(&e));
            // Connection trouble may pass; an error the server reports for the SQL will not.
            if e.as_db_error().is_some() {
                StepFailure::permanent(message)
            } else {
                StepFailure::transient(message)
            }
        })?;
    }
    match (&call.expect, last) {
        (Some(expected), Some(got)) if *expected == got => Ok(format!(
            "{where_}: {} statement(s) run, result {got:?} as expected",
            call.statements.len()
        )),
        (Some(expected), got) => Err(StepFailure::permanent(format!(
            "{where_}: expected {expected:?} from the last statement, got {}",
            got.map_or_else(|| "no value".to_string(), |g| format!("{g:?}"))
        ))),
        (None, _) => Ok(format!(
            "{where_}: {} statement(s) run",
            call.statements.len()
        )),
    }
}
