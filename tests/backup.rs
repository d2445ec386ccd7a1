//! BackupPolicy agent against a real PostgreSQL (Debian's binaries) and a real S3-compatible
//! server (s3s-fs), both started per test by tests/support. The agent runs as the real binary
//! (`watchkeeper agent backup|verify|restore`), configured through WATCHKEEPER_AGENT_CONFIG with
//! secrets in separate environment variables, exactly as in a Job.

mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use support::postgres::{Postgres, SUPERUSER_PASSWORD, unique_temp_dir};
use support::s3::S3Server;
use watchkeeper::backup::config::{
    AgentConfig, ConnectionConfig, DestinationConfig, DumpConfig, EncryptionConfig,
    RetentionConfig, SourceConfig, SqlCheckConfig, VerificationConfig,
};
use watchkeeper::backup::manifest::Manifest;
use watchkeeper::backup::report::{AgentReport, BackupReport, Outcome};

const PASSWORD_ENV: &str = "WK_TEST_PGPASSWORD";
const S3_KEY_ID_ENV: &str = "WK_TEST_S3_KEY_ID";
const S3_SECRET_ENV: &str = "WK_TEST_S3_SECRET";
const PASSPHRASE_ENV: &str = "WK_TEST_PASSPHRASE";
const PASSPHRASE: &str = "test passphrase, not for production";
const POLICY: &str = "prod/db-daily";
const BUCKET: &str = "backups";
const PREFIX: &str = "postgres/prod";
/// A value present in the generated rows, to look for in stored objects.
const MARKER: &str = "watchkeeper-plaintext-marker";

/// One agent run's result.
struct Run {
    code: i32,
    report: AgentReport,
    stderr: String,
}

impl Run {
    fn backup(&self) -> &BackupReport {
        match &self.report {
            AgentReport::Backup(r) => r,
            other => panic!("not a backup report: {other:?}"),
        }
    }
}

fn agent_command(
    args: &[&str],
    config: &AgentConfig,
    extra_env: &[(&str, &str)],
    termination_log: &Path,
) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_watchkeeper"));
    cmd.arg("agent")
        .args(args)
        .arg("--termination-log")
        .arg(termination_log)
        .env("WATCHKEEPER_AGENT_CONFIG", config.to_json())
        .env(PASSWORD_ENV, SUPERUSER_PASSWORD)
        .env(S3_KEY_ID_ENV, support::s3::ACCESS_KEY_ID)
        .env(S3_SECRET_ENV, support::s3::SECRET_ACCESS_KEY)
        .env(PASSPHRASE_ENV, PASSPHRASE)
        .env_remove("PGPASSWORD")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true);
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    cmd
}

/// Runs `watchkeeper agent <args>` and checks the report is both the last stdout line and the
/// termination message.
async fn agent(args: &[&str], config: &AgentConfig, extra_env: &[(&str, &str)]) -> Run {
    let dir = unique_temp_dir("agent");
    std::fs::create_dir_all(&dir).unwrap();
    let log = dir.join("termination-log");
    let out = agent_command(args, config, extra_env, &log)
        .output()
        .await
        .expect("run the agent");
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    let last = stdout.lines().last().unwrap_or_default().to_string();
    let report = AgentReport::from_json(&last)
        .unwrap_or_else(|e| panic!("last stdout line is not a report ({e}): {stdout}\n{stderr}"));
    let written = std::fs::read_to_string(&log).expect("termination log written");
    assert_eq!(written, last, "termination message differs from stdout");
    assert!(written.len() <= 4096);
    let _ = std::fs::remove_dir_all(&dir);
    Run {
        code: out.status.code().unwrap_or(-1),
        report,
        stderr,
    }
}

fn source(pg: &Postgres, db: &str) -> SourceConfig {
    SourceConfig {
        connection: ConnectionConfig {
            host: Some("127.0.0.1".to_string()),
            port: Some(pg.port()),
            database: Some(db.to_string()),
            user: Some(pg.superuser().to_string()),
            password_env: Some(PASSWORD_ENV.to_string()),
            sslmode: Some("disable".to_string()),
            ..ConnectionConfig::default()
        },
        dump: DumpConfig::default(),
    }
}

fn s3_destination(s3: &S3Server, bucket: &str) -> DestinationConfig {
    DestinationConfig::S3 {
        bucket: bucket.to_string(),
        prefix: PREFIX.to_string(),
        endpoint: Some(s3.endpoint()),
        region: Some("us-east-1".to_string()),
        force_path_style: true,
        access_key_id_env: Some(S3_KEY_ID_ENV.to_string()),
        secret_access_key_env: Some(S3_SECRET_ENV.to_string()),
    }
}

