//! The whole state machine under a crash loop.

use super::*;

/// The cluster side of the test plan: `verify` succeeds, counted per step key (check before
/// act, as the controller's executors do).
#[derive(Clone, Default)]
struct FakeCluster {
    effects: Arc<Mutex<HashSet<String>>>,
}

impl ClusterExecutor for FakeCluster {
    async fn execute(&self, run: &StepRun, step: &Step) -> Result<String, StepFailure> {
        assert!(
            step.verify.is_some(),
            "only verify goes to the cluster in this plan"
        );
        let key = format!(
            "{}/{}/{}",
            run.key.plan_id, run.key.attempt_id, run.key.step_index
        );
        self.effects.lock().expect("effects").insert(key);
        Ok("app-west Healthy 3 probes in a row".into())
    }
}

struct World {
    cf: Cloudflare,
    provider: Provider,
    cluster: FakeCluster,
    plan: PlanPolicy,
    resolved: ResolvedPlan,
}

fn spec(provider: &str, cf: &str) -> FailoverPlanSpec {
    let yaml = format!(
        r#"
primary: {{name: us-east-2, healthMonitorRef: {{name: app-ohio}}}}
secondary: {{name: us-west-1, healthMonitorRef: {{name: app-west}}}}
trigger: {{mode: Manual}}
steps:
- name: fence-primary
  fence:
    webhook: {{url: "{provider}/fence"}}
- name: switch-dns
  retries: 2
  backoff: 0s
  dnsSwitch:
    cloudflare:
      zoneId: zone-1
      recordName: app.example.com
      recordType: A
      content: 198.51.100.20
      apiTokenSecretRef: {{name: cloudflare, key: token}}
      apiUrl: "{cf}"
- name: deploy-west
  http:
    url: "{provider}/deploy"
    expectedStatus: ["201"]
    headers:
    - name: Authorization
      valueFrom: {{secretKeyRef: {{name: host, key: token}}}}
- name: verify-west
  verify: {{consecutiveHealthy: 3}}
"#
    );
    serde_yaml::from_str(&yaml).expect("spec parses")
}

fn secrets(r: &SecretKeyRef) -> Option<String> {
    match (r.name.as_str(), r.key.as_str()) {
        ("cloudflare", "token") => Some(TOKEN.to_string()),
        ("host", "token") => Some("Bearer host-token".to_string()),
        _ => None,
    }
}

async fn world() -> World {
    let cf = Cloudflare::start(TOKEN, vec![record("203.0.113.10")]).await;
    let provider = Provider::default();
    let base = provider.start().await;
    let spec = spec(&base, &cf.api_url);
    let plan = PlanPolicy::from_spec("prod/regional", &spec).expect("policy");
    let resolved = ResolvedPlan::resolve(&spec, &secrets).expect("secrets resolve");
    World {
        cf,
        provider,
        cluster: FakeCluster::default(),
        plan,
        resolved,
    }
}

/// Drives the plan to the end, restarting after every crash with nothing but the store.
/// Returns the final record and how many crashes happened.
async fn run_with(world: &World, crash: Option<Crash>) -> (FailoverRecord, usize) {
    let store = Store::default();
    *store.crash.lock().expect("crash") =
        crash.filter(|c| matches!(c, Crash::BeforeSave(_) | Crash::AfterSave(_)));
    let step_crash = crash.filter(|c| matches!(c, Crash::BeforeEffect(_) | Crash::AfterEffect(_)));
    let executions = Arc::new(AtomicUsize::new(0));
    let mut crashes = 0;
    for _ in 0..10 {
        // A fresh process: a new executor; only the store survives.
        let executor = Crashing {
            inner: StepExecutor::new(world.resolved.clone(), client(), world.cluster.clone()),
            executions: AtomicUsize::new(executions.load(Ordering::SeqCst)),
            crash: Mutex::new(if crashes == 0 { step_crash } else { None }),
            crashed: Arc::new(Notify::new()),
        };
        let crashed = executor.crashed.clone();
        let result = tokio::select! {
            r = drive(&world.plan, &executor, &store, triggered, clock) => Some(r),
            () = crashed.notified() => None,
        };
        executions.store(executor.executions.load(Ordering::SeqCst), Ordering::SeqCst);
        match result {
            Some(Ok(settled)) => {
                assert_eq!(settled.action, Action::Idle { wake_at: None });
                return (settled.record, crashes);
            }
            Some(Err(FailoverError::Store(_))) | None => crashes += 1,
            Some(Err(other)) => panic!("unexpected error: {other}"),
        }
    }
    panic!("the plan did not finish after 10 restarts");
}

fn assert_effects_once(world: &World) {
    assert_eq!(world.provider.effects("/fence"), 1, "fence webhook");
    assert_eq!(world.provider.effects("/deploy"), 1, "deploy call");
    assert_eq!(world.cf.patches(), 1, "DNS record updates");
    assert_eq!(
        world.cluster.effects.lock().expect("effects").len(),
        1,
        "verify"
    );
    assert!(world.cf.malformed().is_empty());
    let record = world.cf.record("rec-1").expect("record");
    assert_eq!(record.content, "198.51.100.20");
}

