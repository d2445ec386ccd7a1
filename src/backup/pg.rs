//! Running the PostgreSQL client tools (`pg_dump`, `pg_restore`, `psql`) against a configured
//! connection. Connection parameters go to the tools as libpq environment variables (`PGHOST`,
//! `PGPASSWORD`, …), never as arguments, so the password is not visible in the process list.

use std::path::{Path, PathBuf};
use std::process::Stdio;

use tokio::process::Command;

use super::config::{ConfigError, ConnectionConfig, secret_from_env};

/// Problems running a PostgreSQL tool.
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    /// A secret named by the config is missing, or the URI is malformed.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The tool could not be started.
    #[error("cannot run {tool}: {source}")]
    Spawn {
        /// Tool path.
        tool: String,
        /// Why.
        source: std::io::Error,
    },
    /// The tool failed; `message` is the end of its stderr.
    #[error("{tool} failed: {message}")]
    Failed {
        /// Tool name.
        tool: String,
        /// The end of its stderr.
        message: String,
    },
    /// Output that cannot be understood.
    #[error("{0}")]
    Unexpected(String),
}

/// A resolved connection: every parameter known, the password read from its env var.
#[derive(Clone)]
pub struct Conn {
    /// Host.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Database.
    pub database: String,
    /// Role.
    pub user: String,
    password: Option<String>,
    sslmode: Option<String>,
    ssl_root_cert: Option<PathBuf>,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "postgres://{}@{}:{}/{}",
            self.user, self.host, self.port, self.database
        )
    }
}

impl std::fmt::Display for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

/// Decodes `%XX` escapes of a URI component.
fn percent_decode(text: &str) -> Result<String, String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| "malformed %-escape".to_string())?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| "escape is not UTF-8".to_string())
}

/// Parses `postgres[ql]://user[:password]@host[:port]/database[?sslmode=…]` (one host).
/// Errors never contain the password.
fn parse_uri(uri: &str) -> Result<ConnectionParts, String> {
    let rest = uri
        .strip_prefix("postgresql://")
        .or_else(|| uri.strip_prefix("postgres://"))
        .ok_or("does not start with postgres:// or postgresql://")?;
    let (main, query) = rest.split_once('?').unwrap_or((rest, ""));
    let (authority, database) = main.split_once('/').unwrap_or((main, ""));
    let (userinfo, hostport) = authority.rsplit_once('@').unwrap_or(("", authority));
    let (user, password) = match userinfo.split_once(':') {
        Some((u, p)) => (u, Some(p)),
        None => (userinfo, None),
    };
    let (host, port) = if let Some(inner) = hostport.strip_prefix('[') {
        let (h, after) = inner.split_once(']').ok_or("unclosed [ in host")?;
        (h, after.strip_prefix(':'))
    } else {
        match hostport.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    if host.is_empty() || host.contains(',') {
        return Err("needs exactly one host".to_string());
    }
    let port = match port {
        Some(p) => p.parse::<u16>().map_err(|_| "port is not a number")?,
        None => 5432,
    };
    let mut sslmode = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("sslmode", v)) => sslmode = Some(percent_decode(v)?),
            Some((k, _)) => {
                return Err(format!(
                    "query parameter {k:?} is not supported (only sslmode)"
                ));
            }
            None => return Err("malformed query".to_string()),
        }
    }
    Ok(ConnectionParts {
        host: percent_decode(host)?,
        port,
        database: percent_decode(database)?,
        user: percent_decode(user)?,
        password: password.map(percent_decode).transpose()?,
        sslmode,
    })
}

struct ConnectionParts {
    host: String,
    port: u16,
    database: String,
    user: String,
    password: Option<String>,
    sslmode: Option<String>,
}