fn config(pg: &Postgres, db: &str, destination: DestinationConfig) -> AgentConfig {
    AgentConfig {
        policy: POLICY.to_string(),
        source: source(pg, db),
        destination,
        encryption: None,
        retention: None,
        verification: Some(VerificationConfig {
            scratch_connection: None,
            scratch_prefix: "wk_verify_".to_string(),
            keep_on_failure: false,
            sql_checks: vec![
                SqlCheckConfig {
                    name: "items-present".to_string(),
                    query: "SELECT count(*) = 20000 FROM items".to_string(),
                    expect: Some("t".to_string()),
                    min_rows: None,
                },
                SqlCheckConfig {
                    name: "customers-rows".to_string(),
                    query: "SELECT id FROM customers".to_string(),
                    expect: None,
                    min_rows: Some(100),
                },
            ],
            rto_seconds: Some(3600),
            timeout_seconds: Some(600),
        }),
        time_zone: "UTC".to_string(),
        pg_bin_dir: Some(pg.bin_dir().display().to_string()),
    }
}

/// Two tables with varied types; `rows` items.
async fn generate(pg: &Postgres, db: &str, rows: u32) {
    pg.create_database(db).await;
    pg.psql(
        db,
        &format!(
            "CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL, tags text[], joined date);
             INSERT INTO customers SELECT i, '{MARKER}-' || i, ARRAY['t' || (i % 7)], date '2020-01-01' + i
               FROM generate_series(1, 100) i;
             CREATE TABLE items (id bigint PRIMARY KEY, customer int REFERENCES customers(id),
               amount numeric(12,2), payload jsonb, note text, created timestamptz);
             INSERT INTO items SELECT i, 1 + i % 100, (i * 7.31) % 10000,
               jsonb_build_object('k', i, 'v', md5(i::text)), repeat(md5(i::text), 1 + i % 3),
               timestamptz '2026-01-01 00:00:00+00' + i * interval '1 minute'
               FROM generate_series(1, {rows}) i;"
        ),
    )
    .await;
}

/// Row counts and content checksums of the generated tables.
async fn fingerprint(pg: &Postgres, db: &str) -> String {
    pg.psql(
        db,
        "SELECT (SELECT count(*) || ':' || md5(string_agg(c::text, ',' ORDER BY id)) FROM customers c)
             || '/' || (SELECT count(*) || ':' || md5(string_agg(i::text, ',' ORDER BY id)) FROM items i)",
    )
    .await
}

/// Every file under `dir` (relative paths), for "was anything deleted" checks.
fn files_under(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                walk(base, &path, out);
            } else if let Ok(rel) = path.strip_prefix(base) {
                out.push(rel.display().to_string());
            }
        }
    }
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// Our manifests in the bucket (read through the S3 API).
async fn manifests(s3: &S3Server, bucket: &str) -> Vec<Manifest> {
    let store = client(s3, bucket);
    let mut found = Vec::new();
    let listing = store
        .list_with_delimiter(Some(&object_store::path::Path::from(PREFIX)))
        .await
        .expect("list");
    for object in listing.objects {
        if object.location.as_ref().ends_with(".manifest.json") {
            let bytes = store.get(&object.location).await.unwrap().bytes().await;
            if let Some(m) = Manifest::parse(&bytes.unwrap()) {
                found.push(m);
            }
        }
    }
    found.sort_by_key(|m| m.completed_at);
    found
}

/// A plain S3 client for the test's own reads and writes.
fn client(s3: &S3Server, bucket: &str) -> object_store::aws::AmazonS3 {
    object_store::aws::AmazonS3Builder::new()
        .with_bucket_name(bucket)
        .with_region("us-east-1")
        .with_endpoint(s3.endpoint())
        .with_allow_http(true)
        .with_virtual_hosted_style_request(false)
        .with_access_key_id(s3.access_key_id())
        .with_secret_access_key(s3.secret_access_key())
        .build()
        .expect("s3 client")
}

async fn put(s3: &S3Server, bucket: &str, key: &str, body: &str) {
    client(s3, bucket)
        .put(
            &object_store::path::Path::from(key),
            PutPayload::from(body.to_string()),
        )
        .await
        .unwrap_or_else(|e| panic!("put {key}: {e}"));
}

async fn databases_with_prefix(pg: &Postgres, prefix: &str) -> String {
    pg.psql(
        "postgres",
        &format!("SELECT string_agg(datname, ',') FROM pg_database WHERE datname LIKE '{prefix}%'"),
    )
    .await
}

