//! Bootstrap: settings and clients once per cold start, then the Lambda runtime loop.
#![recursion_limit = "256"]

use lambda_kit::deadline::{DEFAULT_MARGIN, invocation_deadline};
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use summarize_document::{App, Config, handle};

// One invocation at a time: a single-threaded runtime, no cross-thread wake-ups.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_kit::logging::init_logging();
    let sdk = bedrock::sdk::load_config().await;
    let path_style = std::env::var("S3_FORCE_PATH_STYLE").is_ok_and(|v| v == "true");
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(path_style)
            .build(),
    );
    let app = App {
        llama: bedrock::LlamaClient::new(&sdk, bedrock::ClientSettings::from_env()?),
        s3,
        config: Config::from_env()?,
    };
    lambda_runtime::run(service_fn(|event: LambdaEvent<serde_json::Value>| {
        let app = &app;
        async move {
            let deadline = invocation_deadline(event.context.deadline, DEFAULT_MARGIN);
            handle(app, event.payload, deadline)
                .await
                .map_err(Diagnostic::from)
        }
    }))
    .await
}
