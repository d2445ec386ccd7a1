//! Agent configuration: JSON round trips and the checks serde cannot do.

use super::*;

fn full() -> AgentConfig {
    AgentConfig {
        policy: "prod/db-daily".to_string(),
        source: SourceConfig {
            connection: ConnectionConfig {
                host: Some("db.prod.svc".to_string()),
                port: Some(5432),
                database: Some("app".to_string()),
                user: Some("backup".to_string()),
                password_env: Some("WATCHKEEPER_PGPASSWORD".to_string()),
                sslmode: Some("require".to_string()),
                ..ConnectionConfig::default()
            },
            dump: DumpConfig {
                schemas: vec!["public".to_string()],
                exclude_tables: vec!["public.cache_*".to_string()],
                compression_level: Some(6),
                no_owner: true,
                ..DumpConfig::default()
            },
        },
        destination: DestinationConfig::S3 {
            bucket: "backups".to_string(),
            prefix: "postgres/prod".to_string(),
            endpoint: Some("http://minio.storage:9000".to_string()),
            region: Some("us-east-1".to_string()),
            force_path_style: true,
            access_key_id_env: Some("WATCHKEEPER_S3_ACCESS_KEY_ID".to_string()),
            secret_access_key_env: Some("WATCHKEEPER_S3_SECRET_ACCESS_KEY".to_string()),
        },
        encryption: Some(EncryptionConfig {
            passphrase_env: "WATCHKEEPER_ENCRYPTION_KEY".to_string(),
        }),
        retention: Some(RetentionConfig {
            daily: 7,
            weekly: 4,
            monthly: 3,
            min_age_seconds: 3600,
            ..RetentionConfig::default()
        }),
        verification: Some(VerificationConfig {
            scratch_connection: None,
            scratch_prefix: "watchkeeper_verify_".to_string(),
            keep_on_failure: false,
            sql_checks: vec![SqlCheckConfig {
                name: "users-present".to_string(),
                query: "SELECT count(*) > 0 FROM users".to_string(),
                expect: Some("t".to_string()),
                min_rows: None,
            }],
            rto_seconds: Some(3600),
            timeout_seconds: Some(7200),
        }),
        time_zone: "America/New_York".to_string(),
        pg_bin_dir: None,
    }
}

#[test]
fn full_config_round_trips_through_json() {
    let config = full();
    let json = config.to_json();
    assert!(json.contains("\"kind\":\"s3\""), "{json}");
    assert!(
        json.contains("\"passwordEnv\":\"WATCHKEEPER_PGPASSWORD\""),
        "{json}"
    );
    // Fields of the destination variants are camelCase too.
    for field in [
        "\"forcePathStyle\":true",
        "\"accessKeyIdEnv\"",
        "\"secretAccessKeyEnv\"",
    ] {
        assert!(json.contains(field), "{field} missing in {json}");
    }
    assert_eq!(AgentConfig::from_json(&json).unwrap(), config);
}

#[test]
fn every_destination_kind_round_trips() {
    for destination in [
        DestinationConfig::Gcs {
            bucket: "b".to_string(),
            prefix: "p".to_string(),
            service_account_key_env: Some("K".to_string()),
        },
        DestinationConfig::AzureBlob {
            account: "acct".to_string(),
            container: "c".to_string(),
            prefix: String::new(),
            account_key_env: None,
            endpoint: Some("http://127.0.0.1:10000".to_string()),
        },
        DestinationConfig::Filesystem {
            path: "/backups".to_string(),
            prefix: "/db/".to_string(),
        },
    ] {
        let config = AgentConfig {
            destination: destination.clone(),
            ..full()
        };
        let back = AgentConfig::from_json(&config.to_json()).unwrap();
        assert_eq!(back.destination, destination);
    }
    let fs = DestinationConfig::Filesystem {
        path: "/backups".to_string(),
        prefix: "/db/".to_string(),
    };
    assert_eq!(fs.prefix(), "db");
}

#[test]
fn minimal_json_takes_defaults() {
    let json = r#"{"policy":"ns/p","source":{"connection":{"host":"h","database":"d","user":"u"}},
        "destination":{"kind":"filesystem","path":"/b"}}"#;
    let config = AgentConfig::from_json(json).unwrap();
    assert_eq!(config.time_zone, "UTC");
    assert_eq!(config.source.dump.format, DumpFormatConfig::Custom);
    assert!(config.retention.is_none() && config.encryption.is_none());
}

#[test]
fn unknown_fields_and_inconsistent_values_are_refused() {
    let unknown = r#"{"policy":"ns/p","password":"x","source":{"connection":{"host":"h","database":"d","user":"u"}},
        "destination":{"kind":"filesystem","path":"/b"}}"#;
    let err = AgentConfig::from_json(unknown).unwrap_err().to_string();
    assert!(err.contains("unknown field `password`"), "{err}");

    let mut config = full();
    config.source.connection.uri_env = Some("URI".to_string());
    let err = AgentConfig::from_json(&config.to_json())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("source.connection") && err.contains("uriEnv"),
        "{err}"
    );

    let mut config = full();
    config.source.connection.host = None;
    let err = AgentConfig::from_json(&config.to_json())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("host, database and user are required"),
        "{err}"
    );

    let mut config = full();
    config.time_zone = "Mars/Olympus".to_string();
    let err = AgentConfig::from_json(&config.to_json())
        .unwrap_err()
        .to_string();
    assert!(err.contains("timeZone"), "{err}");

    let mut config = full();
    if let Some(v) = config.verification.as_mut() {
        v.sql_checks[0].min_rows = Some(1);
    }
    let err = AgentConfig::from_json(&config.to_json())
        .unwrap_err()
        .to_string();
    assert!(err.contains("users-present"), "{err}");

    let mut config = full();
    if let DestinationConfig::S3 {
        secret_access_key_env,
        ..
    } = &mut config.destination
    {
        *secret_access_key_env = None;
    }
    let err = AgentConfig::from_json(&config.to_json())
        .unwrap_err()
        .to_string();
    assert!(err.contains("secretAccessKeyEnv"), "{err}");
}

#[test]
fn secrets_come_only_from_named_variables() {
    let err = secret_from_env(
        "source.connection.passwordEnv",
        "WATCHKEEPER_TEST_SURELY_UNSET",
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("passwordEnv") && err.contains("WATCHKEEPER_TEST_SURELY_UNSET"),
        "{err}"
    );
    // PATH is always set in a test process.
    assert!(secret_from_env("x", "PATH").is_ok());
}
