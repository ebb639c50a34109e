//! Prints the exact Llama 3 token count and the estimate of each file named, or of
//! standard input: `cargo run --release -p tokens --example count_tokens -- FILE...`.
//! On standard error: how long indexing the vocabulary (the first exact count in a process)
//! and each count took.

use std::io::Read;
use std::time::Instant;

fn main() -> std::io::Result<()> {
    let paths: Vec<String> = std::env::args().skip(1).collect();
    let texts = if paths.is_empty() {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text)?;
        vec![("-".to_owned(), text)]
    } else {
        paths
            .into_iter()
            .map(|path| std::fs::read_to_string(&path).map(|text| (path, text)))
            .collect::<Result<_, _>>()?
    };
    let started = Instant::now();
    tokens::llama3::count_tokens("");
    eprintln!("vocabulary indexed in {:.1} ms", ms(started));
    for (name, text) in texts {
        let started = Instant::now();
        let exact = tokens::llama3::count_tokens(&text);
        let exact_ms = ms(started);
        let started = Instant::now();
        let estimate = tokens::estimate_tokens(&text);
        let estimate_ms = ms(started);
        println!("{exact}\t{estimate}\t{name}");
        eprintln!(
            "{name}: {} bytes; exact count {exact_ms:.1} ms, estimate {estimate_ms:.1} ms",
            text.len()
        );
    }
    Ok(())
}

fn ms(since: Instant) -> f64 {
    since.elapsed().as_secs_f64() * 1000.0
}
