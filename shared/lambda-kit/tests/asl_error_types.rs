//! The state machines and the code agree on error names: every `Retry`/`Catch` name in
//! `statemachines/*.asl.json` is one the functions emit (`TaskError::error_types()`), a
//! Step Functions `States.*` name or a Lambda service exception; every task retries model
//! throttling and ends in a failure record when it fails for good; a deadline overrun, a
//! model error and a malformed model answer are retried exactly once by the first retrier
//! that matches them, a wildcard (`States.ALL`, `States.TaskFailed`) included (a deadline
//! overrun is mostly deterministic: five reruns of a step that overran cost five times as
//! much);
//! the failure recorder has a Catch of its own (a Map's Catch may go to the batch report,
//! which records the Map's error); every Lambda task calls a function from
//! the template's `DefinitionSubstitutions`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use lambda_kit::TaskError;
use serde_json::{Value, json};

/// Step Functions' own error names.
const STATES_ERRORS: &[&str] = &[
    "States.ALL",
    "States.BranchFailed",
    "States.DataLimitExceeded",
    "States.ExceedToleratedFailureThreshold",
    "States.HeartbeatTimeout",
    "States.IntrinsicFailure",
    "States.ItemReaderFailed",
    "States.NoChoiceMatched",
    "States.ParameterPathFailure",
    "States.Permissions",
    "States.QueryEvaluationError",
    "States.ResultPathMatchFailure",
    "States.ResultWriterFailed",
    "States.Runtime",
    "States.TaskFailed",
    "States.Timeout",
];

/// Errors the Lambda service (not the function) raises through `lambda:invoke`.
const LAMBDA_ERRORS: &[&str] = &[
    "Lambda.AWSLambdaException",
    "Lambda.ClientExecutionTimeoutException",
    "Lambda.EC2ThrottledException",
    "Lambda.ResourceNotReadyException",
    "Lambda.ServiceException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
    "Lambda.Unknown",
];

/// The actions of the tasks that write a failure record (the document workflow's, the
/// batch workflow's per item).
const FAILURE_ACTIONS: [&str; 2] = ["write_failure", "batch_failure"];

/// Actions that touch no document and call no model (the batch report): they retry
/// storage and Lambda errors, and failing for good fails the execution.
const BOOKKEEPING_ACTIONS: [&str; 1] = ["batch_report"];

/// Errors every task retries exactly once.
const RETRIED_ONCE: [&str; 3] = ["DeadlineExceeded", "ModelError", "MalformedModelResponse"];

/// Retrier names that match every error a function raises.
const WILDCARDS: [&str; 2] = ["States.ALL", "States.TaskFailed"];

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn state_machine_files() -> Vec<PathBuf> {
    let dir = repo_root().join("statemachines");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".asl.json"))
        .collect();
    files.sort();
    files
}

/// What the template says about the state machines' substitutions.
#[derive(Debug, Default)]
struct Substitutions {
    /// Every `DefinitionSubstitutions` key.
    all: BTreeSet<String>,
    /// The keys whose value is a function ARN (`!GetAtt <Function>.Arn` of an
    /// `AWS::Serverless::Function`).
    functions: BTreeSet<String>,
}

/// Reads `DefinitionSubstitutions` from `template.yaml` by indentation (no YAML parser in
/// the workspace; the template keeps one `Key: value` per line there).
fn template_substitutions(template: &str) -> Substitutions {
    let lines: Vec<&str> = template.lines().collect();
    let indent = |l: &str| l.len() - l.trim_start().len();
    let mut function_resources = BTreeSet::new();
    for pair in lines.windows(2) {
        if indent(pair[0]) == 2
            && pair[0].trim_end().ends_with(':')
            && pair[1].trim() == "Type: AWS::Serverless::Function"
        {
            function_resources.insert(pair[0].trim().trim_end_matches(':').to_owned());
        }
    }
    let mut subs = Substitutions::default();
    for (i, line) in lines.iter().enumerate() {
        if line.trim() != "DefinitionSubstitutions:" {
            continue;
        }
        let base = indent(line);
        for entry in lines.iter().skip(i + 1) {
            if entry.trim().is_empty() || entry.trim_start().starts_with('#') {
                continue;
            }
            if indent(entry) <= base {
                break;
            }
            let Some((key, value)) = entry.trim().split_once(':') else {
                continue;
            };
            subs.all.insert(key.to_owned());
            let target = value
                .trim()
                .strip_prefix("!GetAtt ")
                .and_then(|v| v.strip_suffix(".Arn"));
            if target.is_some_and(|t| function_resources.contains(t)) {
                subs.functions.insert(key.to_owned());
            }
        }
    }
    subs
}

