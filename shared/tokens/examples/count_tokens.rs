//! Prints the exact Llama 3 token count and the estimate of each file named, or of
//! standard input: `cargo run --release -p tokens --example count_tokens -- FILE...`.

use std::io::Read;

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
    for (name, text) in texts {
        let exact = tokens::llama3::count_tokens(&text);
        let estimate = tokens::estimate_tokens(&text);
        println!("{exact}\t{estimate}\t{name}");
    }
    Ok(())
}