impl Conn {
    /// Resolves `config`, reading secrets from the environment; `field` names the config field
    /// in errors. `ca_dir` is where a CA bundle from the environment is written.
    pub fn resolve(
        config: &ConnectionConfig,
        field: &'static str,
        ca_dir: &Path,
    ) -> Result<Self, ConfigError> {
        let mut parts = if let Some(env) = &config.uri_env {
            let uri = secret_from_env(field, env)?;
            parse_uri(&uri).map_err(|message| ConfigError::Invalid {
                field,
                message: format!("the URI in {env} {message}"),
            })?
        } else {
            let password = match &config.password_env {
                Some(env) => Some(secret_from_env(field, env)?),
                None => None,
            };
            ConnectionParts {
                host: config.host.clone().unwrap_or_default(),
                port: config.port.unwrap_or(5432),
                database: config.database.clone().unwrap_or_default(),
                user: config.user.clone().unwrap_or_default(),
                password,
                sslmode: None,
            }
        };
        if parts.database.is_empty() || parts.user.is_empty() {
            return Err(ConfigError::Invalid {
                field,
                message: "the connection names no database or no user".to_string(),
            });
        }
        if config.sslmode.is_some() {
            parts.sslmode = config.sslmode.clone();
        }
        let ssl_root_cert = match &config.ca_cert_env {
            Some(env) => {
                let pem = secret_from_env(field, env)?;
                let path = ca_dir.join(format!("ca-{}.pem", std::process::id()));
                std::fs::write(&path, pem).map_err(|e| ConfigError::Invalid {
                    field,
                    message: format!("cannot write the CA bundle to {}: {e}", path.display()),
                })?;
                Some(path)
            }
            None => None,
        };
        Ok(Conn {
            host: parts.host,
            port: parts.port,
            database: parts.database,
            user: parts.user,
            password: parts.password,
            sslmode: parts.sslmode,
            ssl_root_cert,
        })
    }

    /// The same server and credentials, another database.
    pub fn with_database(&self, database: &str) -> Conn {
        Conn {
            database: database.to_string(),
            ..self.clone()
        }
    }

    /// Sets the libpq environment on `cmd` (and clears inherited libpq variables that could
    /// redirect it).
    pub fn apply(&self, cmd: &mut Command) {
        for var in ["PGSERVICE", "PGSERVICEFILE", "PGPASSFILE", "PGOPTIONS"] {
            cmd.env_remove(var);
        }
        cmd.env("PGHOST", &self.host)
            .env("PGPORT", self.port.to_string())
            .env("PGUSER", &self.user)
            .env("PGDATABASE", &self.database)
            .env("PGCONNECT_TIMEOUT", "10")
            .env("PGAPPNAME", "watchkeeper-agent");
        match &self.password {
            Some(p) => cmd.env("PGPASSWORD", p),
            None => cmd.env_remove("PGPASSWORD"),
        };
        match &self.sslmode {
            Some(m) => cmd.env("PGSSLMODE", m),
            None => cmd.env_remove("PGSSLMODE"),
        };
        if let Some(path) = &self.ssl_root_cert {
            cmd.env("PGSSLROOTCERT", path);
        }
    }
}

/// Where the client tools are.
#[derive(Clone, Debug)]
pub struct Tools {
    dir: Option<PathBuf>,
}

impl Tools {
    /// Tools in `dir`, or on the `PATH` when `None`.
    pub fn new(dir: Option<&str>) -> Self {
        Tools {
            dir: dir.map(PathBuf::from),
        }
    }

    /// Path (or bare name) of `tool`.
    pub fn path(&self, tool: &str) -> PathBuf {
        match &self.dir {
            Some(dir) => dir.join(tool),
            None => PathBuf::from(tool),
        }
    }

    /// A command for `tool` connected to `conn`.
    pub fn command(&self, tool: &str, conn: &Conn) -> Command {
        let mut cmd = Command::new(self.path(tool));
        conn.apply(&mut cmd);
        cmd.kill_on_drop(true);
        cmd
    }

    /// Major version of `tool` (`pg_dump (PostgreSQL) 15.18 (Debian …)` → 15).
    pub async fn tool_version(&self, tool: &str) -> Result<(u32, String), PgError> {
        let out = Command::new(self.path(tool))
            .arg("--version")
            .output()
            .await
            .map_err(|source| PgError::Spawn {
                tool: self.path(tool).display().to_string(),
                source,
            })?;
        let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
        let version = text
            .split_whitespace()
            .find(|w| w.chars().next().is_some_and(|c| c.is_ascii_digit()))
            .ok_or_else(|| PgError::Unexpected(format!("{tool} --version printed {text:?}")))?
            .to_string();
        let major = version
            .split('.')
            .next()
            .and_then(|m| m.parse().ok())
            .ok_or_else(|| PgError::Unexpected(format!("{tool} --version printed {text:?}")))?;
        Ok((major, version))
    }

