//! Workers: warm reuse, queueing beyond the configured concurrency, parallel runs within it,
//! and shutdown killing the processes.

mod common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use common::{client, config, echo, invoke, payload, start};
use serde_json::json;

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

#[tokio::test]
async fn invocations_beyond_the_workers_queue() {
    let server = start(config(vec![echo("echo")])).await;
    let client = client(&server).await;
    // Warm up so the timing measures only the handler.
    invoke(&client, "echo", json!({})).await;
    let started = Instant::now();
    let calls = (0..3).map(|_| invoke(&client, "echo", json!({"sleep_ms": 400})));
    let outputs = futures::future::join_all(calls).await;
    let elapsed = started.elapsed();
    assert!(outputs.iter().all(|o| o.function_error().is_none()));
    assert!(
        elapsed >= Duration::from_millis(1200),
        "ran one at a time: {elapsed:?}"
    );
    let pids: HashSet<_> = outputs.iter().map(|o| payload(o)["pid"].clone()).collect();
    assert_eq!(pids.len(), 1);
    server.shutdown().await;
}

#[tokio::test]
async fn workers_run_in_parallel_up_to_the_concurrency() {
    let server = start(config(vec![echo("echo").concurrency(3)])).await;
    let client = client(&server).await;
    let started = Instant::now();
    let calls = (0..3).map(|_| invoke(&client, "echo", json!({"sleep_ms": 1500})));
    let outputs = futures::future::join_all(calls).await;
    let elapsed = started.elapsed();
    assert!(outputs.iter().all(|o| o.function_error().is_none()));
    assert!(
        elapsed < Duration::from_millis(4000),
        "ran in parallel: {elapsed:?}"
    );
    let pids: HashSet<_> = outputs.iter().map(|o| payload(o)["pid"].clone()).collect();
    assert_eq!(pids.len(), 3);
    assert_eq!(server.stats("echo").expect("stats").cold_starts, 3);
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
