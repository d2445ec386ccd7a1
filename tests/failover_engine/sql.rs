//! SQL steps against real PostgreSQL servers (Debian's package): a primary and a hot standby.

use super::*;

fn sql(pg: &postgres::Postgres, statements: &[&str], expect: Option<&str>) -> SqlCall {
    SqlCall {
        target: SqlTarget::Parts {
            host: "127.0.0.1".into(),
            port: pg.port(),
            database: "app".into(),
            user: pg.superuser().into(),
            password: Some(postgres::SUPERUSER_PASSWORD.into()),
        },
        ssl_mode: SslMode::Prefer,
        statements: statements.iter().map(|s| s.to_string()).collect(),
        expect: expect.map(str::to_string),
        statement_timeout: Some(std::time::Duration::from_secs(5)),
    }
}

#[tokio::test]
async fn sql_steps_run_statements_check_the_result_and_do_not_promote_a_primary_twice() {
    let pg = postgres::Postgres::start().await;
    pg.create_database("app").await;
    let step = run(StepKind::Sql, false);
    let marks = [
        "CREATE TABLE IF NOT EXISTS marks (k text PRIMARY KEY)",
        "INSERT INTO marks VALUES ('a') ON CONFLICT DO NOTHING",
        "SELECT count(*) FROM marks",
    ];
    let ok = sql_step::execute(&sql(&pg, &marks, Some("1")), &step).await;
    assert!(
        ok.as_ref().is_ok_and(|m| m.contains("as expected")),
        "{ok:?}"
    );
    // The wrong expected value fails for good, saying what came back.
    let wrong = sql_step::execute(&sql(&pg, &marks, Some("2")), &step)
        .await
        .expect_err("mismatch");
    assert!(
        !wrong.retryable
            && wrong.message.contains("expected \"2\"")
            && wrong.message.contains("\"1\""),
        "{wrong:?}"
    );
    // An SQL error is permanent and carries the server's SQLSTATE.
    let broken = sql_step::execute(&sql(&pg, &["SELEC 1"], None), &step)
        .await
        .expect_err("syntax");
    assert!(
        !broken.retryable && broken.message.contains("42601"),
        "{broken:?}"
    );
    // The try's key is the session's application_name.
    let name = sql_step::execute(
        &sql(
            &pg,
            &["SELECT current_setting('application_name')"],
            Some("watchkeeper:prod/regional/failover-1-x/1/1"),
        ),
        &step,
    )
    .await;
    assert!(name.is_ok(), "{name:?}");
    // A dry run connects and runs nothing.
    let dry = sql_step::execute(
        &sql(&pg, &["INSERT INTO marks VALUES ('b')"], None),
        &run(StepKind::Sql, true),
    )
    .await;
    assert!(
        dry.as_ref().is_ok_and(|m| m.starts_with("dry run")),
        "{dry:?}"
    );
    assert_eq!(pg.psql("app", "SELECT count(*) FROM marks").await, "1");
    // Promotion checks before it acts: this server is a primary already.
    let promote = sql_step::execute(&sql(&pg, &["SELECT pg_promote()"], Some("t")), &step).await;
    assert!(
        promote
            .as_ref()
            .is_ok_and(|m| m.contains("already a primary")),
        "{promote:?}"
    );
    // A wrong password is reported without any password in the message.
    let mut bad = sql(&pg, &marks, None);
    if let SqlTarget::Parts { password, .. } = &mut bad.target {
        *password = Some("not-the-password-91".into());
    }
    let refused = sql_step::execute(&bad, &step).await.expect_err("auth");
    assert!(
        !refused.message.contains("not-the-password-91")
            && !refused.message.contains(postgres::SUPERUSER_PASSWORD),
        "{refused:?}"
    );
    assert!(
        refused.message.contains("28P01") && !refused.retryable,
        "{refused:?}"
    );
    // TLS is refused clearly rather than silently downgraded.
    let mut tls = sql(&pg, &marks, None);
    tls.ssl_mode = SslMode::Require;
    let tls = sql_step::execute(&tls, &step).await.expect_err("tls");
    assert!(!tls.retryable && tls.message.contains("TLS"), "{tls:?}");
}

/// A hot standby of `primary`, made with `pg_basebackup -R` and run like the harness runs its
/// servers (as the `postgres` user when root). Stopped and removed on drop.
struct Standby {
    dir: std::path::PathBuf,
    port: u16,
    child: Option<std::process::Child>,
}

fn server_command(program: std::path::PathBuf, root: bool) -> std::process::Command {
    if root {
        let mut cmd = std::process::Command::new("setpriv");
        cmd.args([
            "--reuid=postgres",
            "--regid=postgres",
            "--init-groups",
            "--",
        ])
        .arg(program);
        cmd
    } else {
        std::process::Command::new(program)
    }
}

