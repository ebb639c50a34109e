//! Every environment variable a function reads is in its README's `| variable |` table (the
//! shared ones in the project README's), and `template.yaml` sets no variable that nothing
//! reads: the settings structs are the one list, and the documents cannot drift from it.
//! Likewise every error type the functions emit is in the project README's error tables.

use std::collections::BTreeSet;
use std::path::Path;

use lambda_kit::Function;
use lambda_kit::boundary::BoundarySettings;
use lambda_kit::jobs::JobSettings;
use settings::variables;

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");
/// Read by the runtime and logging, not by a settings struct.
const RUNTIME: [&str; 2] = ["RUST_LOG", "AWS_LAMBDA_LOG_LEVEL"];

fn read(path: &str) -> String {
    std::fs::read_to_string(Path::new(ROOT).join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn shared() -> BTreeSet<String> {
    let mut names: BTreeSet<String> = variables::<BoundarySettings>().into_iter().collect();
    names.extend(variables::<bedrock::settings::BedrockEnv>());
    names.extend(variables::<JobSettings>());
    names
}

/// Names in the first column of the table whose header starts `| variable |`.
fn documented(markdown: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut in_table = false;
    for line in markdown.lines() {
        if line.starts_with("| variable |") {
            in_table = true;
        } else if in_table && line.starts_with('|') {
            let first = line.split('|').nth(1).unwrap_or("");
            names.extend(first.split('`').skip(1).step_by(2).map(str::to_owned));
        } else {
            in_table = false;
        }
    }
    names
}

/// Variables the template sets for `resource` (its own and the `Globals` ones).
fn template_sets(template: &str, resource: &str) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    let mut section = "";
    let mut in_variables: Option<usize> = None;
    for line in template.lines() {
        let indent = line.len() - line.trim_start().len();
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if indent <= 2 && trimmed.ends_with(':') {
            section = trimmed.trim_end_matches(':');
            in_variables = None;
        }
        if let Some(depth) = in_variables {
            if indent <= depth {
                in_variables = None;
            } else if let Some((name, _)) = trimmed.split_once(':') {
                names.insert(name.to_owned());
            }
        }
        if trimmed == "Variables:" && (section == resource || section == "Function") {
            in_variables = Some(indent);
        }
    }
    names
}

fn check<F: Function>(readme: &str, resource: &str) {
    let own: BTreeSet<String> = variables::<F::Settings>().into_iter().collect();
    let readme = read(readme);
    let in_readme = documented(&readme);
    let missing: Vec<_> = own.difference(&in_readme).collect();
    assert!(
        missing.is_empty(),
        "{}: not in its README table: {missing:?}",
        F::NAME
    );
    let shared = shared();
    let unknown: Vec<_> = in_readme
        .iter()
        .filter(|n| !own.contains(*n) && !shared.contains(*n) && !RUNTIME.contains(&n.as_str()))
        .filter(|n| *n != "BEDROCK_*")
        .collect();
    assert!(
        unknown.is_empty(),
        "{}: README documents variables nothing reads: {unknown:?}",
        F::NAME
    );
    let set = template_sets(&read("template.yaml"), resource);
    assert!(
        !set.is_empty(),
        "{resource}: no variables found in template.yaml"
    );
    let unread: Vec<_> = set
        .iter()
        .filter(|n| !own.contains(*n) && !shared.contains(*n) && !RUNTIME.contains(&n.as_str()))
        .collect();
    assert!(
        unread.is_empty(),
        "{resource}: template.yaml sets variables nothing reads: {unread:?}"
    );
}

#[test]
fn the_shared_variables_are_in_the_project_readme() {
    let in_readme = documented(&read("README.md"));
    let missing: Vec<_> = shared()
        .into_iter()
        .filter(|n| !in_readme.contains(n))
        .collect();
    assert!(missing.is_empty(), "not in README.md's table: {missing:?}");
}

#[test]
fn classify_ticket_variables_are_documented() {
    check::<classify_ticket::App>(
        "functions/classify-ticket/README.md",
        "ClassifyTicketFunction",
    );
}

#[test]
fn summarize_document_variables_are_documented() {
    check::<summarize_document::App>(
        "functions/summarize-document/README.md",
        "SummarizeDocumentFunction",
    );
}

#[test]
fn translate_variables_are_documented() {
    check::<translate::App>("functions/translate/README.md", "TranslateFunction");
}

#[test]
fn jobs_variables_are_documented() {
    check::<jobs::App>("functions/jobs/README.md", "JobsFunction");
}

#[test]
fn the_checks_find_drift() {
    let table =
        "| variable | meaning |\n|---|---|\n| `A` / `B` | x |\n\n| `C` | not a variable table |";
    assert_eq!(documented(table), ["A", "B"].map(String::from).into());
    let template = "Globals:\n  Function:\n    Environment:\n      Variables:\n        G: 1\n\
                    Resources:\n  Fn:\n    Properties:\n      Environment:\n        Variables:\n          X: !Ref Y\n      Policies: []\n  Other:\n    Properties:\n      Environment:\n        Variables:\n          Z: 1\n";
    assert_eq!(
        template_sets(template, "Fn"),
        ["G", "X"].map(String::from).into()
    );
}

#[test]
fn every_error_type_is_in_the_project_readme() {
    let readme = read("README.md");
    let in_tables: BTreeSet<&str> = readme
        .lines()
        .filter(|l| l.starts_with("| `"))
        .filter_map(|l| l.split('`').nth(1))
        .collect();
    let missing: Vec<_> = lambda_kit::TaskError::error_types()
        .into_iter()
        .filter(|name| !in_tables.contains(name))
        .collect();
    assert!(
        missing.is_empty(),
        "error types missing from README.md's tables: {missing:?}"
    );
}
