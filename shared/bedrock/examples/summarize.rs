//! Summarizes text files through the shared client, streaming the answer as it arrives.
//!
//! `cargo run -p bedrock --example summarize -- FILE...`; the endpoint, model, window and
//! credentials come from the environment (`AWS_ENDPOINT_URL_BEDROCK_RUNTIME`, `BEDROCK_*`,
//! `AWS_ACCESS_KEY_ID`...: for a profile, `eval "$(aws configure export-credentials --format env)"`).

use std::io::Write;
use std::time::Instant;

use bedrock::{ChatPrompt, Deadline, GenerationParams, Invocation, LlamaClient, StreamEvent};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let client = LlamaClient::from_env().await?;
    let budget = client.settings().budget;
    for path in std::env::args().skip(1) {
        let text = std::fs::read_to_string(&path)?;
        let prompt = ChatPrompt::new()
            .system("You are a careful assistant. Summarize the user's document in two or three sentences, in English.")
            .user(&text);
        let params = GenerationParams::default()
            .temperature(0.2)
            .max_gen_len(160);
        let call = Invocation::chat(&prompt)
            .params(params)
            .deadline(Deadline::after(std::time::Duration::from_secs(120)));
        let estimate = bedrock::estimate_tokens(call.prompt());
        println!(
            "\n=== {path}: about {estimate} prompt tokens (window {})",
            budget.context_window()
        );
        let started = Instant::now();
        let mut stream = client.invoke_stream(&call).await?;
        let mut out = std::io::stdout();
        while let Some(event) = stream.next_event().await? {
            match event {
                StreamEvent::Text(delta) => {
                    write!(out, "{delta}")?;
                    out.flush()?;
                }
                StreamEvent::End(usage) => println!(
                    "\n--- model {}, {} prompt + {} generated tokens, stop: {}, {:.1}s",
                    stream.model_id(),
                    usage.prompt_tokens,
                    usage.generation_tokens,
                    usage.stop_reason.as_str(),
                    started.elapsed().as_secs_f64()
                ),
            }
        }
    }
    Ok(())
}
