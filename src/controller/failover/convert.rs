//! The engine's [`FailoverRecord`] ↔ the API's `FailoverPlanStatus` fields. Both serialize to
//! the same camelCase JSON, so the conversion is a serde round trip; what the status has no
//! field for (the refusal, an attempt's end and result) is restored from elsewhere: the
//! refusal from the `TriggerAllowed` condition, the attempt's end from `history` (the engine
//! treats an attempt named there as over).

use serde_json::{Map, Value};

use crate::api::Condition;
use crate::api::failover_plan::{FailoverPlanStatus, condition};
use crate::failover::{FailoverRecord, Refusal, RefusalReason};

/// Status fields this module owns: everything but `conditions` and `observedGeneration`.
pub fn status_fields(record: &FailoverRecord) -> Result<Map<String, Value>, serde_json::Error> {
    let status: FailoverPlanStatus = serde_json::from_value(serde_json::to_value(record)?)?;
    let mut fields = match serde_json::to_value(status)? {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    fields.remove("conditions");
    fields.remove("observedGeneration");
    Ok(fields)
}

/// The record kept in a stored status; the refusal comes from `TriggerAllowed=False`.
pub fn record_of(status: &FailoverPlanStatus) -> Result<FailoverRecord, serde_json::Error> {
    let mut record: FailoverRecord = serde_json::from_value(serde_json::to_value(status)?)?;
    record.refusal = refusal_of(&status.conditions);
    Ok(record)
}

fn refusal_of(conditions: &[Condition]) -> Option<Refusal> {
    let c = conditions
        .iter()
        .find(|c| c.type_ == condition::TRIGGER_ALLOWED && c.status == "False")?;
    let reason: RefusalReason = serde_json::from_value(Value::String(c.reason.clone())).ok()?;
    Some(Refusal {
        reason,
        message: c.message.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};

    use crate::failover::{
        AttemptKind, AttemptRecord, Phase, StepPhase, StepRecord, TriggerSource,
    };

    #[test]
    fn a_pending_retry_and_the_attempt_counter_survive_the_status() {
        let at = Utc.with_ymd_and_hms(2026, 11, 23, 17, 0, 0).unwrap();
        let record = FailoverRecord {
            phase: Phase::InProgress,
            attempts_started: 4,
            last_drill_token: Some("d1".into()),
            current_attempt: Some(AttemptRecord {
                id: "failover-4-x".into(),
                kind: AttemptKind::Failover,
                trigger: TriggerSource::Manual,
                token: Some("t".into()),
                reason: None,
                dry_run: false,
                approved: false,
                start_time: at,
                end_time: None,
                result: None,
                steps: vec![StepRecord {
                    name: "dns".into(),
                    phase: StepPhase::Running,
                    attempts: 1,
                    start_time: Some(at),
                    end_time: None,
                    retry_at: Some(at + chrono::Duration::seconds(5)),
                    message: Some("500".into()),
                }],
            }),
            ..FailoverRecord::default()
        };
        let fields = status_fields(&record).unwrap();
        let status: FailoverPlanStatus = serde_json::from_value(Value::Object(fields)).unwrap();
        assert_eq!(record_of(&status).unwrap(), record);
    }

    #[test]
    fn the_refusal_is_read_from_the_trigger_allowed_condition() {
        let status = FailoverPlanStatus {
            conditions: vec![Condition {
                type_: "TriggerAllowed".into(),
                status: "False".into(),
                reason: "MaintenanceWindow".into(),
                message: "window ops/freeze is open".into(),
                last_transition_time: k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(
                    k8s_openapi::jiff::Timestamp::now(),
                ),
                observed_generation: None,
            }],
            ..FailoverPlanStatus::default()
        };
        let refusal = record_of(&status).unwrap().refusal.unwrap();
        assert_eq!(refusal.reason, RefusalReason::MaintenanceWindow);
        assert_eq!(refusal.message, "window ops/freeze is open");
    }
}
