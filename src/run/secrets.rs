//! Secrets in embedded mode: environment variables first, then files under `--secrets-dir`.
//!
//! Secret `api-token`, key `header` is read from `WATCHKEEPER_SECRET_API_TOKEN_HEADER`
//! (name and key upper-cased, `-` and `.` turned into `_`), else from the file
//! `DIR/api-token/header` (the layout of a Secret mounted as a volume; one trailing newline is
//! dropped so `echo value > file` works).

use std::path::PathBuf;

use crate::monitor::{MonitorError, SecretResolver};

/// Prefix of the environment variables holding secrets.
pub const ENV_PREFIX: &str = "WATCHKEEPER_SECRET_";

/// The environment variable that holds `key` of Secret `name`.
pub fn env_name(name: &str, key: &str) -> String {
    let clean = |s: &str| {
        s.chars()
            .map(|c| match c {
                '-' | '.' => '_',
                c => c.to_ascii_uppercase(),
            })
            .collect::<String>()
    };
    format!("{ENV_PREFIX}{}_{}", clean(name), clean(key))
}

/// Reads secrets from the environment, then from `dir`.
#[derive(Clone, Debug, Default)]
pub struct EnvSecrets {
    /// Directory holding `<name>/<key>` files.
    pub dir: Option<PathBuf>,
}

impl SecretResolver for EnvSecrets {
    fn get(&self, name: &str, key: &str) -> Result<String, MonitorError> {
        let var = env_name(name, key);
        if let Ok(value) = std::env::var(&var) {
            return Ok(value);
        }
        let error = |message: String| MonitorError::Secret {
            name: name.to_string(),
            key: key.to_string(),
            message,
        };
        let Some(dir) = &self.dir else {
            return Err(error(format!(
                "not found: set {var} (or pass --secrets-dir DIR with DIR/{name}/{key})"
            )));
        };
        // Names come from validated manifests, but never let one walk out of the directory.
        if [name, key]
            .iter()
            .any(|p| p.is_empty() || p.contains('/') || p.contains('\\') || *p == "..")
        {
            return Err(error("invalid secret name or key".to_string()));
        }
        let path = dir.join(name).join(key);
        match std::fs::read_to_string(&path) {
            Ok(mut value) => {
                if value.ends_with('\n') {
                    value.pop();
                    if value.ends_with('\r') {
                        value.pop();
                    }
                }
                Ok(value)
            }
            Err(e) => Err(error(format!(
                "not found: set {var} or create {} ({e})",
                path.display()
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_names_are_upper_case_with_underscores() {
        assert_eq!(
            env_name("slack-webhook", "url"),
            "WATCHKEEPER_SECRET_SLACK_WEBHOOK_URL"
        );
        assert_eq!(env_name("tls", "tls.crt"), "WATCHKEEPER_SECRET_TLS_TLS_CRT");
    }

    #[test]
    fn files_under_the_secrets_dir_and_clear_errors() {
        let dir = std::env::temp_dir().join(format!("wk-secrets-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("pd-p5test")).unwrap();
        std::fs::write(dir.join("pd-p5test").join("routing-key"), "abc\n").unwrap();
        let secrets = EnvSecrets {
            dir: Some(dir.clone()),
        };
        assert_eq!(secrets.get("pd-p5test", "routing-key").unwrap(), "abc");
        let missing = secrets.get("pd-p5test", "other").unwrap_err().to_string();
        assert!(
            missing.starts_with(
                "secret pd-p5test/other: not found: set WATCHKEEPER_SECRET_PD_P5TEST_OTHER"
            ),
            "{missing}"
        );
        assert!(secrets.get("..", "x").is_err());
        let no_dir = EnvSecrets::default()
            .get("nothing-p5test", "k")
            .unwrap_err()
            .to_string();
        assert!(no_dir.contains("--secrets-dir"), "{no_dir}");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
