//! Unit tests of the failover engine.

mod gates;
mod machine;
mod resolve;

use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};

use crate::probe::health::Health;

use super::gates::{MonitorObservation, Observations};
use super::plan::{PlanPolicy, RegionPolicy, StepKind, StepPolicy, TriggerPolicy};

/// 2026-11-23 12:00:00 UTC plus `secs`.
pub(super) fn at(secs: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0)
        .single()
        .expect("valid time")
        + chrono::Duration::seconds(secs)
}

pub(super) fn step(name: &str, kind: StepKind) -> StepPolicy {
    StepPolicy {
        name: name.to_string(),
        kind,
        timeout: Duration::from_secs(60),
        retries: 0,
        backoff: Duration::from_secs(10),
        continue_on_error: false,
    }
}

/// An automatic plan: primary `ohio` judged by `app-ohio`, secondary `west` by `app-west`,
/// dwell 5 min, cooldown 1 h, three steps (fence, dns, verify).
pub(super) fn plan() -> PlanPolicy {
    PlanPolicy {
        plan_id: "prod/regional".to_string(),
        primary: RegionPolicy {
            name: "ohio".to_string(),
            monitors: vec!["app-ohio".to_string()],
        },
        secondary: RegionPolicy {
            name: "west".to_string(),
            monitors: vec!["app-west".to_string()],
        },
        trigger: TriggerPolicy {
            automatic: true,
            dwell: Duration::from_secs(300),
            quorum: None,
            cooldown: Duration::from_secs(3600),
            require_approval: false,
            allow_stale_backup: false,
            backup_gate: false,
            suspended: false,
        },
        steps: vec![
            step("fence", StepKind::Fence),
            step("dns", StepKind::DnsSwitch),
            step("verify", StepKind::Verify),
        ],
        failback_steps: vec![step("dns-back", StepKind::DnsSwitch)],
    }
}

pub(super) fn monitor(
    name: &str,
    health: Health,
    since: Option<DateTime<Utc>>,
) -> MonitorObservation {
    MonitorObservation {
        name: name.to_string(),
        health,
        since,
    }
}

/// Primary Down since `down_at`, secondary Healthy.
pub(super) fn outage(down_at: DateTime<Utc>) -> Observations {
    Observations {
        monitors: vec![
            monitor("app-ohio", Health::Down, Some(down_at)),
            monitor("app-west", Health::Healthy, None),
        ],
        ..Observations::default()
    }
}

/// Both regions Healthy.
pub(super) fn calm() -> Observations {
    Observations {
        monitors: vec![
            monitor("app-ohio", Health::Healthy, None),
            monitor("app-west", Health::Healthy, None),
        ],
        ..Observations::default()
    }
}
