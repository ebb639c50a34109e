//! Shared test setup: the app against the scripted emulator, HTTP events, responses.

#![allow(dead_code)]

use std::time::Duration;

use bedrock::{ClientSettings, Deadline};
use bedrock_local::Script;
use lambda_kit::TaskError;
use lambda_kit::handle;
use serde_json::Value;
use testkit::Emulator;
use translate::{App, Config};

/// The emulator's (and client's) context window unless a test sets a smaller one.
pub const WINDOW: u32 = 8192;

/// A test environment: the scripted emulator and an app using it.
pub struct Env {
    pub emulator: Emulator,
    pub app: App,
}

impl Env {
    /// The emulator with `script`, both sides with `window`, default config.
    pub async fn start(script: Script, window: u32) -> Self {
        Self::with(script, window, Config::default(), None).await
    }

    /// As [`Env::start`], with `config` and an S3 client (a dead endpoint if `None`).
    pub async fn with(
        script: Script,
        window: u32,
        config: Config,
        s3: Option<aws_sdk_s3::Client>,
    ) -> Self {
        let emulator = Emulator::start(script, window).await;
        let settings = emulator.settings(window);
        Self::around(emulator, settings, config, s3)
    }

    /// An app for `emulator` with client `settings`.
    pub fn around(
        emulator: Emulator,
        settings: ClientSettings,
        config: Config,
        s3: Option<aws_sdk_s3::Client>,
    ) -> Self {
        let llm = emulator.client(settings);
        let app = App {
            llm,
            s3: s3.unwrap_or_else(dead_s3),
            config,
        };
        Self { emulator, app }
    }

    /// Sends `body` to `POST /translations` and returns the status and JSON body.
    pub async fn post(&self, body: &Value) -> (u16, Value) {
        self.post_raw(&body.to_string(), "application/json").await
    }

    /// Sends a raw body with `content_type`.
    pub async fn post_raw(&self, body: &str, content_type: &str) -> (u16, Value) {
        let event = http_event("POST", "/translations", content_type, body);
        let out = handle(&self.app, event, deadline())
            .await
            .expect("HTTP requests always get a response");
        testkit::events::http_parts(&out)
    }

    /// Runs a Step Functions task.
    pub async fn task(&self, input: Value) -> Result<Value, TaskError> {
        handle(&self.app, input, deadline()).await
    }

    /// Model calls so far.
    pub fn calls(&self) -> u64 {
        self.emulator.calls()
    }
}

/// An S3 client for an endpoint nothing listens on (for tests that never read S3).
pub fn dead_s3() -> aws_sdk_s3::Client {
    let config = aws_sdk_s3::config::Builder::from(&testkit::sdk_config("http://127.0.0.1:9"))
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(config)
}

/// A generous deadline.
pub fn deadline() -> Deadline {
    Deadline::after(Duration::from_secs(60))
}

/// An API Gateway HTTP API (payload 2.0) event.
pub fn http_event(method: &str, path: &str, content_type: &str, body: &str) -> Value {
    testkit::events::http(method, path, Some(content_type), body)
}

/// `translation` with the scripted echo prefixes removed.
pub fn unecho(translation: &str) -> String {
    translation.replace("Echo: ", "")
}
