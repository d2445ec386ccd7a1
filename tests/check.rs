//! `watchkeeper check`, run as the built binary: invalid fixtures, examples, JSON output, stdin,
//! skipped documents, line numbers and schedule previews across DST.

use std::{
    io::Write,
    path::{Path, PathBuf},
    process::{Command, Stdio},
};

use chrono::{Datelike, Duration, NaiveDate, Weekday};

const KINDS: [&str; 5] = [
    "HealthMonitor",
    "CronJobSpec",
    "BackupPolicy",
    "MaintenanceWindow",
    "FailoverPlan",
];

/// Exit code, stdout and stderr of `watchkeeper ARGS` with `stdin` as standard input.
fn run(args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_watchkeeper"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("watchkeeper binary starts");
    {
        let mut input = child.stdin.take().expect("stdin is piped");
        if let Some(text) = stdin {
            input
                .write_all(text.as_bytes())
                .expect("stdin accepts input");
        }
    }
    let output = child.wait_with_output().expect("watchkeeper finishes");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn repo_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// Error lines of a text report for `file`: `(line, rest after "FILE:LINE ")`.
fn error_lines<'a>(stdout: &'a str, file: &str) -> Vec<(usize, &'a str)> {
    stdout
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix(file)?.strip_prefix(':')?;
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            let number = rest[..digits].parse().ok()?;
            let rest = rest[digits..].strip_prefix(':').unwrap_or(&rest[digits..]);
            let rest = rest.strip_prefix(' ')?;
            (!rest.starts_with("skipped ")).then_some((number, rest))
        })
        .collect()
}