/// The record without step messages: they name the local servers' ports, and a step resumed
/// after its effect says "nothing changed" where an uninterrupted one says what it changed.
fn without_messages(record: &FailoverRecord) -> FailoverRecord {
    let mut record = record.clone();
    for step in record
        .current_attempt
        .iter_mut()
        .flat_map(|a| a.steps.iter_mut())
    {
        step.message = None;
    }
    record
}

#[tokio::test]
async fn a_clean_run_fails_over_and_records_every_step() {
    let world = world().await;
    let (record, crashes) = run_with(&world, None).await;
    assert_eq!(crashes, 0);
    assert_eq!(record.phase, Phase::FailedOver);
    assert_eq!(record.active_region.as_deref(), Some("us-west-1"));
    let attempt = record.current_attempt.as_ref().expect("attempt");
    assert!(
        attempt
            .steps
            .iter()
            .all(|s| s.phase == StepPhase::Succeeded && s.attempts == 1),
        "{attempt:?}"
    );
    assert_effects_once(&world);
}

#[tokio::test]
async fn a_crash_at_every_save_and_inside_every_step_ends_the_same_with_effects_once() {
    let reference = world().await;
    let (expected, _) = run_with(&reference, None).await;
    let saves = {
        // Count the saves of a clean run.
        let fresh = world().await;
        let store = Store::default();
        let executor = StepExecutor::new(fresh.resolved.clone(), client(), fresh.cluster.clone());
        drive(&fresh.plan, &executor, &store, triggered, clock)
            .await
            .expect("clean run");
        store.saves.load(Ordering::SeqCst)
    };
    let steps = expected
        .current_attempt
        .as_ref()
        .map_or(0, |a| a.steps.len());
    let mut positions = Vec::new();
    for n in 1..=saves {
        positions.push(Crash::BeforeSave(n));
        positions.push(Crash::AfterSave(n));
    }
    for n in 1..=steps {
        positions.push(Crash::BeforeEffect(n));
        positions.push(Crash::AfterEffect(n));
    }
    assert!(positions.len() >= 2 * (4 + 4), "{positions:?}");
    for crash in positions {
        let world = world().await;
        let (record, crashes) = run_with(&world, Some(crash)).await;
        assert_eq!(crashes, 1, "{crash:?} crashed once");
        assert_eq!(
            without_messages(&record),
            without_messages(&expected),
            "{crash:?}: same final record"
        );
        assert!(
            record
                .current_attempt
                .iter()
                .flat_map(|a| &a.steps)
                .all(|s| s.message.is_some()),
            "{crash:?}: every step has a message"
        );
        assert_effects_once(&world);
    }
}

/// The record's JSON is the status's JSON for every field the status has, so the controller's
/// conversion is a serde round trip plus the fields the status lacks (listed here, so a change
/// on either side shows up).
#[tokio::test]
async fn the_record_reads_as_a_failover_plan_status() {
    use watchkeeper::api::failover_plan::{
        AttemptResult as ApiResult, FailoverPhase, FailoverPlanStatus, StepPhase as ApiStep,
    };
    let world = world().await;
    let (record, _) = run_with(&world, None).await;
    let json = serde_json::to_value(&record).expect("record JSON");
    let status: FailoverPlanStatus = serde_json::from_value(json).expect("reads as status");
    assert_eq!(status.phase, FailoverPhase::FailedOver);
    assert_eq!(status.active_region.as_deref(), Some("us-west-1"));
    assert_eq!(status.last_trigger_token.as_deref(), Some("ohio-outage-1"));
    assert_eq!(status.last_rto_seconds, record.last_rto_seconds);
    let attempt = status.current_attempt.as_ref().expect("attempt");
    assert_eq!(
        attempt.id,
        record.current_attempt.as_ref().expect("attempt").id
    );
    assert!(
        attempt
            .steps
            .iter()
            .all(|s| s.phase == ApiStep::Succeeded && s.attempts == 1)
    );
    assert_eq!(status.history[0].result, ApiResult::Succeeded);
    assert!(status.cooldown_until.is_some());
    // Back again: only the engine's extra fields are lost (the status now keeps the attempt
    // counter, the last drill token and each step's retry time).
    let back: FailoverRecord =
        serde_json::from_value(serde_json::to_value(&status).expect("status JSON"))
            .expect("reads as record");
    let mut expected = record.clone();
    expected.refusal = None;
    if let Some(a) = expected.current_attempt.as_mut() {
        a.end_time = None;
        a.result = None;
    }
    assert_eq!(back, expected);
    // The history tells the engine the attempt is over: nothing runs again.
    let again = watchkeeper::failover::decide(&world.plan, &back, &triggered(), clock());
    assert_eq!(again.action, Action::Idle { wake_at: None });
    assert!(again.transitions.is_empty(), "{:?}", again.transitions);
    assert_eq!(again.record.history.len(), 1);
}
