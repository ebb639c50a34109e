//! Test fixture for `lambda-local`'s integration tests: a Lambda function on the real
//! `lambda_runtime` that echoes its event and obeys commands in it. Not for deployment.
//!
//! Commands (keys of the event, or of the JSON body of an HTTP API event):
//! `marker: PATH` appends the request id to PATH first; `gate: PATH` then waits until that
//! file exists; `log: TEXT` prints it; `sleep_ms: N` sleeps; `exit: CODE|true` exits the
//! process; `panic: true` panics; `fail: TYPE` returns an error of that type; `big: N`
//! adds N bytes of padding; `env: NAME` reports that variable; `status: N` sets an HTTP
//! response's status code; `stream: [TEXT, ...]` streams those chunks as a function-URL
//! response (status and `content-type: text/plain`), waiting after the first one until the
//! file `gate: PATH` exists when given.
//! An SQS event (`Records` from `aws:sqs`) is a batch: each record's body holds commands.
//! `track: PATH` appends `start PID ID,ID,...` before the batch and `end PID` after it;
//! `sleep_ms: N` sleeps (the longest asked); `fail: TYPE` fails the whole batch;
//! `fail_item: true` names the record in the answer's `batchItemFailures`.
//! `ECHO_FN_INIT_EXIT=N` in the environment makes the process exit during init.

use std::io::Write;
use std::time::Duration;

use lambda_runtime::streaming::{Body, Response};
use lambda_runtime::{Diagnostic, FunctionResponse, LambdaEvent, MetadataPrelude, service_fn};
use serde_json::{Value, json};

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    if let Some(code) = std::env::var("ECHO_FN_INIT_EXIT")
        .ok()
        .and_then(|code| code.parse::<i32>().ok())
    {
        eprintln!("echo fn: exiting during init as asked");
        std::process::exit(code);
    }
    lambda_runtime::run(service_fn(handle)).await
}

async fn handle(event: LambdaEvent<Value>) -> Result<FunctionResponse<Value, Body>, Diagnostic> {
    let commands = event
        .payload
        .get("body")
        .and_then(Value::as_str)
        .and_then(|body| serde_json::from_str::<Value>(body).ok())
        .unwrap_or(Value::Null);
    match commands.get("stream").and_then(Value::as_array) {
        Some(chunks) => {
            let chunks: Vec<String> = chunks
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect();
            let gate = commands
                .get("gate")
                .and_then(Value::as_str)
                .map(str::to_owned);
            Ok(FunctionResponse::StreamingResponse(stream(chunks, gate)))
        }
        None => buffered(event)
            .await
            .map(FunctionResponse::BufferedResponse),
    }
}

/// Streams `chunks`, holding the rest back after the first until `gate` exists.
fn stream(chunks: Vec<String>, gate: Option<String>) -> Response<Body> {
    let (mut tx, body) = lambda_runtime::streaming::channel();
    tokio::spawn(async move {
        for (i, chunk) in chunks.into_iter().enumerate() {
            if i == 1
                && let Some(gate) = &gate
            {
                wait_for(gate).await;
            }
            if tx.send_data(chunk.into()).await.is_err() {
                return;
            }
        }
    });
    let mut prelude = MetadataPrelude {
        status_code: axum::http::StatusCode::ACCEPTED,
        ..MetadataPrelude::default()
    };
    prelude.headers.insert(
        "content-type",
        axum::http::HeaderValue::from_static("text/plain"),
    );
    Response {
        metadata_prelude: prelude,
        stream: body,
    }
}

async fn buffered(event: LambdaEvent<Value>) -> Result<Value, Diagnostic> {
    let (payload, context) = event.into_parts();
    if let Some(records) = sqs_records(&payload) {
        return sqs_batch(records).await;
    }
    let http = payload.get("version").and_then(Value::as_str) == Some("2.0")
        && payload.get("requestContext").is_some();
    let commands = if http {
        payload
            .get("body")
            .and_then(Value::as_str)
            .and_then(|body| serde_json::from_str::<Value>(body).ok())
            .unwrap_or(Value::Null)
    } else {
        payload.clone()
    };
    obey(&commands, &context.request_id).await?;
    let mut echo = json!({
        "echo": payload,
        "request_id": context.request_id,
        "function_arn": context.invoked_function_arn,
        "deadline_ms": context.deadline,
        "pid": std::process::id(),
        "function_name": std::env::var("AWS_LAMBDA_FUNCTION_NAME").ok(),
    });
    if let Some(name) = commands.get("env").and_then(Value::as_str) {
        echo["env"] = json!(std::env::var(name).ok());
    }
    if let Some(size) = commands.get("big").and_then(Value::as_u64) {
        echo["padding"] = json!("x".repeat(usize::try_from(size).unwrap_or(0)));
    }
    if !http {
        return Ok(echo);
    }
    let status = commands
        .get("status")
        .and_then(Value::as_u64)
        .unwrap_or(200);
    Ok(json!({
        "statusCode": status,
        "headers": { "content-type": "application/json", "x-echo": "yes" },
        "cookies": ["echo=1; Path=/", "second=2"],
        "body": echo.to_string(),
        "isBase64Encoded": false,
    }))
}

