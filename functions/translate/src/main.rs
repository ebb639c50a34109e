//! Lambda bootstrap for translate: build the clients once, then serve events.

use bedrock::{ClientSettings, LlamaClient};
use lambda_kit::deadline::{DEFAULT_MARGIN, invocation_deadline};
use lambda_runtime::{LambdaEvent, service_fn};
use serde_json::Value;
use translate::{App, Config, handle};

// One invocation at a time: a single-threaded runtime, no cross-thread wake-ups.
#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_kit::logging::init_logging();
    let config = Config::from_env()?;
    let sdk = bedrock::sdk::load_config().await;
    let llm = LlamaClient::new(&sdk, ClientSettings::from_env()?);
    let force_path_style =
        std::env::var("S3_FORCE_PATH_STYLE").is_ok_and(|v| v.trim().eq_ignore_ascii_case("true"));
    let s3 = aws_sdk_s3::Client::from_conf(
        aws_sdk_s3::config::Builder::from(&sdk)
            .force_path_style(force_path_style)
            .build(),
    );
    let app = App { llm, s3, config };
    let app = &app;
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| async move {
        let deadline = invocation_deadline(event.context.deadline, DEFAULT_MARGIN);
        handle(app, event.payload, deadline).await
    }))
    .await
}
