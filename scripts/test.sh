#!/usr/bin/env bash
# The whole test suite. Installs what it needs first (scripts/setup.sh), then checks
# formatting and lints, runs every Rust test (the real-model smoke tests in a step of their
# own, the only one that compiles llama.cpp), the boto3 tests against the emulator, the
# evaluation set's checks, the template checks and the end-to-end tests.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

"$root/scripts/setup.sh"
export PATH="$HOME/.cargo/bin:$PATH"

echo "== cargo fmt"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
echo "== cargo test (scripted test double; no llama.cpp)"
cargo test --workspace
echo "== real-model smoke tests (llama.cpp with the local GGUF)"
cargo test -p bedrock-local -p classify-ticket -p summarize-document -p translate \
  --features testkit/real-model,bedrock-local/llama --test real_model
echo "== boto3 against bedrock-local"
"$root/tools/bedrock-local/tests/run_boto3.sh"
echo "== evaluation set and its scoring (no model)"
"$root/.venv/bin/python" -m unittest discover -s "$root/tests/eval"
echo "== template and state machine checks"
"$root/scripts/check-template.sh"
echo "== end-to-end over the local stack"
cargo build -q --bins -p bedrock-local -p lambda-local \
  -p summarize-document -p classify-ticket -p translate -p jobs
"$root/.venv/bin/python" -m unittest discover -s "$root/tests/e2e" -v
echo "== all tests passed"
