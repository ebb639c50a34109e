//! Shared test setup: the app against the scripted emulator, HTTP events, responses.

#![allow(dead_code)]

use std::time::Duration;

use bedrock::{ClientSettings, Deadline};
use bedrock_local::Script;
use lambda_kit::TaskError;
use serde_json::{Value, json};
use testkit::Emulator;
use translate::{App, Config, handle};

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
        http_parts(&out)
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

/// A full API Gateway HTTP API (payload 2.0) event.
pub fn http_event(method: &str, path: &str, content_type: &str, body: &str) -> Value {
    json!({
        "version": "2.0",
        "routeKey": format!("{method} {path}"),
        "rawPath": path,
        "rawQueryString": "",
        "headers": {
            "content-type": content_type,
            "host": "abc123.execute-api.us-east-1.amazonaws.com",
            "user-agent": "test"
        },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "abc123",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": "192.0.2.1",
                "userAgent": "test"
            },
            "requestId": "req-1",
            "routeKey": format!("{method} {path}"),
            "stage": "$default",
            "time": "12/Mar/2025:19:03:58 +0000",
            "timeEpoch": 1741806238000u64
        },
        "body": body,
        "isBase64Encoded": false
    })
}

/// Status code and parsed JSON body of a serialized HTTP API response.
pub fn http_parts(response: &Value) -> (u16, Value) {
    let status = response["statusCode"].as_u64().expect("statusCode") as u16;
    let body = response["body"].as_str().expect("text body");
    (status, serde_json::from_str(body).expect("JSON body"))
}

/// A header of a serialized HTTP API response.
pub fn header<'a>(response: &'a Value, name: &str) -> Option<&'a str> {
    response["headers"][name].as_str()
}

/// `translation` with the scripted echo prefixes removed.
pub fn unecho(translation: &str) -> String {
    translation.replace("Echo: ", "")
}
