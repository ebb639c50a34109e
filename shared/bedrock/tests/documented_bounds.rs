//! The retry bounds that `docs/reliability.md` states (and its worst cases are computed
//! from) are the client's defaults and the template's parameter defaults.

use std::path::Path;
use std::time::Duration;

use bedrock::retry::{AttemptTimeouts, RetryPolicy};

fn project_file(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The number in `(N)` or `(N s)` right after `` `variable` `` in the reliability page.
fn documented(page: &str, variable: &str) -> u64 {
    let marker = format!("`{variable}` (");
    let start = page
        .find(&marker)
        .unwrap_or_else(|| panic!("docs/reliability.md does not state {variable}"))
        + marker.len();
    let digits: String = page[start..]
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits
        .parse()
        .unwrap_or_else(|_| panic!("{variable}: no number after it"))
}

/// The `Default:` of a template parameter.
fn template_default(template: &str, parameter: &str) -> u64 {
    let block = template
        .split(&format!("\n  {parameter}:\n"))
        .nth(1)
        .unwrap_or_else(|| panic!("template.yaml has no parameter {parameter}"));
    let line = block
        .lines()
        .take_while(|l| l.starts_with("    "))
        .find_map(|l| l.trim().strip_prefix("Default:"))
        .unwrap_or_else(|| panic!("{parameter} has no Default"));
    line.trim().trim_matches('"').parse().unwrap()
}

#[test]
fn the_reliability_page_states_the_defaults_the_code_and_template_use() {
    let page = project_file("docs/reliability.md");
    let template = project_file("template.yaml");
    let retry = RetryPolicy::default();
    let timeouts = AttemptTimeouts::default();

    let attempts = documented(&page, "BEDROCK_MAX_ATTEMPTS");
    assert_eq!(attempts, u64::from(retry.max_attempts));
    assert_eq!(attempts, template_default(&template, "BedrockMaxAttempts"));
    assert_eq!(
        Duration::from_secs(documented(&page, "BEDROCK_ATTEMPT_TIMEOUT_MS")),
        timeouts.invoke
    );
    assert_eq!(
        Duration::from_secs(documented(&page, "BEDROCK_STREAM_IDLE_TIMEOUT_MS")),
        timeouts.stream_idle
    );
}
