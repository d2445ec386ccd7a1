//! Retention tests: a fixed 400-day history against an independently computed expectation, and
//! property tests over random histories and policies.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, Datelike, NaiveDate, TimeDelta, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use proptest::prelude::*;

use super::*;

fn now() -> DateTime<Utc> {
    // A Monday.
    Utc.with_ymd_and_hms(2026, 11, 23, 12, 0, 0).unwrap()
}

fn policy(keep_last: u32, daily: u32, weekly: u32, monthly: u32, yearly: u32) -> RetentionPolicy {
    RetentionPolicy {
        keep_last,
        daily,
        weekly,
        monthly,
        yearly,
        min_age: Duration::ZERO,
    }
}

fn kept_ids(decision: &RetentionDecision) -> BTreeSet<String> {
    decision.keep.iter().map(|(id, _)| id.clone()).collect()
}

fn id_for(date: NaiveDate) -> String {
    format!("backup-{}-0300", date.format("%Y%m%d"))
}

fn reasons_of(decision: &RetentionDecision, id: &str) -> Vec<KeepReason> {
    decision
        .keep
        .iter()
        .find(|(kept, _)| kept == id)
        .map(|(_, reasons)| reasons.clone())
        .unwrap_or_default()
}

#[test]
fn sample_history_is_daily_and_ends_at_the_last_passed_hour() {
    let history = sample_daily_history(now(), 400, 3);
    assert_eq!(history.len(), 400);
    assert_eq!(
        history[399].completed_at,
        Utc.with_ymd_and_hms(2026, 11, 23, 3, 0, 0).unwrap()
    );
    assert!(
        history
            .windows(2)
            .all(|p| p[1].completed_at - p[0].completed_at == TimeDelta::days(1))
    );
    assert!(history.iter().all(|b| b.successful));
    let before_hour = sample_daily_history(now(), 2, 13);
    assert_eq!(
        before_hour[1].completed_at,
        Utc.with_ymd_and_hms(2026, 11, 22, 13, 0, 0).unwrap()
    );
}

#[test]
fn four_hundred_days_with_seven_four_three() {
    let history = sample_daily_history(now(), 400, 3);
    let decision = plan(&policy(0, 7, 4, 3, 0), Tz::UTC, &history, now());

    // Independent expectation by date arithmetic.
    let today = NaiveDate::from_ymd_opt(2026, 11, 23).unwrap();
    let mut expected = BTreeSet::new();
    // The last 7 days.
    for back in 0..7 {
        expected.insert(id_for(today - TimeDelta::days(back)));
    }
    // Newest of each of the 4 most recent ISO weeks: today (this week has begun), then the
    // Sundays ending the three previous weeks.
    assert_eq!(today.weekday(), Weekday::Mon);
    expected.insert(id_for(today));
    for k in 0..3 {
        expected.insert(id_for(today - TimeDelta::days(1 + 7 * k)));
    }
    // Newest of each of the 3 most recent months: today, 31 October, 30 September.
    expected.insert(id_for(today));
    for first_of_next in [(2026, 11), (2026, 10)] {
        let first = NaiveDate::from_ymd_opt(first_of_next.0, first_of_next.1, 1).unwrap();
        expected.insert(id_for(first.pred_opt().unwrap()));
    }
    assert_eq!(kept_ids(&decision), expected);
    assert_eq!(decision.keep.len() + decision.delete.len(), 400);
    assert_eq!(expected.len(), 7 + 2 + 2, "overlaps are counted once");

    assert_eq!(
        reasons_of(&decision, &id_for(today)),
        vec![
            KeepReason::Newest,
            KeepReason::NewestSuccessful,
            KeepReason::Daily,
            KeepReason::Weekly,
            KeepReason::Monthly
        ]
    );
    assert_eq!(
        reasons_of(
            &decision,
            &id_for(NaiveDate::from_ymd_opt(2026, 9, 30).unwrap())
        ),
        vec![KeepReason::Monthly]
    );
    assert_eq!(
        reasons_of(
            &decision,
            &id_for(NaiveDate::from_ymd_opt(2026, 11, 15).unwrap())
        ),
        vec![KeepReason::Weekly]
    );
}

