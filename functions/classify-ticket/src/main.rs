//! Bootstrap of the `classify-ticket` Lambda function: settings and clients once per cold
//! start, then the runtime loop.

// The runtime's service stack around this handler nests deeper than rustc's default
// layout query limit.
#![recursion_limit = "256"]

use classify_ticket::{App, Config, handle};
use lambda_kit::deadline::{DEFAULT_MARGIN, invocation_deadline};
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde_json::Value;

// One invocation at a time: a single-threaded runtime, no cross-thread wake-ups.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_kit::logging::init_logging();
    let config = Config::from_env()?;
    let client = bedrock::LlamaClient::from_env().await?;
    let app = App::new(client, config);
    let app = &app;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let deadline = invocation_deadline(event.context.deadline, DEFAULT_MARGIN);
        handle(app, event.payload, deadline)
            .await
            .map_err(Diagnostic::from)
    }))
    .await
}
