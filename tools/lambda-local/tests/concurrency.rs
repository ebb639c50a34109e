//! Workers: warm reuse, queueing beyond the configured concurrency, parallel runs within it,
//! and shutdown killing the processes.

mod common;

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use common::{client, config, echo, eventually, invoke, marker_lines, payload, start};
use serde_json::{Value, json};

#[tokio::test]
async fn warm_process_is_reused() {
    let server = start(config(vec![echo("echo")])).await;
    let client = client(&server).await;
    let mut pids = HashSet::new();
    for n in 0..3 {
        pids.insert(payload(&invoke(&client, "echo", json!({"n": n})).await)["pid"].clone());
    }
    assert_eq!(pids.len(), 1);
    let stats = server.stats("echo").expect("stats");
    assert_eq!((stats.invocations, stats.cold_starts), (3, 1));
    server.shutdown().await;
}

/// Longest wait for something a correct server does at once; only a hang reaches it.
const HANG_GUARD: Duration = Duration::from_secs(60);

/// An invocation timeout no test here reaches, so that a slow machine cannot time out a
/// function held at its gate.
const NO_TIMEOUT: Duration = Duration::from_secs(300);

/// A synchronous event shaped like an SQS batch of one, so that the echo fixture appends
/// `start PID ID` before its work and `end PID` after it to `track`.
fn tracked(track: &Path, id: &str) -> Value {
    json!({"Records": [{
        "eventSource": "aws:sqs",
        "messageId": id,
        "body": json!({"track": track, "sleep_ms": 200}).to_string(),
    }]})
}

#[tokio::test]
async fn invocations_beyond_the_workers_queue() {
    let server = start(config(vec![echo("echo").timeout(NO_TIMEOUT)])).await;
    let client = client(&server).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let track = dir.path().join("track");
    let ids = ["a", "b", "c"];
    let calls = ids.map(|id| invoke(&client, "echo", tracked(&track, id)));
    let outputs = futures::future::join_all(calls).await;
    assert!(outputs.iter().all(|o| o.function_error().is_none()));
    // One at a time, in the one process: every start is followed by its end.
    let lines = marker_lines(&track);
    assert_eq!(lines.len(), 2 * ids.len(), "{lines:?}");
    let pid = lines[0].split(' ').nth(1).expect("pid").to_owned();
    let mut started = Vec::new();
    for pair in lines.chunks(2) {
        let [start, end] = pair else { unreachable!() };
        let id = start
            .strip_prefix(&format!("start {pid} "))
            .unwrap_or_else(|| panic!("a start in process {pid}: {lines:?}"));
        started.push(id.to_owned());
        assert_eq!(end, &format!("end {pid}"), "{lines:?}");
    }
    started.sort();
    assert_eq!(started, ids);
    let stats = server.stats("echo").expect("stats");
    assert_eq!((stats.invocations, stats.cold_starts), (3, 1));
    server.shutdown().await;
}

#[tokio::test]
async fn workers_run_in_parallel_up_to_the_concurrency() {
    let server = start(config(vec![
        echo("echo").concurrency(3).timeout(NO_TIMEOUT),
    ]))
    .await;
    let client = client(&server).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let (started, gate) = (dir.path().join("started"), dir.path().join("gate"));
    // Each invocation notes its start, then waits at the gate: three notes with the gate
    // shut means three ran at once. The fourth waits for a free worker.
    let command = json!({"marker": started, "gate": gate});
    let calls: Vec<_> = (0..4)
        .map(|_| {
            let (client, command) = (client.clone(), command.clone());
            tokio::spawn(async move { invoke(&client, "echo", command).await })
        })
        .collect();
    assert!(
        eventually(HANG_GUARD, || marker_lines(&started).len() >= 3).await,
        "three invocations at once: {:?}",
        marker_lines(&started)
    );
    std::fs::write(&gate, b"open").expect("open the gate");
    let mut outputs = Vec::new();
    for call in calls {
        outputs.push(call.await.expect("invoke task"));
    }
    assert!(outputs.iter().all(|o| o.function_error().is_none()));
    assert_eq!(marker_lines(&started).len(), 4);
    // Three processes, no more: the fourth invocation reused one of them.
    let pids: HashSet<_> = outputs.iter().map(|o| payload(o)["pid"].clone()).collect();
    assert_eq!(pids.len(), 3);
    let stats = server.stats("echo").expect("stats");
    assert_eq!((stats.invocations, stats.cold_starts), (4, 3));
    server.shutdown().await;
}

#[tokio::test]
async fn shutdown_kills_the_function_processes() {
    let server = start(config(vec![echo("echo").concurrency(2)])).await;
    let client = client(&server).await;
    let pid = payload(&invoke(&client, "echo", json!({})).await)["pid"]
        .as_u64()
        .expect("pid");
    let proc_dir = format!("/proc/{pid}");
    assert!(std::path::Path::new(&proc_dir).exists());
    server.shutdown().await;
    assert!(
        !std::path::Path::new(&proc_dir).exists(),
        "process {pid} still running"
    );
}