impl Standby {
    fn start(primary: &postgres::Postgres) -> Self {
        let root = std::process::Command::new("id")
            .arg("-u")
            .output()
            .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
        let dir = postgres::unique_temp_dir("pg-standby");
        std::fs::create_dir_all(&dir).expect("standby dir");
        if root {
            let chown = std::process::Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&dir)
                .status();
            assert!(chown.is_ok_and(|s| s.success()), "chown standby dir");
        }
        let data = dir.join("data");
        let out = server_command(primary.bin("pg_basebackup"), root)
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &primary.port().to_string(),
                "-U",
                "postgres",
                "-R",
                "-X",
                "stream",
                "--checkpoint=fast",
                "--no-sync",
                "-D",
            ])
            .arg(&data)
            .env("PGPASSWORD", postgres::SUPERUSER_PASSWORD)
            .output()
            .expect("run pg_basebackup");
        assert!(
            out.status.success(),
            "pg_basebackup: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = postgres::free_port();
        let log = std::fs::File::create(dir.join("server.log")).expect("log");
        let child = server_command(primary.bin("postgres"), root)
            .arg("-D")
            .arg(&data)
            .args([
                "-p",
                &port.to_string(),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "fsync=off",
            ])
            .arg("-c")
            .arg(format!("unix_socket_directories={}", dir.display()))
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .expect("spawn standby");
        let standby = Self {
            dir,
            port,
            child: Some(child),
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let ready = std::process::Command::new(primary.bin("pg_isready"))
                .args(["-h", "127.0.0.1", "-p", &port.to_string(), "-q"])
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return standby;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "standby did not start: {}",
                std::fs::read_to_string(standby.dir.join("server.log")).unwrap_or_default()
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

impl Drop for Standby {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = std::process::Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[tokio::test]
async fn a_promotion_step_promotes_a_real_standby_once_even_when_the_process_dies_after_it() {
    let primary = postgres::Postgres::start().await;
    primary.create_database("app").await;
    let standby = Standby::start(&primary);
    let mut call = sql(&primary, &["SELECT pg_promote()"], Some("t"));
    call.target = SqlTarget::Parts {
        host: "127.0.0.1".into(),
        port: standby.port,
        database: "app".into(),
        user: "postgres".into(),
        password: Some(postgres::SUPERUSER_PASSWORD.into()),
    };
    let in_recovery = sql_step::execute(
        &sql_on(&call, &["SELECT pg_is_in_recovery()"], "t"),
        &run(StepKind::Sql, false),
    )
    .await;
    assert!(
        in_recovery.is_ok(),
        "the standby starts in recovery: {in_recovery:?}"
    );
    // Dry run: connects, sees a standby, promotes nothing.
    let dry = sql_step::execute(&call, &run(StepKind::Sql, true)).await;
    assert!(
        dry.as_ref().is_ok_and(|m| m.contains("in recovery")),
        "{dry:?}"
    );
    // The try promotes; the same try again (a crash before its outcome was saved) finds a
    // primary and runs nothing.
    let first = sql_step::execute(&call, &run(StepKind::Sql, false)).await;
    assert!(
        first.as_ref().is_ok_and(|m| m.contains("as expected")),
        "{first:?}"
    );
    let again = sql_step::execute(&call, &run(StepKind::Sql, false)).await;
    assert!(
        again
            .as_ref()
            .is_ok_and(|m| m.contains("already a primary")),
        "{again:?}"
    );
    let promoted = sql_step::execute(
        &sql_on(&call, &["SELECT pg_is_in_recovery()"], "f"),
        &run(StepKind::Sql, false),
    )
    .await;
    assert!(promoted.is_ok(), "{promoted:?}");

    // Through the driver: the process dies right after the promotion ran, before its outcome
    // was saved; the next process repeats the try, which finds a primary and runs nothing.
    let standby = Standby::start(&primary);
    let yaml = format!(
        r#"
primary: {{name: db-east, healthMonitorRef: {{name: db-east}}}}
secondary: {{name: db-west, healthMonitorRef: {{name: db-west}}}}
steps:
- name: promote-west
  sql:
    connection: {{host: 127.0.0.1, port: {}, database: app, user: postgres, passwordSecretRef: {{name: pg, key: password}}}}
    statements: ["SELECT pg_promote()"]
    expect: "t"
"#,
        standby.port
    );
    let spec: FailoverPlanSpec = serde_yaml::from_str(&yaml).expect("spec");
    let plan = PlanPolicy::from_spec("prod/db", &spec).expect("policy");
    let password =
        |r: &SecretKeyRef| (r.name == "pg").then(|| postgres::SUPERUSER_PASSWORD.to_string());
    let resolved = ResolvedPlan::resolve(&spec, &password).expect("resolves");
    let store = Store::default();
    let dying = Crashing {
        inner: StepExecutor::new(resolved.clone(), client(), NoCluster),
        executions: AtomicUsize::new(0),
        crash: Mutex::new(Some(Crash::AfterEffect(1))),
        crashed: Arc::new(Notify::new()),
    };
    let crashed = dying.crashed.clone();
    tokio::select! {
        r = drive(&plan, &dying, &store, triggered, clock) => panic!("should have crashed: {r:?}"),
        () = crashed.notified() => {}
    }
    let in_flight = store
        .record
        .lock()
        .expect("store")
        .clone()
        .expect("saved before the try");
    let step = &in_flight.current_attempt.as_ref().expect("attempt").steps[0];
    assert_eq!((step.phase, step.attempts), (StepPhase::Running, 1));
    let executor = StepExecutor::new(resolved, client(), NoCluster);
    let settled = drive(&plan, &executor, &store, triggered, clock)
        .await
        .expect("resumes");
    assert_eq!(settled.record.phase, Phase::FailedOver);
    let step = &settled
        .record
        .current_attempt
        .as_ref()
        .expect("attempt")
        .steps[0];
    assert_eq!((step.phase, step.attempts), (StepPhase::Succeeded, 1));
    assert!(
        step.message
            .as_deref()
            .is_some_and(|m| m.contains("already a primary")),
        "{step:?}"
    );
}

fn sql_on(call: &SqlCall, statements: &[&str], expect: &str) -> SqlCall {
    SqlCall {
        statements: statements.iter().map(|s| s.to_string()).collect(),
        expect: Some(expect.to_string()),
        ..call.clone()
    }
}
