//! The generated BackupPolicy schema (OpenAPI constraints and CEL rules) run through the same
//! validator `check` and the test API server use: one-of rules hold without `validate()`.

use super::BackupPolicy;
use super::validate::tests::GOOD;
use crate::api::schema_test_support::{self as support, yaml};

fn errors(edit: impl FnOnce(&mut serde_yaml::Value)) -> Vec<String> {
    support::schema_errors::<BackupPolicy>(GOOD, edit)
}

#[track_caller]
fn rejects_at(path: &str, edit: impl FnOnce(&mut serde_yaml::Value)) {
    support::rejects_at::<BackupPolicy>(GOOD, path, edit);
}

#[test]
fn good_policy_passes_the_schema() {
    assert_eq!(errors(|_| {}), Vec::<String>::new());
}

#[test]
fn one_destination() {
    rejects_at("spec.destination", |s| {
        s["destination"]["pvc"] = yaml("{claimName: backups}")
    });
    rejects_at("spec.destination", |s| s["destination"] = yaml("{}"));
}

#[test]
fn s3_keys_in_pairs() {
    rejects_at("spec.destination.s3", |s| {
        if let Some(m) = s["destination"]["s3"].as_mapping_mut() {
            m.remove("secretAccessKeySecretRef");
        }
    });
}

#[test]
fn connection_uri_or_parts() {
    rejects_at("spec.source.connection", |s| {
        s["source"]["connection"]["uriSecretRef"] = yaml("{name: db, key: uri}")
    });
}

#[test]
fn retention_counts() {
    rejects_at("spec.retention", |s| s["retention"] = yaml("{keepLast: 0}"));
    rejects_at("spec.retention.daily", |s| {
        s["retention"]["daily"] = yaml("-1")
    });
}

#[test]
fn sql_check_expectation_one_of() {
    rejects_at("spec.verification.sqlChecks[0]", |s| {
        s["verification"]["sqlChecks"][0]["expect"] = yaml("'5'")
    });
}

#[test]
fn secrets_only_by_reference() {
    rejects_at("spec.destination.s3.secretAccessKey", |s| {
        s["destination"]["s3"]["secretAccessKey"] = yaml("abc")
    });
}

#[test]
fn crd_fits_a_client_side_apply() {
    support::assert_crd_fits_a_client_side_apply::<BackupPolicy>();
}
