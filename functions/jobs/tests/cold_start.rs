//! A bad or missing setting is a deployment error: it fails the cold start, naming the
//! variable, before any request is taken.

const GOOD: [(&str, &str); 4] = [
    ("SUMMARIZE_FUNCTION", "summarize-document"),
    ("TRANSLATE_FUNCTION", "translate"),
    ("CLASSIFY_FUNCTION", "classify-ticket"),
    ("JOBS_TABLE", "jobs"),
];

#[test]
fn bad_settings_fail_the_cold_start_naming_the_variable() {
    let cases = [
        ("JOBS_MAX_REQUEST_BYTES", Some("lots")),
        ("JOBS_TTL_DAYS", Some("0")),
        ("API_TIME_BUDGET_MS", Some("soon")),
        ("SUMMARIZE_FUNCTION", None),
        ("JOBS_TABLE", None),
    ];
    testkit::cold_start::assert_settings_fail_the_cold_start(
        env!("CARGO_BIN_EXE_jobs"),
        &GOOD,
        &cases,
    );
}
