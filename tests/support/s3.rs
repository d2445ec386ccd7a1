//! A real S3-compatible server for tests: `s3s-fs` (crates.io, installed by
//! `scripts/install-tools` into `~/.cache/watchkeeper/tools`), serving a temp directory on
//! 127.0.0.1 with signature-v4 authentication. Buckets are directories under its root. Killed
//! and its directory removed on drop.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::postgres::{free_port, unique_temp_dir};

/// Access key id accepted by every test server.
pub const ACCESS_KEY_ID: &str = "watchkeeper-test";
/// Secret access key accepted by every test server.
pub const SECRET_ACCESS_KEY: &str = "watchkeeper-test-secret-key";

/// One running server.
pub struct S3Server {
    root: PathBuf,
    port: u16,
    child: Option<Child>,
}

/// The `s3s-fs` binary: `WATCHKEEPER_S3S_FS`, else `$WATCHKEEPER_CACHE/tools/bin/s3s-fs`
/// (`~/.cache/watchkeeper` by default), else the `PATH`.
pub fn s3s_fs_binary() -> PathBuf {
    if let Ok(path) = std::env::var("WATCHKEEPER_S3S_FS") {
        return PathBuf::from(path);
    }
    let cache = std::env::var("WATCHKEEPER_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| {
            PathBuf::from(std::env::var("HOME").unwrap_or_default()).join(".cache/watchkeeper")
        });
    let cached = cache.join("tools/bin/s3s-fs");
    if cached.exists() {
        return cached;
    }
    let on_path = std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .map(|d| Path::new(d).join("s3s-fs"))
        .find(|p| p.exists());
    on_path.unwrap_or_else(|| {
        panic!(
            "s3s-fs not found (looked at {} and the PATH): run scripts/install-tools test",
            cached.display()
        )
    })
}

impl S3Server {
    /// Starts a server on a free port and waits until it accepts connections.
    pub async fn start() -> Self {
        tokio::task::spawn_blocking(Self::start_blocking)
            .await
            .expect("s3s-fs start task")
    }

    fn start_blocking() -> Self {
        let binary = s3s_fs_binary();
        let root = unique_temp_dir("s3");
        std::fs::create_dir_all(root.join("data")).expect("create s3 root");
        let mut server = S3Server {
            root,
            port: 0,
            child: None,
        };
        for _ in 0..5 {
            server.port = free_port();
            let log = std::fs::File::create(server.root.join("server.log")).expect("s3 log");
            let child = Command::new(&binary)
                .args(["--host", "127.0.0.1", "--port", &server.port.to_string()])
                .args([
                    "--access-key",
                    ACCESS_KEY_ID,
                    "--secret-key",
                    SECRET_ACCESS_KEY,
                ])
                .arg(server.root.join("data"))
                .env("RUST_LOG", "warn")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| {
                    panic!(
                        "cannot start {}: {e}; run scripts/install-tools test",
                        binary.display()
                    )
                });
            server.child = Some(child);
            if server.wait_ready(Duration::from_secs(20)) {
                return server;
            }
            server.kill();
        }
        let log = std::fs::read_to_string(server.root.join("server.log")).unwrap_or_default();
        panic!("s3s-fs did not start; log:\n{log}");
    }

    fn wait_ready(&mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(_)) = child.try_wait()
            {
                return false;
            }
            if std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// `http://127.0.0.1:<port>` (path-style addressing).
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The access key id.
    pub fn access_key_id(&self) -> &'static str {
        ACCESS_KEY_ID
    }

    /// The secret access key.
    pub fn secret_access_key(&self) -> &'static str {
        SECRET_ACCESS_KEY
    }

    /// Creates a bucket (s3s-fs keeps each bucket as a directory under its root).
    pub fn create_bucket(&self, name: &str) {
        std::fs::create_dir_all(self.bucket_dir(name)).expect("create bucket dir");
    }

    /// The directory holding a bucket's objects (to corrupt or inspect them).
    pub fn bucket_dir(&self, name: &str) -> PathBuf {
        self.root.join("data").join(name)
    }

    /// Parts of multipart uploads not completed yet (s3s-fs keeps them as
    /// `.upload_id-<id>.part-<n>` files beside the buckets).
    pub fn pending_upload_parts(&self) -> usize {
        std::fs::read_dir(self.root.join("data"))
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| {
                let name = e.file_name().to_string_lossy().to_string();
                name.starts_with(".upload_id-") && name.contains(".part-")
            })
            .count()
    }

    /// The object's file: s3s-fs stores object `key` at `<bucket>/<key>`.
    pub fn object_path(&self, bucket: &str, key: &str) -> PathBuf {
        self.bucket_dir(bucket).join(key)
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.root);
    }
}
