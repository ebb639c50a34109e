#!/usr/bin/env bash
# Benchmarks (not tests): the shared crate's per-call overhead (criterion), then our Rust
# functions side by side with a Python boto3 reference (benches/), written to
# docs/benchmarks.md. Builds what is missing first: the release functions (LTO; several
# minutes on 2 cores the first time, reused after) and release lambda-local / bedrock-local
# (the scripted emulator only: no llama.cpp build).
#
#   scripts/bench.sh            # everything (`make bench` runs this after setup)
#   scripts/bench.sh --quick    # a quick smoke run of the harness (numbers not meaningful)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"
export PATH="$HOME/.cargo/bin:$PATH"
mkdir -p target/bench

echo "bench: load average $(cut -d' ' -f1-3 /proc/loadavg) on $(nproc) cores"
echo "bench: building the release functions (reused when up to date)"
cargo build --release -p classify-ticket -p summarize-document -p translate -p jobs
echo "bench: building release lambda-local and bedrock-local (scripted backend only)"
cargo build --release -p lambda-local -p bedrock-local --no-default-features
echo "bench: building the token counter (the long document's exact Llama 3 tokens)"
cargo build --release -p tokens --example count_tokens

if [ "${1:-}" != "--quick" ]; then
  echo "bench: cargo bench -p bedrock --bench overhead; cargo bench -p text --bench split"
  { cargo bench -p bedrock --bench overhead && cargo bench -p text --bench split; } 2>&1 |
    tee target/bench/overhead.txt
fi

if [ "${1:-}" != "--quick" ]; then
  echo "bench: the fault storm (benches/storm.py: 3 x 200 documents -> docs/reliability.md)"
  "$root/.venv/bin/python" "$root/benches/storm.py"
  echo "bench: load at volume (benches/load.py: 1,000 documents through the queue and the batch workflow)"
  "$root/.venv/bin/python" "$root/benches/load.py"
fi

exec "$root/.venv/bin/python" "$root/benches/run.py" "$@"