/// The records of an SQS event.
fn sqs_records(payload: &Value) -> Option<&[Value]> {
    let records = payload.get("Records")?.as_array()?;
    records
        .iter()
        .all(|record| record.get("eventSource").and_then(Value::as_str) == Some("aws:sqs"))
        .then_some(records.as_slice())
}

/// Runs an SQS batch as its records' bodies ask; answers `{"batchItemFailures": [...]}`.
async fn sqs_batch(records: &[Value]) -> Result<Value, Diagnostic> {
    let commands: Vec<(String, Value)> = records
        .iter()
        .map(|record| {
            let id = record["messageId"].as_str().unwrap_or_default().to_owned();
            let body = record["body"].as_str().unwrap_or_default();
            (id, serde_json::from_str(body).unwrap_or(Value::Null))
        })
        .collect();
    let track = commands
        .iter()
        .find_map(|(_, c)| c.get("track").and_then(Value::as_str));
    let ids: Vec<&str> = commands.iter().map(|(id, _)| id.as_str()).collect();
    if let Some(path) = track {
        append(
            path,
            &format!("start {} {}", std::process::id(), ids.join(",")),
        );
    }
    let sleep_ms = commands
        .iter()
        .filter_map(|(_, c)| c.get("sleep_ms").and_then(Value::as_u64))
        .max();
    if let Some(ms) = sleep_ms {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    let failures: Vec<Value> = commands
        .iter()
        .filter(|(_, c)| c.get("fail_item").and_then(Value::as_bool) == Some(true))
        .map(|(id, _)| json!({ "itemIdentifier": id }))
        .collect();
    if let Some(path) = track {
        append(path, &format!("end {}", std::process::id()));
    }
    if let Some(error_type) = commands
        .iter()
        .find_map(|(_, c)| c.get("fail").and_then(Value::as_str))
    {
        return Err(Diagnostic {
            error_type: error_type.to_owned(),
            error_message: format!("echo fn failed the batch with {error_type} as asked"),
        });
    }
    Ok(json!({ "batchItemFailures": failures }))
}

/// Waits until the file at `path` exists.
async fn wait_for(path: &str) {
    while !std::path::Path::new(path).exists() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Appends `line` to the file at `path` in one write.
fn append(path: &str, line: &str) {
    let appended = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut file| file.write_all(format!("{line}\n").as_bytes()));
    if let Err(error) = appended {
        eprintln!("echo fn: cannot write {path}: {error}");
    }
}

async fn obey(commands: &Value, request_id: &str) -> Result<(), Diagnostic> {
    if let Some(path) = commands.get("marker").and_then(Value::as_str) {
        append(path, request_id);
    }
    if let Some(gate) = commands.get("gate").and_then(Value::as_str) {
        wait_for(gate).await;
    }
    if let Some(text) = commands.get("log").and_then(Value::as_str) {
        println!("{text}");
    }
    if let Some(ms) = commands.get("sleep_ms").and_then(Value::as_u64) {
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }
    match commands.get("exit") {
        Some(Value::Bool(true)) => std::process::exit(1),
        Some(Value::Number(code)) => std::process::exit(
            code.as_i64()
                .and_then(|c| i32::try_from(c).ok())
                .unwrap_or(1),
        ),
        _ => {}
    }
    if commands.get("panic").and_then(Value::as_bool) == Some(true) {
        panic!("echo fn panics as asked");
    }
    if let Some(error_type) = commands.get("fail").and_then(Value::as_str) {
        return Err(Diagnostic {
            error_type: error_type.to_owned(),
            error_message: format!("echo fn failed with {error_type} as asked"),
        });
    }
    Ok(())
}
