//! Splitting a long document into parts: `cargo bench -p text --bench split`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

fn split(c: &mut Criterion) {
    let sample = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../tokens/tests/data/languages/en.txt"
    ))
    .expect("sample text");
    // About 1.8 MB of English prose, the size of the benchmarks' 300,000-word document.
    let text = sample.repeat(1_800_000 / sample.len());
    let mut group = c.benchmark_group("split_1_8_mb");
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.sample_size(20);
    for (name, max, overlap) in [
        ("parts_of_120k", 120_000, 1_200),
        ("parts_of_7500", 7_500, 75),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| text::chunk::split(black_box(&text), max, overlap))
        });
    }
    group.finish();
}

criterion_group!(benches, split);
criterion_main!(benches);