/// Every `${Name}` in the definition's strings.
fn placeholders(value: &Value, out: &mut BTreeSet<String>) {
    match value {
        Value::String(s) => {
            let mut rest = s.as_str();
            while let Some(start) = rest.find("${") {
                let after = &rest[start + 2..];
                match after.find('}') {
                    Some(end) => {
                        out.insert(after[..end].to_owned());
                        rest = &after[end + 1..];
                    }
                    None => break,
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| placeholders(v, out)),
        Value::Object(map) => map.values().for_each(|v| placeholders(v, out)),
        _ => {}
    }
}

fn is_lambda_invoke(state: &Value) -> bool {
    state["Resource"]
        .as_str()
        .is_some_and(|r| r.ends_with(":states:::lambda:invoke"))
}

fn is_failure_recorder(state: &Value) -> bool {
    state["Type"] == "Task"
        && state["Parameters"]["Payload"]["action"]
            .as_str()
            .is_some_and(|a| FAILURE_ACTIONS.contains(&a))
}

fn is_bookkeeping(state: &Value) -> bool {
    state["Type"] == "Task"
        && state["Parameters"]["Payload"]["action"]
            .as_str()
            .is_some_and(|a| BOOKKEEPING_ACTIONS.contains(&a))
}

fn error_names<'a>(rules: &'a Value) -> impl Iterator<Item = (usize, &'a Value)> + 'a {
    rules.as_array().into_iter().flatten().enumerate()
}

/// Checks one list of states (and the lists nested in Map and Parallel states).
/// `enclosing_catch` says whether a Map/Parallel around these states catches everything.
fn check_states(
    path: &str,
    states: &Value,
    enclosing_catch: bool,
    subs: &Substitutions,
    top_level: &serde_json::Map<String, Value>,
    problems: &mut Vec<String>,
) {
    let Some(states) = states.as_object() else {
        problems.push(format!("{path}: `States` is not an object"));
        return;
    };
    let allowed: BTreeSet<&str> = TaskError::error_types().into_iter().collect();
    for (name, state) in states {
        let here = format!("{path}/{name}");
        for field in ["Retry", "Catch"] {
            for (i, rule) in error_names(&state[field]) {
                let Some(names) = rule["ErrorEquals"].as_array() else {
                    problems.push(format!("{here}: {field}[{i}] has no ErrorEquals list"));
                    continue;
                };
                for (j, error) in names.iter().enumerate() {
                    let error = error.as_str().unwrap_or("<not a string>");
                    let known = if error.starts_with("States.") {
                        STATES_ERRORS.contains(&error)
                    } else if error.starts_with("Lambda.") {
                        LAMBDA_ERRORS.contains(&error)
                    } else {
                        allowed.contains(error)
                    };
                    if !known {
                        problems.push(format!(
                            "{here}: {field}[{i}] matches `{error}`, which no function emits \
                             (TaskError::error_types()) and is no States.*/Lambda.* error"
                        ));
                    }
                    if error == "States.ALL" && (names.len() != 1 || j != 0) {
                        problems.push(format!(
                            "{here}: {field}[{i}] lists States.ALL with other names"
                        ));
                    }
                }
            }
        }
        let catches_all = |s: &Value| {
            error_names(&s["Catch"]).any(|(_, rule)| {
                rule["ErrorEquals"]
                    .as_array()
                    .is_some_and(|n| n.iter().any(|e| e == "States.ALL"))
            })
        };
        for (i, rule) in error_names(&state["Catch"]) {
            let next = rule["Next"].as_str().unwrap_or("");
            let target = states.get(next).or_else(|| top_level.get(next));
            // The recorder itself, failing for good, ends the execution with the original
            // error (the EventBridge rule on execution status writes the record then).
            let recorder_gives_up =
                is_failure_recorder(state) && target.is_some_and(|t| t["Type"] == "Fail");
            // A Map that fails as a whole (its items have their own recorders) goes to the
            // report, which records the Map's error.
            let map_reports = state["Type"] == "Map" && target.is_some_and(is_bookkeeping);
            if !recorder_gives_up && !map_reports && !target.is_some_and(is_failure_recorder) {
                problems.push(format!(
                    "{here}: Catch[{i}] goes to `{next}`, not to a task that writes the \
                     failure record (actions {FAILURE_ACTIONS:?})"
                ));
            }
        }
        match state["Type"].as_str() {
            Some("Task") => {
                let retried = |wanted: &str| {
                    error_names(&state["Retry"]).any(|(_, rule)| {
                        rule["ErrorEquals"]
                            .as_array()
                            .is_some_and(|n| n.iter().any(|e| e == wanted))
                    })
                };
                if is_bookkeeping(state) {
                    if !retried("StorageError") {
                        problems.push(format!("{here}: does not retry StorageError"));
                    }
                } else if is_failure_recorder(state) {
                    if !retried("StorageError") {
                        problems.push(format!(
                            "{here}: the failure recorder does not retry StorageError"
                        ));
                    }
                    if !catches_all(state) {
                        problems.push(format!(
                            "{here}: the failure recorder has no Catch on States.ALL"
                        ));
                    }
                } else {
                    if !retried("ModelThrottled") {
                        problems.push(format!("{here}: no Retry on ModelThrottled"));
                    }
                    for once in RETRIED_ONCE {
                        // Step Functions applies the first retrier that matches the error,
                        // by its name or a wildcard; MaxAttempts defaults to 3.
                        let first = error_names(&state["Retry"]).find(|(_, rule)| {
                            rule["ErrorEquals"].as_array().is_some_and(|n| {
                                n.iter()
                                    .any(|e| e == once || WILDCARDS.iter().any(|w| e == w))
                            })
                        });
                        match first {
                            None => problems.push(format!("{here}: no Retry on {once}")),
                            Some((i, rule)) if rule["MaxAttempts"].as_u64().unwrap_or(3) != 1 => {
                                problems.push(format!(
                                    "{here}: Retry[{i}] retries {once} more than once"
                                ))
                            }
                            Some(_) => {}
                        }
                    }
                    if !catches_all(state) && !enclosing_catch {
                        problems.push(format!(
                            "{here}: no Catch on States.ALL (on the task or a Map/Parallel around it)"
                        ));
                    }
                }
                if is_lambda_invoke(state) {
                    let function = state["Parameters"]["FunctionName"].as_str().unwrap_or("");
                    let named = function
                        .strip_prefix("${")
                        .and_then(|f| f.strip_suffix('}'))
                        .is_some_and(|f| subs.functions.contains(f));
                    if !named {
                        problems.push(format!(
                            "{here}: FunctionName `{function}` is not one of the template's \
                             function substitutions {:?}",
                            subs.functions
                        ));
                    }
                }
            }
            Some("Map") => {
                let inner = if state["ItemProcessor"].is_object() {
                    &state["ItemProcessor"]["States"]
                } else {
                    &state["Iterator"]["States"]
                };
                let catch = enclosing_catch || catches_all(state);
                check_states(&here, inner, catch, subs, top_level, problems);
            }
            Some("Parallel") => {
                let catch = enclosing_catch || catches_all(state);
                for (b, branch) in state["Branches"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .enumerate()
                {
                    let branch_path = format!("{here}/Branches[{b}]");
                    check_states(
                        &branch_path,
                        &branch["States"],
                        catch,
                        subs,
                        top_level,
                        problems,
                    );
                }
            }
            _ => {}
        }
    }
}

/// Every problem with one state machine definition.
fn problems(name: &str, definition: &Value, subs: &Substitutions) -> Vec<String> {
    let mut problems = Vec::new();
    let Some(top) = definition["States"].as_object() else {
        return vec![format!("{name}: no `States` object")];
    };
    check_states(name, &definition["States"], false, subs, top, &mut problems);
    let mut used = BTreeSet::new();
    placeholders(definition, &mut used);
    for unknown in used.difference(&subs.all) {
        problems.push(format!(
            "{name}: `${{{unknown}}}` is not in the template's DefinitionSubstitutions"
        ));
    }
    problems
}

fn load_substitutions() -> Substitutions {
    let path = repo_root().join("template.yaml");
    let template = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    template_substitutions(&template)
}

#[test]
fn state_machines_use_the_error_names_the_code_emits() {
    let subs = load_substitutions();
    assert!(
        subs.functions.len() >= 3,
        "expected the three function ARNs in DefinitionSubstitutions, found {:?}",
        subs.functions
    );
    let files = state_machine_files();
    assert!(!files.is_empty(), "no statemachines/*.asl.json found");
    let mut all = BTreeMap::new();
    let mut used_anywhere = BTreeSet::new();
    for file in &files {
        let text = std::fs::read_to_string(file)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", file.display()));
        // Placeholders live inside strings, so the file is JSON before substitution.
        let definition: Value = serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{} is not JSON: {e}", file.display()));
        let name = file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        placeholders(&definition, &mut used_anywhere);
        all.insert(name.clone(), problems(&name, &definition, &subs));
    }
    let failing: Vec<String> = all.into_values().flatten().collect();
    assert!(
        failing.is_empty(),
        "state machine problems:\n{}",
        failing.join("\n")
    );
    let unused: Vec<&String> = subs.all.difference(&used_anywhere).collect();
    assert!(
        unused.is_empty(),
        "DefinitionSubstitutions never used: {unused:?}"
    );
}

#[test]
fn the_checker_finds_each_kind_of_mistake() {
    let subs = Substitutions {
        all: ["FnArn".to_owned()].into(),
        functions: ["FnArn".to_owned()].into(),
    };
    let recorder = json!({
        "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
        "Parameters": {"FunctionName": "${FnArn}", "Payload": {"action": "write_failure"}},
        "Retry": [{"ErrorEquals": ["StorageError"]}],
        "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Failed"}], "Next": "Failed"
    });
    let good = json!({"StartAt": "A", "States": {
        "A": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
              "Parameters": {"FunctionName": "${FnArn}", "Payload": {}},
              "Retry": [{"ErrorEquals": ["ModelThrottled", "Lambda.ServiceException"]},
                        {"ErrorEquals": ["DeadlineExceeded"], "MaxAttempts": 1},
                        {"ErrorEquals": ["ModelError", "MalformedModelResponse"], "MaxAttempts": 1}],
              "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Record"}], "End": true},
        "Record": recorder,
        "Failed": {"Type": "Fail"},
        "M": {"Type": "Map", "ItemProcessor": {"StartAt": "P", "States": {
              "P": {"Type": "Pass", "End": true}}},
              "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Report"}], "Next": "Report"},
        "Report": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                   "Parameters": {"FunctionName": "${FnArn}", "Payload": {"action": "batch_report"}},
                   "Retry": [{"ErrorEquals": ["StorageError"]}], "End": true}
    }});
    assert_eq!(problems("good", &good, &subs), Vec::<String>::new());

    let bad = json!({"StartAt": "A", "States": {
        "A": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
              "Parameters": {"FunctionName": "${OtherArn}", "Payload": {}},
              "Retry": [{"ErrorEquals": ["ModelThrotled", "DeadlineExceeded"], "MaxAttempts": 5},
                        {"ErrorEquals": ["ModelError"]}],
              "Catch": [{"ErrorEquals": ["States.ALL", "InvalidInput"], "Next": "Done"}], "End": true},
        "M": {"Type": "Map", "ItemProcessor": {"StartAt": "P", "States": {
              "P": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                    "Parameters": {"FunctionName": "${FnArn}", "Payload.$": "$"},
                    "Retry": [{"ErrorEquals": ["ModelThrottled"]}], "End": true}}}, "End": true},
        "W": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
              "Parameters": {"FunctionName": "${FnArn}", "Payload": {}},
              "Retry": [{"ErrorEquals": ["ModelThrottled"]},
                        {"ErrorEquals": ["States.TaskFailed"], "MaxAttempts": 3},
                        {"ErrorEquals": ["DeadlineExceeded", "ModelError",
                                         "MalformedModelResponse"], "MaxAttempts": 1}],
              "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Record"}], "End": true},
        "All": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": "${FnArn}", "Payload": {}},
                "Retry": [{"ErrorEquals": ["ModelThrottled"]},
                          {"ErrorEquals": ["States.ALL"], "MaxAttempts": 2}],
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Record"}], "End": true},
        "Done": {"Type": "Succeed"},
        "Record": {
            "Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": "${FnArn}", "Payload": {"action": "write_failure"}},
            "Retry": [{"ErrorEquals": ["StorageError"]}], "End": true
        }
    }});
    let found = problems("bad", &bad, &subs).join("\n");
    for expected in [
        "matches `ModelThrotled`",
        "no Retry on ModelThrottled",
        "lists States.ALL with other names",
        "goes to `Done`, not to a task that writes the failure record",
        "FunctionName `${OtherArn}`",
        "bad/M/P: no Catch on States.ALL",
        "`${OtherArn}` is not in the template's DefinitionSubstitutions",
        "bad/A: Retry[0] retries DeadlineExceeded more than once",
        "bad/A: Retry[1] retries ModelError more than once",
        "bad/A: no Retry on MalformedModelResponse",
        "bad/W: Retry[1] retries DeadlineExceeded more than once",
        "bad/All: Retry[1] retries DeadlineExceeded more than once",
        "bad/Record: the failure recorder has no Catch on States.ALL",
    ] {
        assert!(
            found.contains(expected),
            "missing `{expected}` in:\n{found}"
        );
    }
}

#[test]
fn substitutions_are_read_from_the_template() {
    let template = "\
Resources:
  Fn:
    Type: AWS::Serverless::Function
  Queue:
    Type: AWS::SQS::Queue
  Machine:
    Type: AWS::Serverless::StateMachine
    Properties:
      DefinitionSubstitutions:
        FnArn: !GetAtt Fn.Arn
        QueueArn: !GetAtt Queue.Arn
        Limit: !Ref Limit
      Tracing:
        Enabled: true
";
    let subs = template_substitutions(template);
    assert_eq!(
        subs.all,
        ["FnArn", "Limit", "QueueArn"].map(String::from).into()
    );
    assert_eq!(subs.functions, ["FnArn"].map(String::from).into());
}