    /// Runs one SQL statement with `psql` and returns its rows, each a list of column texts
    /// (NULL as empty). `read_only` runs it in a read-only transaction.
    pub async fn query(
        &self,
        conn: &Conn,
        sql: &str,
        read_only: bool,
    ) -> Result<Vec<Vec<String>>, PgError> {
        let mut cmd = self.command("psql", conn);
        cmd.args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
            .args(["-F", "\u{1f}", "-R", "\u{1e}"])
            .args(["-c", sql])
            .stdin(Stdio::null());
        if read_only {
            cmd.env("PGOPTIONS", "-c default_transaction_read_only=on");
        }
        let out = cmd.output().await.map_err(|source| PgError::Spawn {
            tool: self.path("psql").display().to_string(),
            source,
        })?;
        if !out.status.success() {
            return Err(PgError::Failed {
                tool: "psql".to_string(),
                message: stderr_tail(&out.stderr),
            });
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let text = text.strip_suffix('\n').unwrap_or(&text);
        Ok(text
            .split('\u{1e}')
            .filter(|r| !r.is_empty())
            .map(|r| r.split('\u{1f}').map(str::to_string).collect())
            .collect())
    }

    /// The server's major version and full version string.
    pub async fn server_version(&self, conn: &Conn) -> Result<(u32, String), PgError> {
        let rows = self
            .query(
                conn,
                "SELECT current_setting('server_version_num'), current_setting('server_version')",
                true,
            )
            .await
            .map_err(|e| match e {
                PgError::Failed { message, .. } => PgError::Failed {
                    tool: format!("connecting to {conn}"),
                    message,
                },
                other => other,
            })?;
        let row = rows
            .first()
            .filter(|r| r.len() == 2)
            .ok_or_else(|| PgError::Unexpected("server version query returned nothing".into()))?;
        let num: u32 = row[0]
            .trim()
            .parse()
            .map_err(|_| PgError::Unexpected(format!("server_version_num is {:?}", row[0])))?;
        Ok((num / 10_000, row[1].trim().to_string()))
    }
}

/// Quotes an identifier for SQL.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The last lines of a tool's stderr (at most 600 bytes), for error messages.
pub fn stderr_tail(stderr: &[u8]) -> String {
    let text = String::from_utf8_lossy(stderr);
    let text = text.trim();
    let mut start = text.len().saturating_sub(600);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    let tail = text[start..].replace('\n', " | ");
    if tail.is_empty() {
        "no error output".to_string()
    } else {
        tail
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_is_split_and_decoded() {
        let p =
            parse_uri("postgresql://app%40x:p%3Ass@db.example.com:6543/my%20db?sslmode=require")
                .unwrap();
        assert_eq!(
            (
                p.user.as_str(),
                p.host.as_str(),
                p.port,
                p.database.as_str()
            ),
            ("app@x", "db.example.com", 6543, "my db")
        );
        assert_eq!(p.password.as_deref(), Some("p:ss"));
        assert_eq!(p.sslmode.as_deref(), Some("require"));
        let p = parse_uri("postgres://u@[::1]/d").unwrap();
        assert_eq!((p.host.as_str(), p.port), ("::1", 5432));
    }

    #[test]
    fn bad_uris_are_refused_without_echoing_the_password() {
        for bad in [
            "mysql://u:secretpw@h/d",
            "postgres://u:secretpw@h1,h2/d",
            "postgres://u:secretpw@h:port/d",
            "postgres://u:secretpw@h/d?target_session_attrs=any",
        ] {
            let err = parse_uri(bad).err().unwrap();
            assert!(!err.contains("secretpw"), "{err}");
        }
    }

    #[test]
    fn identifiers_are_quoted() {
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
    }
}