#[test]
fn yearly_and_time_zone_boundaries() {
    // 23:30 UTC on 31 December is already the next year in Berlin.
    let backups = vec![
        BackupRecord {
            id: "a".into(),
            completed_at: Utc.with_ymd_and_hms(2025, 12, 31, 23, 30, 0).unwrap(),
            successful: true,
        },
        BackupRecord {
            id: "b".into(),
            completed_at: Utc.with_ymd_and_hms(2025, 12, 31, 12, 0, 0).unwrap(),
            successful: true,
        },
        BackupRecord {
            id: "c".into(),
            completed_at: Utc.with_ymd_and_hms(2026, 1, 2, 12, 0, 0).unwrap(),
            successful: true,
        },
    ];
    let yearly = policy(0, 0, 0, 0, 2);
    assert_eq!(
        kept_ids(&plan(&yearly, Tz::UTC, &backups, now())),
        ["a", "c"].map(String::from).into_iter().collect()
    );
    assert_eq!(
        kept_ids(&plan(&yearly, chrono_tz::Europe::Berlin, &backups, now())),
        ["b", "c"].map(String::from).into_iter().collect()
    );
}

#[test]
fn failed_backups_do_not_count_and_are_deleted_unless_newest_or_young() {
    let at = |days: i64| now() - TimeDelta::days(days);
    let backups = vec![
        BackupRecord {
            id: "failed-newest".into(),
            completed_at: at(0),
            successful: false,
        },
        BackupRecord {
            id: "ok-1".into(),
            completed_at: at(1),
            successful: true,
        },
        BackupRecord {
            id: "failed-2".into(),
            completed_at: at(2),
            successful: false,
        },
        BackupRecord {
            id: "ok-3".into(),
            completed_at: at(3),
            successful: true,
        },
        BackupRecord {
            id: "ok-4".into(),
            completed_at: at(4),
            successful: true,
        },
    ];
    let decision = plan(&policy(0, 2, 0, 0, 0), Tz::UTC, &backups, now());
    assert_eq!(
        reasons_of(&decision, "failed-newest"),
        vec![KeepReason::Newest]
    );
    assert_eq!(
        reasons_of(&decision, "ok-1"),
        vec![KeepReason::NewestSuccessful, KeepReason::Daily]
    );
    assert_eq!(reasons_of(&decision, "ok-3"), vec![KeepReason::Daily]);
    assert_eq!(
        decision.delete,
        vec!["failed-2".to_string(), "ok-4".to_string()]
    );

    let young = RetentionPolicy {
        min_age: Duration::from_secs(3 * 86_400),
        ..policy(0, 0, 0, 0, 0)
    };
    let decision = plan(&young, Tz::UTC, &backups, now());
    assert_eq!(
        reasons_of(&decision, "failed-2"),
        vec![KeepReason::TooYoung]
    );
    assert_eq!(
        decision.delete,
        vec!["ok-3".to_string(), "ok-4".to_string()]
    );
}

#[test]
fn empty_history_and_all_zero_policy() {
    assert_eq!(
        plan(&policy(0, 0, 0, 0, 0), Tz::UTC, &[], now()),
        RetentionDecision::default()
    );
    let history = sample_daily_history(now(), 10, 3);
    let decision = plan(&policy(0, 0, 0, 0, 0), Tz::UTC, &history, now());
    assert_eq!(decision.keep.len(), 1);
    assert_eq!(decision.keep[0].0, history[9].id);
    let decision = plan(&policy(3, 0, 0, 0, 0), Tz::UTC, &history, now());
    assert_eq!(decision.keep.len(), 3);
}

