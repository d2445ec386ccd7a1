//! Tests of the BackupPolicy verdicts: RPO basis and flip time, Verified, RetentionApplied,
//! alerts.

use super::*;
use crate::backup::report::Outcome;
use crate::controller::backup::builder::Role;
use crate::controller::backup::builder::tests::{POLICY, policy};
use crate::controller::backup::fold::tests::{at, backup, run, verify};
use crate::controller::backup::fold::{fold, time};

fn reference() -> PolicyRef<'static> {
    PolicyRef {
        namespace: "shop",
        name: "postgres-daily",
        created: Some(at(0) - chrono::Duration::days(30)),
    }
}

fn find<'a>(evaluation: &'a Evaluation, type_: &str) -> &'a DesiredCondition {
    evaluation
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .unwrap()
}

fn keys(evaluation: &Evaluation) -> Vec<String> {
    evaluation
        .firing
        .iter()
        .map(|a| a.key.rsplit('/').next().unwrap().to_string())
        .collect()
}

#[test]
fn rpo_is_met_until_the_newest_backup_ages_past_it() {
    let p = policy(POLICY);
    let mut status = BackupPolicyStatus::default();
    fold(
        &mut status,
        &[run(
            Role::Backup,
            "j1",
            vec![backup(Outcome::Succeeded, "b1", at(3))],
        )],
    );
    let fresh = evaluate(&reference(), &p.spec, &status, at(10));
    let rpo = find(&fresh, condition::RPO_MET);
    assert_eq!(rpo.status, ConditionStatus::True);
    assert!(
        rpo.message.contains("b1") && rpo.message.contains("no verification has run yet"),
        "{}",
        rpo.message
    );
    assert_eq!(fresh.next_change, Some(at(3) + chrono::Duration::hours(24)));
    assert!(keys(&fresh).is_empty(), "{:?}", fresh.firing);

    let stale = evaluate(
        &reference(),
        &p.spec,
        &status,
        at(3) + chrono::Duration::hours(24),
    );
    let rpo = find(&stale, condition::RPO_MET);
    assert_eq!(
        (rpo.status, rpo.reason.as_str()),
        (ConditionStatus::False, "RPOMissed")
    );
    assert_eq!(stale.next_change, None);
    assert_eq!(keys(&stale), ["rpo-missed"]);
    let alert = &stale.firing[0];
    assert_eq!(alert.severity, Severity::P1);
    assert_eq!(alert.starts_at, at(3) + chrono::Duration::hours(24));
    assert_eq!(alert.labels["backuppolicy"], "postgres-daily");
}

#[test]
fn without_verification_the_basis_is_the_newest_successful_backup() {
    let mut p = policy(POLICY);
    p.spec.verification = None;
    let mut status = BackupPolicyStatus::default();
    fold(
        &mut status,
        &[run(
            Role::Backup,
            "j1",
            vec![backup(Outcome::Succeeded, "b1", at(3))],
        )],
    );
    let evaluation = evaluate(&reference(), &p.spec, &status, at(4));
    let rpo = find(&evaluation, condition::RPO_MET);
    assert!(
        rpo.message.contains("verification is off"),
        "{}",
        rpo.message
    );
    let verified = find(&evaluation, condition::VERIFIED);
    assert_eq!(
        (verified.status, verified.reason.as_str()),
        (ConditionStatus::Unknown, "NotConfigured")
    );
}

#[test]
fn after_a_failed_verification_only_the_verified_backup_counts() {
    let p = policy(POLICY);
    let mut status = BackupPolicyStatus::default();
    fold(
        &mut status,
        &[
            run(
                Role::Backup,
                "j1",
                vec![backup(Outcome::Succeeded, "b1", at(1))],
            ),
            run(
                Role::Verify,
                "v1",
                vec![verify(Outcome::Succeeded, "b1", at(1), at(2))],
            ),
            run(
                Role::Backup,
                "j2",
                vec![backup(Outcome::Succeeded, "b2", at(20))],
            ),
        ],
    );
    // The last verification succeeded: the newest backup counts.
    let ok = evaluate(&reference(), &p.spec, &status, at(22));
    assert_eq!(ok.next_change, Some(at(20) + chrono::Duration::hours(24)));
    assert_eq!(find(&ok, condition::VERIFIED).status, ConditionStatus::True);

    fold(
        &mut status,
        &[run(
            Role::Verify,
            "v2",
            vec![verify(Outcome::Failed, "b2", at(20), at(21))],
        )],
    );
    let failed = evaluate(&reference(), &p.spec, &status, at(22));
    let rpo = find(&failed, condition::RPO_MET);
    assert!(
        rpo.message.contains("newest verified backup b1"),
        "{}",
        rpo.message
    );
    // b1 completed at 01:00: the RPO ran out at 01:00 the next day.
    assert_eq!(rpo.status, ConditionStatus::True);
    assert_eq!(
        failed.next_change,
        Some(at(1) + chrono::Duration::hours(24))
    );
    let verified = find(&failed, condition::VERIFIED);
    assert_eq!(
        (verified.status, verified.reason.as_str()),
        (ConditionStatus::False, "VerificationFailed")
    );
    assert!(verified.message.contains("users"), "{}", verified.message);
    assert_eq!(keys(&failed), ["verification-failed"]);
}