#[test]
fn every_invalid_fixture_fails_with_its_expected_path_and_a_line() {
    let dir = repo_path("tests/fixtures/invalid");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/fixtures/invalid exists")
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "yaml" || e == "yml"))
        .collect();
    files.sort();
    assert!(files.len() >= 30, "only {} invalid fixtures", files.len());
    // One run over all fixtures (the binary is slow to start in debug builds); every file must
    // have its own error lines, which is what makes a run over that file alone exit with 1.
    let shown: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
    let mut args = vec!["check", "--no-preview"];
    args.extend(shown.iter().map(String::as_str));
    let (code, stdout, stderr) = run(&args, None);
    assert_eq!(code, 1, "{stdout}{stderr}");
    let mut json_args = vec!["check", "--output", "json"];
    json_args.extend(shown.iter().map(String::as_str));
    let (json_code, json, _) = run(&json_args, None);
    assert_eq!(json_code, 1);
    let report: serde_json::Value = serde_json::from_str(&json).expect("valid JSON report");
    let documents = report["documents"].as_array().expect("documents list");

    let mut covered = std::collections::BTreeSet::new();
    let mut failures = Vec::new();
    for (path, shown) in files.iter().zip(&shown) {
        let text = std::fs::read_to_string(path).expect("fixture readable");
        let expect = text
            .lines()
            .next()
            .and_then(|line| line.strip_prefix("# expect:"))
            .map(str::trim)
            .unwrap_or_else(|| panic!("{shown}: line 1 must be `# expect: <path>`"));
        let needle = format!(" {expect}: ");
        let matched = error_lines(&stdout, shown)
            .iter()
            .any(|(line, rest)| *line >= 1 && format!(" {rest}").contains(&needle));
        let invalid: Vec<&serde_json::Value> = documents
            .iter()
            .filter(|d| d["file"] == shown.as_str() && d["status"] == "invalid")
            .collect();
        for document in &invalid {
            if let Some(kind) = document["kind"].as_str() {
                covered.insert(kind.to_string());
            }
        }
        if !matched || invalid.is_empty() {
            let lines: Vec<&str> = stdout
                .lines()
                .filter(|l| l.starts_with(shown.as_str()))
                .collect();
            failures.push(format!(
                "{shown}: expected an error at {expect:?} on an invalid document, got:\n{}",
                lines.join("\n")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    for kind in KINDS {
        assert!(covered.contains(kind), "no invalid fixture for {kind}");
    }
}

#[test]
fn examples_pass_and_print_previews() {
    let (code, stdout, stderr) = run(
        &[
            "check",
            "manifests/examples",
            "--now",
            "2026-06-15T12:00:00Z",
        ],
        None,
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(stdout.contains(" 0 error(s)"), "{stdout}");
    assert!(!stdout.contains(" 0 valid,"), "{stdout}");
    assert!(
        stdout.contains("next runs"),
        "no schedule preview:\n{stdout}"
    );
}

#[test]
fn json_output_parses_and_locates_errors() {
    let doc = "\
apiVersion: watchkeeper.dev/v1alpha1
kind: MaintenanceWindow
metadata:
  name: broken
spec:
  notAField: true
";
    let (code, stdout, _) = run(&["check", "--output", "json", "-"], Some(doc));
    assert_eq!(code, 1);
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("valid JSON");
    let errors = report["errors"].as_array().expect("errors list");
    let error = errors
        .iter()
        .find(|e| e["path"] == "spec.notAField")
        .unwrap_or_else(|| panic!("no error for spec.notAField in {stdout}"));
    assert_eq!(error["line"], 6);
    assert_eq!(error["file"], "-");
    assert_eq!(error["kind"], "MaintenanceWindow");
    assert_eq!(error["name"], "broken");
    assert_eq!(report["documents"][0]["status"], "invalid");
    assert_eq!(report["summary"]["invalid"], 1);
}

#[test]
fn stdin_is_read_with_dash() {
    let doc = "apiVersion: watchkeeper.dev/v1alpha1\nkind: NoSuchKind\nmetadata:\n  name: x\n";
    let (code, stdout, _) = run(&["check", "-"], Some(doc));
    assert_eq!(code, 1, "{stdout}");
    let lines = error_lines(&stdout, "-");
    assert!(
        lines.iter().any(|(line, rest)| *line == 2
            && rest.starts_with("NoSuchKind/x: kind: unknown watchkeeper kind")),
        "{stdout}"
    );
}

/// The first watchkeeper document of the quick-start example, as YAML text.
fn quickstart_resource() -> String {
    let text = std::fs::read_to_string(repo_path("manifests/examples/quickstart.yaml"))
        .expect("manifests/examples/quickstart.yaml exists");
    let documents: Vec<&str> = text.split("\n---").collect();
    documents
        .into_iter()
        .find(|doc| doc.contains("apiVersion: watchkeeper.dev/"))
        .expect("quickstart has a watchkeeper resource")
        .trim_start_matches("---")
        .to_string()
}

#[test]
fn other_apis_are_skipped_in_multi_document_files() {
    let deployment = "\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  anything: goes
";
    let stream = format!("{deployment}---\n{}\n", quickstart_resource());
    let (code, stdout, stderr) = run(&["check", "--no-preview", "-"], Some(&stream));
    assert_eq!(code, 0, "{stdout}{stderr}");
    assert!(
        stdout.contains("-:1 skipped apps/v1 Deployment/web"),
        "{stdout}"
    );
    assert!(stdout.contains("1 valid, 0 invalid, 1 skipped"), "{stdout}");
}

#[test]
fn yaml_syntax_errors_are_reported_with_their_line() {
    let (code, stdout, _) = run(&["check", "-"], Some("a: 1\nb: [1, 2\nc: 3\n"));
    assert_eq!(code, 1);
    let lines = error_lines(&stdout, "-");
    assert!(
        lines
            .iter()
            .any(|(line, rest)| *line >= 2 && rest.starts_with("invalid YAML")),
        "{stdout}"
    );
}

#[test]
fn line_numbers_point_at_the_offending_field() {
    let doc = "\
# a comment
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: unrelated
---
apiVersion: watchkeeper.dev/v1alpha1
kind: FailoverPlan
metadata:
  name: lines
  labels:
    team: 7
spec:
  bogus:
    nested: 1
";
    let (code, stdout, _) = run(&["check", "--no-preview", "-"], Some(doc));
    assert_eq!(code, 1);
    let lines = error_lines(&stdout, "-");
    let line_of = |path: &str| {
        lines
            .iter()
            .find(|(_, rest)| rest.contains(&format!(" {path}: ")))
            .map(|(line, _)| *line)
            .unwrap_or_else(|| panic!("no error at {path}:\n{stdout}"))
    };
    assert_eq!(line_of("metadata.labels.team"), 13);
    assert_eq!(line_of("spec.bogus"), 15);
}

/// The first Tuesday of the month containing `day`.
fn first_tuesday(year: i32, month: u32) -> NaiveDate {
    let first = NaiveDate::from_ymd_opt(year, month, 1).expect("valid month");
    let offset =
        (7 + Weekday::Tue.num_days_from_monday() - first.weekday().num_days_from_monday()) % 7;
    first + Duration::days(i64::from(offset))
}

/// The `n`-th Sunday of a month (1-based).
fn nth_sunday(year: i32, month: u32, n: u32) -> NaiveDate {
    let first = NaiveDate::from_ymd_opt(year, month, 1).expect("valid month");
    let offset = (7 - first.weekday().num_days_from_sunday()) % 7;
    first + Duration::days(i64::from(offset + 7 * (n - 1)))
}

/// US Eastern offset at 02:00 local on `date` (DST from the second Sunday of March to the first
/// Sunday of November, both switching at 02:00 local time).
fn new_york_offset(date: NaiveDate) -> &'static str {
    let start = nth_sunday(date.year(), 3, 2);
    let end = nth_sunday(date.year(), 11, 1);
    if date > start && date < end {
        "-04:00"
    } else {
        "-05:00"
    }
}

#[test]
fn first_tuesday_at_two_in_new_york_for_twelve_months() {
    let now = "2026-01-15T12:00:00Z";
    let doc = "\
apiVersion: watchkeeper.dev/v1alpha1
kind: MaintenanceWindow
metadata:
  name: monthly-patching
spec:
  timeZone: America/New_York
  schedule:
    rrule:
      rule: FREQ=MONTHLY;BYDAY=1TU
      start: \"2026-01-06T02:00:00\"
      duration: 2h
  effects:
    suppressAlerts: true
";
    let (code, stdout, stderr) = run(
        &[
            "check", "--output", "json", "--count", "12", "--now", now, "-",
        ],
        Some(doc),
    );
    assert_eq!(code, 0, "{stdout}{stderr}");
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("valid JSON");
    let windows = report["documents"][0]["preview"]["windows"]["next"]
        .as_array()
        .unwrap_or_else(|| panic!("no window preview in {stdout}"));
    let starts: Vec<&str> = windows.iter().filter_map(|w| w["start"].as_str()).collect();
    let expected: Vec<String> = (0..12)
        .map(|i: u32| {
            // February 2026 onwards, counting months from January 2026.
            let months = 1 + i;
            let (year, month) = (2026 + (months / 12) as i32, months % 12 + 1);
            let date = first_tuesday(year, month);
            format!("{date}T02:00:00{}", new_york_offset(date))
        })
        .collect();
    assert_eq!(starts, expected);
}
