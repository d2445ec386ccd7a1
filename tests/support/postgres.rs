//! A real PostgreSQL server for tests: Debian's binaries (`/usr/lib/postgresql/<major>/bin`,
//! installed by `scripts/install-tools`), a fresh data directory in the temp dir, 127.0.0.1 on a
//! free port, password (scram-sha-256) authentication over TCP. Stopped (fast shutdown) and its
//! directory removed on drop.
//!
//! `initdb` and `postgres` refuse to run as root, so as root the server runs as the `postgres`
//! user (created by the Debian package) through `setpriv`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// Password of the superuser `postgres` in every test server.
pub const SUPERUSER_PASSWORD: &str = "watchkeeper-test-password";

/// One running test server.
pub struct Postgres {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    child: Option<Child>,
}

static COUNTER: AtomicU32 = AtomicU32::new(0);

/// A directory name unique to this process and call.
pub fn unique_temp_dir(tag: &str) -> PathBuf {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    std::env::temp_dir().join(format!(
        "watchkeeper-{tag}-{}-{n}-{nanos}",
        std::process::id()
    ))
}

/// A port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("local addr").port()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// The directory with Debian's server binaries (newest major), or `WATCHKEEPER_PG_BIN_DIR`.
pub fn pg_bin_dir() -> PathBuf {
    if let Ok(dir) = std::env::var("WATCHKEEPER_PG_BIN_DIR") {
        return PathBuf::from(dir);
    }
    let mut majors: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let major = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((major, bin))
        })
        .collect();
    majors.sort();
    match majors.pop() {
        Some((_, bin)) => bin,
        None => panic!(
            "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin: run \
             scripts/install-tools test (installs Debian's postgresql package)"
        ),
    }
}

/// Runs `cmd` as the `postgres` user when we are root.
fn as_server_user(program: &Path, root: bool) -> Command {
    if root {
        let mut cmd = Command::new("setpriv");
        cmd.args([
            "--reuid=postgres",
            "--regid=postgres",
            "--init-groups",
            "--",
        ])
        .arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

impl Postgres {
    /// Starts a fresh server and waits until it accepts connections.
    pub async fn start() -> Self {
        tokio::task::spawn_blocking(Self::start_blocking)
            .await
            .expect("postgres start task")
    }

    fn start_blocking() -> Self {
        let bin = pg_bin_dir();
        let root = is_root();
        let dir = unique_temp_dir("pg");
        std::fs::create_dir_all(&dir).expect("create pg temp dir");
        let data = dir.join("data");
        let pwfile = dir.join("pwfile");
        std::fs::write(&pwfile, SUPERUSER_PASSWORD).expect("write pwfile");
        if root {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir)
                .status()
                .expect("chown");
            assert!(status.success(), "chown of {} failed", dir.display());
        }
        let out = as_server_user(&bin.join("initdb"), root)
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ])
            .arg(format!("--pwfile={}", pwfile.display()))
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut pg = Postgres {
            bin,
            dir,
            port: 0,
            child: None,
        };
        // A port can be taken between choosing and binding: try a few.
        for _ in 0..5 {
            pg.port = free_port();
            let log = std::fs::File::create(pg.dir.join("server.log")).expect("server log");
            let child = as_server_user(&pg.bin.join("postgres"), root)
                .arg("-D")
                .arg(&data)
                .args([
                    "-p",
                    &pg.port.to_string(),
                    "-c",
                    "listen_addresses=127.0.0.1",
                ])
                .arg("-c")
                .arg(format!("unix_socket_directories={}", pg.dir.display()))
                .args(["-c", "fsync=off", "-c", "full_page_writes=off"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .expect("spawn postgres");
            pg.child = Some(child);
            if pg.wait_ready(Duration::from_secs(30)) {
                return pg;
            }
            pg.stop();
        }
        let log = std::fs::read_to_string(pg.dir.join("server.log")).unwrap_or_default();
        panic!("postgres did not start; server log:\n{log}");
    }

    fn wait_ready(&mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(_)) = child.try_wait()
            {
                return false;
            }
            let ok = Command::new(self.bin.join("pg_isready"))
                .args(["-h", "127.0.0.1", "-p", &self.port.to_string(), "-q"])
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            if ok {
                return true;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        false
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // SIGINT: fast shutdown (disconnect clients, no waiting for them).
            let _ = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The superuser role (its password is [`SUPERUSER_PASSWORD`]).
    pub fn superuser(&self) -> &'static str {
        "postgres"
    }

    /// `postgres://postgres:<password>@127.0.0.1:<port>/<db>`.
    pub fn url(&self, db: &str) -> String {
        format!(
            "postgres://postgres:{SUPERUSER_PASSWORD}@127.0.0.1:{}/{db}",
            self.port
        )
    }

    /// Path of a PostgreSQL client or server binary of this server's version.
    pub fn bin(&self, name: &str) -> PathBuf {
        self.bin.join(name)
    }

    /// The directory holding this server's binaries.
    pub fn bin_dir(&self) -> &Path {
        &self.bin
    }

    /// Runs SQL with `psql` as the superuser and returns its unaligned, tuples-only output.
    /// Panics with psql's message on error.
    pub async fn psql(&self, db: &str, sql: &str) -> String {
        let out = tokio::process::Command::new(self.bin("psql"))
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                "postgres",
            ])
            .args(["-d", db, "-c", sql])
            .env("PGPASSWORD", SUPERUSER_PASSWORD)
            .output()
            .await
            .expect("run psql");
        assert!(
            out.status.success(),
            "psql on {db} failed for {sql:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim_end().to_string()
    }

    /// Creates a database owned by the superuser.
    pub async fn create_database(&self, name: &str) {
        self.psql("postgres", &format!("CREATE DATABASE \"{name}\""))
            .await;
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}