fn arb_history() -> impl Strategy<Value = Vec<BackupRecord>> {
    // Up to 120 backups within ~3 years before now, a few in the future (clock skew).
    prop::collection::vec((-2_000i64..1_600_000, prop::bool::weighted(0.7)), 0..120).prop_map(
        |items| {
            items
                .into_iter()
                .enumerate()
                .map(|(i, (minutes_ago, successful))| BackupRecord {
                    id: format!("b{i}"),
                    completed_at: now() - TimeDelta::minutes(minutes_ago),
                    successful,
                })
                .collect()
        },
    )
}

/// A count that is zero a third of the time, so policies that keep (almost) nothing, where the
/// always-keep rules matter, are common.
fn arb_count(max: u32) -> impl Strategy<Value = u32> {
    prop_oneof![1 => Just(0u32), 2 => 0..max]
}

fn arb_policy() -> impl Strategy<Value = RetentionPolicy> {
    (
        arb_count(6),
        arb_count(10),
        arb_count(6),
        arb_count(6),
        arb_count(3),
        prop_oneof![Just(0u64), 0u64..(10 * 86_400)],
    )
        .prop_map(
            |(keep_last, daily, weekly, monthly, yearly, min_age)| RetentionPolicy {
                keep_last,
                daily,
                weekly,
                monthly,
                yearly,
                min_age: Duration::from_secs(min_age),
            },
        )
}

fn arb_tz() -> impl Strategy<Value = Tz> {
    prop::sample::select(vec![
        Tz::UTC,
        chrono_tz::Europe::Berlin,
        chrono_tz::America::New_York,
        chrono_tz::Australia::Lord_Howe,
        chrono_tz::Asia::Kolkata,
    ])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn invariants(history in arb_history(), policy in arb_policy(), tz in arb_tz()) {
        let decision = plan(&policy, tz, &history, now());
        let kept = kept_ids(&decision);
        let deleted: BTreeSet<String> = decision.delete.iter().cloned().collect();
        let all: BTreeSet<String> = history.iter().map(|b| b.id.clone()).collect();

        // keep ∪ delete = input, disjoint, no duplicates.
        prop_assert!(kept.is_disjoint(&deleted));
        prop_assert_eq!(kept.union(&deleted).cloned().collect::<BTreeSet<_>>(), all);
        prop_assert_eq!(decision.keep.len() + decision.delete.len(), history.len());
        prop_assert!(decision.keep.iter().all(|(_, reasons)| !reasons.is_empty()));

        // The newest successful backup is always kept.
        if let Some(newest) = history
            .iter()
            .filter(|b| b.successful)
            .max_by(|a, b| a.completed_at.cmp(&b.completed_at).then_with(|| a.id.cmp(&b.id)))
        {
            prop_assert!(kept.contains(&newest.id));
        }

        // Nothing younger than min_age is deleted.
        let by_id: BTreeMap<&str, &BackupRecord> =
            history.iter().map(|b| (b.id.as_str(), b)).collect();
        for id in &decision.delete {
            let age = now() - by_id[id.as_str()].completed_at;
            prop_assert!(age >= TimeDelta::from_std(policy.min_age).unwrap(), "{} deleted at age {}", id, age);
        }

        // Planning again on what is kept deletes nothing more.
        let survivors: Vec<BackupRecord> =
            history.iter().filter(|b| kept.contains(&b.id)).cloned().collect();
        let again = plan(&policy, tz, &survivors, now());
        prop_assert!(again.delete.is_empty(), "second pass deletes {:?}", again.delete);
    }

    #[test]
    fn raising_a_count_never_deletes_more(
        history in arb_history(),
        policy in arb_policy(),
        tz in arb_tz(),
        which in 0usize..5,
        extra in 1u32..5,
    ) {
        let mut more = policy.clone();
        match which {
            0 => more.keep_last += extra,
            1 => more.daily += extra,
            2 => more.weekly += extra,
            3 => more.monthly += extra,
            _ => more.yearly += extra,
        }
        let before: BTreeSet<String> = plan(&policy, tz, &history, now()).delete.into_iter().collect();
        let after: BTreeSet<String> = plan(&more, tz, &history, now()).delete.into_iter().collect();
        prop_assert!(after.is_subset(&before), "{:?} not within {:?}", after, before);
    }
}