#[tokio::test]
async fn harnesses_start_real_servers() {
    let (pg, s3) = tokio::join!(Postgres::start(), S3Server::start());
    let version = pg.psql("postgres", "SHOW server_version_num").await;
    assert!(version.parse::<u32>().unwrap() >= 120000, "{version}");
    pg.create_database("smoke").await;
    assert_eq!(pg.psql("smoke", "SELECT current_database()").await, "smoke");
    s3.create_bucket("smoke");
    put(&s3, "smoke", "a/b.txt", "hello").await;
    let bytes = client(&s3, "smoke")
        .get(&object_store::path::Path::from("a/b.txt"))
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap();
    assert_eq!(&bytes[..], b"hello");
}

#[tokio::test]
async fn backup_restore_and_verify_give_identical_data() {
    let (pg, s3) = tokio::join!(Postgres::start(), S3Server::start());
    s3.create_bucket(BUCKET);
    generate(&pg, "app", 20_000).await;
    let original = fingerprint(&pg, "app").await;
    let mut config = config(&pg, "app", s3_destination(&s3, BUCKET));
    config.source.dump.compression_level = Some(6);

    let run = agent(&["backup"], &config, &[]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = run.backup();
    assert_eq!(report.outcome, Outcome::Succeeded, "{}", report.message);
    let stored = manifests(&s3, BUCKET).await;
    assert_eq!(stored.len(), 1);
    let manifest = &stored[0];
    assert_eq!(report.id.as_ref(), Some(&manifest.id));
    assert_eq!(report.sha256.as_ref(), Some(&manifest.sha256));
    assert_eq!(manifest.policy, POLICY);
    assert_eq!(manifest.database, "app");
    assert!(
        manifest
            .server_version
            .starts_with(&manifest.pg_dump_version[..2])
    );
    assert_eq!(manifest.encryption, None);
    let inventory = report.inventory.as_ref().expect("inventory");
    assert_eq!(inventory.count, 1);
    assert_eq!(inventory.total_bytes, manifest.size_bytes);
    // The stored object is pg_dump's custom format, and its size is the manifest's.
    let object = std::fs::read(s3.object_path(BUCKET, &format!("{PREFIX}/{}", manifest.object)))
        .expect("object file in s3s-fs");
    assert!(object.starts_with(b"PGDMP"));
    assert_eq!(object.len() as u64, manifest.size_bytes);

    let run = agent(&["restore", "--target-database", "copy"], &config, &[]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(fingerprint(&pg, "copy").await, original);

    // A non-empty target is refused without --force, and restored over with it.
    pg.psql("copy", "DELETE FROM items WHERE id > 10").await;
    let run = agent(&["restore", "--target-database", "copy"], &config, &[]).await;
    assert_eq!(run.code, 3);
    let AgentReport::Restore(r) = &run.report else {
        panic!()
    };
    assert!(
        r.message.contains("not empty") && r.message.contains("--force"),
        "{}",
        r.message
    );
    assert_ne!(fingerprint(&pg, "copy").await, original);
    let run = agent(
        &["restore", "--target-database", "copy", "--force"],
        &config,
        &[],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(fingerprint(&pg, "copy").await, original);

    let policy_hash = |policy: &str| {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(policy.as_bytes()))[..8].to_string()
    };
    pg.create_database(&format!("wk_verify_{}_leftover", policy_hash(POLICY)))
        .await;
    let others = format!("wk_verify_{}_busy", policy_hash("prod/another-policy"));
    pg.create_database(&others).await;
    let run = agent(&["verify"], &config, &[]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let AgentReport::Verify(v) = &run.report else {
        panic!()
    };
    assert_eq!(v.outcome, Outcome::Succeeded, "{}", v.message);
    assert_eq!(v.backup_id.as_ref(), Some(&manifest.id));
    assert_eq!(v.sha256_ok, Some(true));
    assert_eq!(v.rto_met, Some(true));
    assert!(v.restore_seconds.unwrap() > 0.0);
    assert_eq!(v.checks.len(), 2);
    assert!(v.checks.iter().all(|c| c.ok), "{:?}", v.checks);
    // Our leftover scratch database is dropped, another policy's (maybe in use) is not.
    assert_eq!(databases_with_prefix(&pg, "wk_verify_").await, others);

    // A failing check fails the verification; an impossible RTO too.
    let mut strict = config.clone();
    if let Some(v) = strict.verification.as_mut() {
        v.sql_checks[1].min_rows = Some(101);
        v.rto_seconds = Some(0);
    }
    let run = agent(&["verify"], &strict, &[]).await;
    assert_eq!(run.code, 3);
    let AgentReport::Verify(v) = &run.report else {
        panic!()
    };
    assert_eq!(v.outcome, Outcome::Failed);
    assert!(
        !v.checks[1].ok && v.checks[1].message.contains("100 row(s)"),
        "{:?}",
        v.checks
    );
    assert!(v.message.contains("customers-rows"), "{}", v.message);
    assert_eq!(v.rto_met, Some(false));
    assert_eq!(databases_with_prefix(&pg, "wk_verify_").await, others);
}

#[tokio::test]
async fn a_corrupted_object_fails_verification_by_checksum() {
    let (pg, s3) = tokio::join!(Postgres::start(), S3Server::start());
    s3.create_bucket(BUCKET);
    generate(&pg, "app", 2_000).await;
    let config = config(&pg, "app", s3_destination(&s3, BUCKET));
    let run = agent(&["backup"], &config, &[]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let manifest = manifests(&s3, BUCKET).await.remove(0);
    let path = s3.object_path(BUCKET, &format!("{PREFIX}/{}", manifest.object));
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x01;
    std::fs::write(&path, &bytes).unwrap();

    let run = agent(&["verify"], &config, &[]).await;
    assert_eq!(run.code, 3);
    let AgentReport::Verify(v) = &run.report else {
        panic!()
    };
    assert_eq!(v.outcome, Outcome::Failed);
    assert_eq!(v.sha256_ok, Some(false));
    assert!(v.message.contains("fails its checksum"), "{}", v.message);
    assert_eq!(v.restore_seconds, None, "nothing may be restored");
    assert_eq!(databases_with_prefix(&pg, "wk_verify_").await, "");
    // restore refuses it too, before touching the target.
    let run = agent(&["restore", "--target-database", "copy"], &config, &[]).await;
    assert_eq!(run.code, 3);
    assert_eq!(databases_with_prefix(&pg, "copy").await, "");
}

/// A pg_dump stand-in that runs the real one, then keeps its stdout open (as a dump still in
/// progress would), recording its pid and that the real dump is written.
fn stalling_pg_dump(real_bin: &Path, dir: &Path) -> PathBuf {
    let bin = dir.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    for tool in ["psql", "pg_restore"] {
        std::os::unix::fs::symlink(real_bin.join(tool), bin.join(tool)).unwrap();
    }
    let script = format!(
        "#!/bin/sh\nif [ \"$1\" = --version ]; then exec '{real}/pg_dump' --version; fi\n\
         '{real}/pg_dump' \"$@\" || exit 1\necho $$ > '{dir}/pid'\ntouch '{dir}/dumped'\nexec sleep 120\n",
        real = real_bin.display(),
        dir = dir.display()
    );
    let path = bin.join("pg_dump");
    std::fs::write(&path, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

#[tokio::test]
async fn an_interrupted_upload_leaves_no_manifest_and_is_not_counted() {
    let (pg, s3) = tokio::join!(Postgres::start(), S3Server::start());
    s3.create_bucket(BUCKET);
    // ~12 MB uncompressed: more than one 8 MiB part, so a part is uploaded before the kill.
    generate(&pg, "app", 60_000).await;
    let mut config = config(&pg, "app", s3_destination(&s3, BUCKET));
    config.source.dump.compression_level = Some(0);
    config.retention = Some(RetentionConfig {
        keep_last: 1,
        ..RetentionConfig::default()
    });
    if let Some(v) = config.verification.as_mut() {
        v.sql_checks[0].query = "SELECT count(*) = 60000 FROM items".to_string();
    }
    let first = agent(&["backup"], &config, &[]).await;
    assert_eq!(first.code, 0, "{}", first.stderr);
    let first_id = first.backup().id.clone().unwrap();

    let dir = unique_temp_dir("stall");
    let mut stalled = config.clone();
    stalled.pg_bin_dir = Some(stalling_pg_dump(pg.bin_dir(), &dir).display().to_string());
    let log = dir.join("termination-log");
    let mut child = agent_command(&["backup"], &stalled, &[], &log)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !dir.join("dumped").exists() {
        assert!(
            Instant::now() < deadline,
            "the stand-in pg_dump never finished"
        );
        assert!(child.try_wait().unwrap().is_none(), "agent exited early");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // Mid-upload: at least one part is uploaded and the agent still waits for the end of
    // pg_dump's output. Kill it hard.
    while s3.pending_upload_parts() == 0 {
        assert!(Instant::now() < deadline, "no part was uploaded");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    child.kill().await.unwrap();
    if let Ok(pid) = std::fs::read_to_string(dir.join("pid")) {
        let _ = std::process::Command::new("kill")
            .args(["-KILL", pid.trim()])
            .status();
    }
    let stored = manifests(&s3, BUCKET).await;
    assert_eq!(
        stored.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(),
        [first_id.as_str()],
        "the interrupted run must not leave a manifest"
    );

    // It does not count: verify takes the first backup, and the next backup's inventory (after
    // keepLast 1 pruning) holds only itself; the first is pruned, nothing else existed.
    let run = agent(&["verify"], &config, &[]).await;
    let AgentReport::Verify(v) = &run.report else {
        panic!()
    };
    assert_eq!(
        v.backup_id.as_deref(),
        Some(first_id.as_str()),
        "{}",
        v.message
    );
    assert_eq!(run.code, 0, "{}", v.message);
    let next = agent(&["backup"], &config, &[]).await;
    assert_eq!(next.code, 0, "{}", next.stderr);
    let report = next.backup();
    assert_eq!(report.pruned, [first_id]);
    assert_eq!(report.kept, 1);
    assert_eq!(report.inventory.as_ref().unwrap().count, 1);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn objects_not_written_by_us_are_never_deleted() {
    let (pg, s3) = tokio::join!(Postgres::start(), S3Server::start());
    s3.create_bucket(BUCKET);
    generate(&pg, "app", 500).await;
    let mut config = config(&pg, "app", s3_destination(&s3, BUCKET));
    config.retention = Some(RetentionConfig {
        keep_last: 1,
        ..RetentionConfig::default()
    });
    // A genuine old backup of ours, to copy as foreign look-alikes.
    let run = agent(&["backup"], &config, &[]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let mut old = manifests(&s3, BUCKET).await.remove(0);
    old.completed_at -= chrono::TimeDelta::days(400);
    // Another policy's backup under the same prefix.
    let mut other_policy = old.clone();
    other_policy.id = "20240101T000000Z-0001".to_string();
    other_policy.object = "20240101T000000Z-0001.dump".to_string();
    other_policy.policy = "prod/another-policy".to_string();
    // Our own manifest format, but outside the prefix and in a nested prefix.
    let mut outside = old.clone();
    outside.id = "20240101T000000Z-0002".to_string();
    outside.object = "20240101T000000Z-0002.dump".to_string();
    let foreign = [
        ("notes.txt".to_string(), "hello".to_string()),
        (format!("{PREFIX}/README"), "not a backup".to_string()),
        (
            format!("{PREFIX}/20200101T000000Z-0000.dump"),
            "dump without manifest".to_string(),
        ),
        (
            format!("{PREFIX}/20200101T000000Z-0003.manifest.json"),
            "{\"format\":\"someone-else/v1\",\"id\":\"20200101T000000Z-0003\"}".to_string(),
        ),
        (
            format!("{PREFIX}/{}", other_policy.manifest_name()),
            other_policy.to_json(),
        ),
        (format!("{PREFIX}/{}", other_policy.object), "x".to_string()),
        (
            format!("elsewhere/{}", outside.manifest_name()),
            outside.to_json(),
        ),
        (format!("elsewhere/{}", outside.object), "x".to_string()),
        (
            format!("{PREFIX}/nested/{}", outside.manifest_name()),
            outside.to_json(),
        ),
        (
            format!("{PREFIX}/nested/{}", outside.object),
            "x".to_string(),
        ),
    ];
    for (key, body) in &foreign {
        put(&s3, BUCKET, key, body).await;
    }
    for _ in 0..2 {
        let run = agent(&["backup"], &config, &[]).await;
        assert_eq!(run.code, 0, "{}", run.stderr);
    }
    let files = files_under(&s3.bucket_dir(BUCKET));
    for (key, _) in &foreign {
        assert!(files.contains(key), "{key} was deleted; left: {files:?}");
    }
    let ours = manifests(&s3, BUCKET)
        .await
        .into_iter()
        .filter(|m| m.policy == POLICY)
        .count();
    assert_eq!(ours, 1, "keepLast 1 keeps exactly one of our backups");
}

#[tokio::test]
async fn encryption_round_trip_and_the_stored_object_is_not_plaintext() {
    let (pg, s3) = tokio::join!(Postgres::start(), S3Server::start());
    s3.create_bucket(BUCKET);
    generate(&pg, "app", 2_000).await;
    let original = fingerprint(&pg, "app").await;
    let mut config = config(&pg, "app", s3_destination(&s3, BUCKET));
    config.source.dump.compression_level = Some(0);

    // Control: without encryption the uncompressed dump shows the marker.
    let plain = agent(&["backup"], &config, &[]).await;
    assert_eq!(plain.code, 0, "{}", plain.stderr);
    let plain_manifest = manifests(&s3, BUCKET).await.remove(0);
    let plain_bytes =
        std::fs::read(s3.object_path(BUCKET, &format!("{PREFIX}/{}", plain_manifest.object)))
            .unwrap();
    assert!(
        plain_bytes
            .windows(MARKER.len())
            .any(|w| w == MARKER.as_bytes())
    );

    config.encryption = Some(EncryptionConfig {
        passphrase_env: PASSPHRASE_ENV.to_string(),
    });
    let run = agent(&["backup"], &config, &[]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.backup().encrypted);
    let manifest = manifests(&s3, BUCKET).await.pop().unwrap();
    assert_eq!(manifest.encryption.as_deref(), Some("age-scrypt"));
    assert!(manifest.object.ends_with(".dump.age"));
    let bytes =
        std::fs::read(s3.object_path(BUCKET, &format!("{PREFIX}/{}", manifest.object))).unwrap();
    assert!(bytes.starts_with(b"age-encryption.org/v1"));
    assert!(!bytes.windows(MARKER.len()).any(|w| w == MARKER.as_bytes()));
    assert!(!bytes.windows(5).any(|w| w == b"PGDMP"));

    let run = agent(&["restore", "--target-database", "copy"], &config, &[]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(fingerprint(&pg, "copy").await, original);

    // An age X25519 identity as the key (no scrypt): recorded as such, restores identically.
    let identity = {
        use age::secrecy::ExposeSecret;
        age::x25519::Identity::generate()
            .to_string()
            .expose_secret()
            .to_string()
    };
    let with_identity = [(PASSPHRASE_ENV, identity.as_str())];
    let run = agent(&["backup"], &config, &with_identity).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let newest = manifests(&s3, BUCKET).await.pop().unwrap();
    assert_eq!(newest.encryption.as_deref(), Some("age-x25519"));
    let run = agent(
        &["restore", "--target-database", "copy_x25519"],
        &config,
        &with_identity,
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(fingerprint(&pg, "copy_x25519").await, original);

    let run = agent(
        &["verify"],
        &config,
        &[(PASSPHRASE_ENV, "incorrect-secret-9")],
    )
    .await;
    assert_eq!(run.code, 3);
    let AgentReport::Verify(v) = &run.report else {
        panic!()
    };
    assert_eq!(v.sha256_ok, Some(true));
    assert!(v.message.contains("decryption failed"), "{}", v.message);
    assert!(
        !v.message.contains("incorrect-secret-9"),
        "secret echoed: {}",
        v.message
    );
    assert_eq!(databases_with_prefix(&pg, "wk_verify_").await, "");
}

/// Runs a backup expected to fail and checks the report, and that nothing was written or
/// deleted (the bucket's files are unchanged).
async fn assert_fails_cleanly(
    s3: &S3Server,
    config: &AgentConfig,
    extra_env: &[(&str, &str)],
    expected: &[&str],
) {
    let before = files_under(&s3.bucket_dir(BUCKET));
    let run = agent(&["backup"], config, extra_env).await;
    assert_eq!(run.code, 3, "{}", run.stderr);
    let report = run.backup();
    assert_eq!(report.outcome, Outcome::Failed);
    assert!(
        expected.iter().any(|e| report.message.contains(e)),
        "expected one of {expected:?} in {:?}",
        report.message
    );
    assert!(report.pruned.is_empty() && report.id.is_none());
    for secret in [
        SUPERUSER_PASSWORD,
        support::s3::SECRET_ACCESS_KEY,
        "wrong-password",
    ] {
        assert!(
            !report.message.contains(secret),
            "secret in {:?}",
            report.message
        );
    }
    let after = files_under(&s3.bucket_dir(BUCKET));
    let before_manifests: Vec<_> = before.iter().filter(|f| f.ends_with(".json")).collect();
    let after_manifests: Vec<_> = after.iter().filter(|f| f.ends_with(".json")).collect();
    assert_eq!(
        before_manifests, after_manifests,
        "a manifest appeared or vanished"
    );
    for file in &before {
        assert!(after.contains(file), "{file} was deleted");
    }
}

#[tokio::test]
async fn bad_input_fails_clearly_without_manifest_or_deletion() {
    let (pg, s3) = tokio::join!(Postgres::start(), S3Server::start());
    s3.create_bucket(BUCKET);
    generate(&pg, "app", 500).await;
    let mut config = config(&pg, "app", s3_destination(&s3, BUCKET));
    config.retention = Some(RetentionConfig {
        keep_last: 1,
        ..RetentionConfig::default()
    });
    let run = agent(&["backup"], &config, &[]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);

    // Wrong password.
    assert_fails_cleanly(
        &s3,
        &config,
        &[(PASSWORD_ENV, "wrong-password")],
        &["password authentication failed"],
    )
    .await;
    // Unreachable database (a port nobody listens on).
    let mut unreachable = config.clone();
    unreachable.source.connection.port = Some(support::postgres::free_port());
    assert_fails_cleanly(
        &s3,
        &unreachable,
        &[],
        &["Connection refused", "could not connect"],
    )
    .await;
    // Missing database.
    let mut missing_db = config.clone();
    missing_db.source.connection.database = Some("nope".to_string());
    assert_fails_cleanly(&s3, &missing_db, &[], &["does not exist"]).await;
    // Missing bucket.
    let mut missing_bucket = config.clone();
    missing_bucket.destination = s3_destination(&s3, "no-such-bucket");
    assert_fails_cleanly(
        &s3,
        &missing_bucket,
        &[],
        &["NoSuchBucket", "no-such-bucket"],
    )
    .await;
    // No permission: a secret key the server does not accept.
    assert_fails_cleanly(
        &s3,
        &config,
        &[(S3_SECRET_ENV, "not-the-secret")],
        &["listing"],
    )
    .await;
    // Secret variable missing altogether.
    assert_fails_cleanly(&s3, &config, &[(PASSWORD_ENV, "")], &[PASSWORD_ENV]).await;

    // An invalid configuration is exit status 1 with a failed report.
    let mut invalid = config.clone();
    invalid.time_zone = "Nowhere/City".to_string();
    let run = agent(&["backup"], &invalid, &[]).await;
    assert_eq!(run.code, 1);
    assert!(
        run.backup().message.contains("timeZone"),
        "{}",
        run.backup().message
    );
    assert_eq!(manifests(&s3, BUCKET).await.len(), 1);
}

#[tokio::test]
async fn a_full_disk_on_the_volume_path_fails_without_manifest() {
    let pg = Postgres::start().await;
    generate(&pg, "app", 20_000).await;
    let root = unique_temp_dir("pvc");
    std::fs::create_dir_all(&root).unwrap();
    let destination = DestinationConfig::Filesystem {
        path: root.display().to_string(),
        prefix: "db".to_string(),
    };
    let mut config = config(&pg, "app", destination);
    config.source.dump.compression_level = Some(0);
    // A good backup first: the filesystem destination works.
    let run = agent(&["backup"], &config, &[]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let good = files_under(&root);
    assert_eq!(
        good.iter()
            .filter(|f| f.ends_with(".manifest.json"))
            .count(),
        1,
        "{good:?}"
    );

    // Files limited to 1 MiB (SIGXFSZ ignored, so writes fail with EFBIG as on a full disk).
    let log = root.join("termination-log-outside-prefix");
    let cmd = agent_command(&["backup"], &config, &[], &log);
    let std_cmd = cmd.as_std();
    let program = std_cmd.get_program().to_owned();
    let args: Vec<_> = std_cmd.get_args().map(|a| a.to_owned()).collect();
    let mut shell = tokio::process::Command::new("sh");
    shell
        .arg("-c")
        .arg("trap '' XFSZ; ulimit -f 2048; exec \"$@\"")
        .arg("sh")
        .arg(program)
        .args(args);
    for (k, v) in std_cmd.get_envs() {
        match v {
            Some(v) => shell.env(k, v),
            None => shell.env_remove(k),
        };
    }
    let out = shell.output().await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{stdout}");
    let report = AgentReport::from_json(stdout.lines().last().unwrap()).unwrap();
    let AgentReport::Backup(report) = report else {
        panic!()
    };
    assert_eq!(report.outcome, Outcome::Failed);
    assert!(
        report.message.contains("too large") || report.message.contains("File too large"),
        "{}",
        report.message
    );
    let after = files_under(&root);
    assert_eq!(
        after
            .iter()
            .filter(|f| f.ends_with(".manifest.json"))
            .count(),
        1,
        "{after:?}"
    );
    for file in &good {
        assert!(after.contains(file), "{file} deleted");
    }
    let _ = std::fs::remove_dir_all(&root);
}

#[tokio::test]
async fn retention_prunes_a_400_day_history_to_the_planned_set() {
    let (pg, s3) = tokio::join!(Postgres::start(), S3Server::start());
    s3.create_bucket(BUCKET);
    generate(&pg, "app", 100).await;
    let mut config = config(&pg, "app", s3_destination(&s3, BUCKET));
    config.retention = Some(RetentionConfig {
        daily: 7,
        weekly: 4,
        monthly: 3,
        ..RetentionConfig::default()
    });
    // One real backup to copy: 400 daily backups of ours before today, written as the agent
    // writes them (dump object, then manifest).
    let run = agent(&["backup"], &config, &[]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let template = manifests(&s3, BUCKET).await.remove(0);
    let store = client(&s3, BUCKET);
    let mut records = Vec::new();
    for back in 1..=400 {
        let completed = template.completed_at - chrono::TimeDelta::days(back);
        let mut m = template.clone();
        m.id = format!("{}-{back:04x}", completed.format("%Y%m%dT%H%M%SZ"));
        m.object = format!("{}.dump", m.id);
        m.completed_at = completed;
        m.started_at = completed;
        let dump = object_store::path::Path::from(format!("{PREFIX}/{}", m.object));
        let manifest = object_store::path::Path::from(format!("{PREFIX}/{}", m.manifest_name()));
        store
            .put(&dump, PutPayload::from("old dump"))
            .await
            .unwrap();
        store
            .put(&manifest, PutPayload::from(m.to_json()))
            .await
            .unwrap();
        records.push(watchkeeper::backup::BackupRecord {
            id: m.id.clone(),
            completed_at: completed,
            successful: true,
        });
    }
    records.push(watchkeeper::backup::BackupRecord {
        id: template.id.clone(),
        completed_at: template.completed_at,
        successful: true,
    });

    let run = agent(&["backup"], &config, &[]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let report = run.backup();
    let new_id = report.id.clone().unwrap();
    let kept: std::collections::BTreeSet<String> = manifests(&s3, BUCKET)
        .await
        .into_iter()
        .map(|m| m.id)
        .collect();
    // Expected: the engine's plan over the same history plus the new backup.
    let new_manifest = manifests(&s3, BUCKET)
        .await
        .into_iter()
        .find(|m| m.id == new_id)
        .unwrap();
    records.push(watchkeeper::backup::BackupRecord {
        id: new_id.clone(),
        completed_at: new_manifest.completed_at,
        successful: true,
    });
    let policy = config.retention.as_ref().unwrap().policy();
    let decision =
        watchkeeper::backup::plan(&policy, chrono_tz::Tz::UTC, &records, report.finished_at);
    let expected: std::collections::BTreeSet<String> =
        decision.keep.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(kept, expected);
    assert!(kept.contains(&new_id));
    // 7 daily + up to 4 weekly + up to 3 monthly, overlapping: between 7 and 14.
    assert!((7..=14).contains(&kept.len()), "{}", kept.len());
    assert_eq!(report.kept as usize, kept.len());
    assert_eq!(
        report.pruned.len() + report.pruned_omitted as usize,
        402 - kept.len()
    );
    // Every pruned backup's dump object is gone too; kept ones are intact.
    let files = files_under(&s3.bucket_dir(BUCKET));
    let dumps = files.iter().filter(|f| f.ends_with(".dump")).count();
    assert_eq!(dumps, kept.len(), "{files:?}");
}

#[tokio::test]
async fn plain_format_uri_connection_and_parallel_restore() {
    let (pg, s3) = tokio::join!(Postgres::start(), S3Server::start());
    s3.create_bucket(BUCKET);
    generate(&pg, "app", 3_000).await;
    let original = fingerprint(&pg, "app").await;

    // Connection from a URI secret (password percent-encoded in it), plain SQL dump.
    let uri_env = "WK_TEST_PG_URI";
    let uri = format!(
        "postgresql://postgres:{}@127.0.0.1:{}/app?sslmode=disable",
        SUPERUSER_PASSWORD.replace('-', "%2D"),
        pg.port()
    );
    let mut config = config(&pg, "app", s3_destination(&s3, BUCKET));
    config.source.connection = ConnectionConfig {
        uri_env: Some(uri_env.to_string()),
        ..ConnectionConfig::default()
    };
    config.source.dump.format = watchkeeper::backup::config::DumpFormatConfig::Plain;
    let run = agent(&["backup"], &config, &[(uri_env, &uri)]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let manifest = manifests(&s3, BUCKET).await.remove(0);
    assert_eq!(manifest.dump_format, "plain");
    let run = agent(
        &["restore", "--target-database", "from_plain"],
        &config,
        &[(uri_env, &uri)],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(fingerprint(&pg, "from_plain").await, original);

    // Custom format restored with two pg_restore jobs (spooled to a local file first).
    let mut parallel = self::config(&pg, "app", s3_destination(&s3, BUCKET));
    parallel.source.dump.jobs = Some(2);
    if let Some(v) = parallel.verification.as_mut() {
        v.sql_checks[0].query = "SELECT count(*) = 3000 FROM items".to_string();
    }
    let run = agent(&["backup"], &parallel, &[]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = agent(
        &["restore", "--target-database", "from_jobs"],
        &parallel,
        &[],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(fingerprint(&pg, "from_jobs").await, original);
    let run = agent(&["verify"], &parallel, &[]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
}