#[test]
fn a_new_policy_has_one_rpo_of_grace_then_misses() {
    let p = policy(POLICY);
    let status = BackupPolicyStatus::default();
    let created = PolicyRef {
        created: Some(at(0)),
        ..reference()
    };
    let early = evaluate(&created, &p.spec, &status, at(5));
    let rpo = find(&early, condition::RPO_MET);
    assert_eq!(
        (rpo.status, rpo.reason.as_str()),
        (ConditionStatus::Unknown, "NoBackupYet")
    );
    assert_eq!(early.next_change, Some(at(0) + chrono::Duration::hours(24)));
    let late = evaluate(
        &created,
        &p.spec,
        &status,
        at(0) + chrono::Duration::hours(25),
    );
    let rpo = find(&late, condition::RPO_MET);
    assert_eq!(
        (rpo.status, rpo.reason.as_str()),
        (ConditionStatus::False, "NoBackup")
    );
    assert_eq!(keys(&late), ["rpo-missed"]);
}

#[test]
fn no_rpo_is_unknown_and_never_alerts() {
    let mut p = policy(POLICY);
    p.spec.objectives = None;
    let evaluation = evaluate(&reference(), &p.spec, &BackupPolicyStatus::default(), at(5));
    let rpo = find(&evaluation, condition::RPO_MET);
    assert_eq!(
        (rpo.status, rpo.reason.as_str()),
        (ConditionStatus::Unknown, "NoObjective")
    );
    assert!(evaluation.firing.is_empty());
}

#[test]
fn a_failed_backup_alerts_until_a_later_success() {
    let p = policy(POLICY);
    let mut status = BackupPolicyStatus::default();
    fold(
        &mut status,
        &[
            run(
                Role::Backup,
                "j1",
                vec![backup(Outcome::Succeeded, "b1", at(3))],
            ),
            run(
                Role::Backup,
                "j2",
                vec![backup(Outcome::Failed, "b2", at(4))],
            ),
        ],
    );
    let failing = evaluate(&reference(), &p.spec, &status, at(5));
    assert_eq!(keys(&failing), ["backup-failed"]);
    assert_eq!(failing.firing[0].severity, Severity::P2);
    assert_eq!(failing.firing[0].starts_at, at(4));
    assert_eq!(failing.firing[0].details, "b2: Failed");
    fold(
        &mut status,
        &[run(
            Role::Backup,
            "j3",
            vec![backup(Outcome::Succeeded, "b3", at(5))],
        )],
    );
    assert!(
        evaluate(&reference(), &p.spec, &status, at(6))
            .firing
            .is_empty()
    );
}

#[test]
fn retention_applied_follows_the_last_prune() {
    let p = policy(POLICY);
    let mut status = BackupPolicyStatus::default();
    let none = evaluate(&reference(), &p.spec, &status, at(1));
    assert_eq!(
        find(&none, condition::RETENTION_APPLIED).status,
        ConditionStatus::Unknown
    );
    fold(
        &mut status,
        &[run(
            Role::Backup,
            "j1",
            vec![backup(Outcome::Succeeded, "b1", at(3))],
        )],
    );
    let pruned = evaluate(&reference(), &p.spec, &status, at(4));
    let applied = find(&pruned, condition::RETENTION_APPLIED);
    assert_eq!(applied.status, ConditionStatus::True);
    assert!(
        applied.message.contains("kept 7, deleted 5"),
        "{}",
        applied.message
    );
    if let Some(prune) = status.last_prune.as_mut() {
        prune.message = Some("deleting old-3: access denied".into());
        prune.time = Some(time(at(3)));
    }
    let failed = evaluate(&reference(), &p.spec, &status, at(4));
    let applied = find(&failed, condition::RETENTION_APPLIED);
    assert_eq!(
        (applied.status, applied.reason.as_str()),
        (ConditionStatus::False, "PruneFailed")
    );
    assert!(applied.message.contains("access denied"));
}
