//! The stack the integration tests run against: an in-process S3 server with one bucket,
//! the scripted Bedrock emulator and an `App` wired to both through the real SDK clients.

// Each test file compiles this module on its own and uses only part of it.
#![allow(dead_code)]

use std::time::Duration;

use bedrock::Deadline;
use bedrock_local::{Outcome, Rule, Script};
use summarize_document::{App, Config};
use testkit::{Emulator, LocalS3};

/// The bucket documents are uploaded to.
pub const BUCKET: &str = "docs";
/// The emulator's context window unless a test picks another.
pub const WINDOW: u32 = 1024;

/// A running stack.
pub struct Stack {
    pub s3: LocalS3,
    pub emulator: Emulator,
    pub app: App,
}

impl Stack {
    /// A builder for a stack whose model answers by `rules`.
    pub fn builder(rules: Vec<Rule>) -> StackBuilder {
        StackBuilder {
            script: Script::new(rules),
            window: WINDOW,
            config: test_config(),
        }
    }
}

/// A stack whose model answers by `rules`, with [`test_config`].
pub async fn stack(rules: Vec<Rule>) -> Stack {
    Stack::builder(rules).start().await
}

/// The `Config` tests start from: the defaults, with documents up to 1 MiB and their text
/// up to 512 KiB.
pub fn test_config() -> Config {
    Config {
        max_document_bytes: 1024 * 1024,
        max_text_bytes: 512 * 1024,
        ..Config::default()
    }
}

/// Small parts, three at a time: requests up to 64 KiB, 2 % overlap between parts and
/// 64-token part summaries (for [`StackBuilder::config`]).
pub fn small_parts(config: &mut Config) {
    config.max_request_bytes = 64 * 1024;
    config.summary_concurrency = 3;
    config.chunk_overlap_per_mille = 20;
    config.part_summary_tokens = 64;
}

/// Builds a [`Stack`]: the emulator's script and window and the app's `Config`.
pub struct StackBuilder {
    script: Script,
    window: u32,
    config: Config,
}

impl StackBuilder {
    /// Answers prompts no rule matches with `outcome` (instead of echoing them).
    pub fn fallback(mut self, outcome: Outcome) -> Self {
        self.script = self.script.with_fallback(outcome);
        self
    }

    /// Gives the emulator (and the client's settings) this context window.
    pub fn window(mut self, window: u32) -> Self {
        self.window = window;
        self
    }

    /// Adjusts the `Config` (starting from [`test_config`]).
    pub fn config(mut self, adjust: impl FnOnce(&mut Config)) -> Self {
        adjust(&mut self.config);
        self
    }

    /// Starts the S3 server and the emulator and wires the app to them.
    pub async fn start(self) -> Stack {
        let s3 = LocalS3::start(&[BUCKET]).await;
        let emulator = Emulator::start(self.script, self.window).await;
        let app = App {
            requeue: None,
            llama: emulator.client(emulator.settings(self.window)),
            s3: s3.client(),
            config: self.config,
        };
        Stack { s3, emulator, app }
    }
}

/// A Lambda deadline no test here comes near: 30 s.
pub fn deadline() -> Deadline {
    Deadline::after(Duration::from_secs(30))
}
