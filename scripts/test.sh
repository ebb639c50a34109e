#!/usr/bin/env bash
# The whole test suite. Installs what it needs first (scripts/setup.sh), then checks
# formatting and lints, runs every Rust test and the boto3 tests against the emulator.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

"$root/scripts/setup.sh"
export PATH="$HOME/.cargo/bin:$PATH"

echo "== cargo fmt"
cargo fmt --all -- --check
echo "== cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
echo "== cargo test"
cargo test --workspace
echo "== boto3 against bedrock-local"
"$root/tools/bedrock-local/tests/run_boto3.sh"
echo "== template and state machine checks"
"$root/scripts/check-template.sh"
echo "== end-to-end over the local stack"
cargo build -q --bins -p bedrock-local -p lambda-local \
  -p summarize-document -p classify-ticket -p translate
"$root/.venv/bin/python" -m unittest discover -s "$root/tests/e2e" -v
echo "== all tests passed"
