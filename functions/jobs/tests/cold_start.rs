//! A bad or missing setting is a deployment error: it fails the cold start, naming the
//! variable, before any request is taken.

use testkit::cold_start::run_cold_start;

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
    for (variable, value) in cases {
        let mut vars: Vec<(&str, &str)> =
            GOOD.into_iter().filter(|(n, _)| *n != variable).collect();
        if let Some(value) = value {
            vars.push((variable, value));
        }
        let run = run_cold_start(env!("CARGO_BIN_EXE_jobs"), &vars);
        assert!(
            !run.success,
            "{variable}={value:?} did not fail the cold start"
        );
        assert!(
            run.stderr.contains(variable) && run.stderr.contains("configuration error"),
            "{variable}={value:?}: the error does not name the variable: {}",
            run.stderr
        );
        let request = run.runtime_request.unwrap_or_default();
        assert!(
            request.starts_with("POST /2018-06-01/runtime/init/error")
                && request.contains(variable),
            "{variable}={value:?}: not reported to /init/error: {request}"
        );
    }
}
