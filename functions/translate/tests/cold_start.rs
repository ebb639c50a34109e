//! A bad setting is a deployment error: it fails the cold start, naming the variable,
//! before any request is taken.

#[test]
fn bad_settings_fail_the_cold_start_naming_the_variable() {
    testkit::cold_start::assert_bad_settings_fail_the_cold_start(
        env!("CARGO_BIN_EXE_translate"),
        &[
            ("TRANSLATE_CONCURRENCY", "0"),
            ("BEDROCK_MAX_ATTEMPTS", "0"),
            ("API_TIME_BUDGET_MS", "soon"),
            ("S3_FORCE_PATH_STYLE", "yes"),
        ],
    );
}
