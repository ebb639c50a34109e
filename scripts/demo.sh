#!/usr/bin/env bash
# The main job, locally and offline: start the Bedrock emulator with the local model,
# summarize sample documents through the shared Bedrock crate, stop the emulator.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

"$root/scripts/setup.sh"
export PATH="$HOME/.cargo/bin:$PATH"
cargo build -q -p bedrock-local -p bedrock --example summarize --bin bedrock-local

log="$(mktemp)"
coproc EMU { exec ./target/debug/bedrock-local --listen 127.0.0.1:0 \
  --model "$root/.cache/models/SmolLM2-135M-Instruct.Q4_1.gguf" 2>"$log"; }
trap 'kill "$EMU_PID" 2>/dev/null || true; wait 2>/dev/null || true; rm -f "$log"' EXIT
read -r -t 120 endpoint <&"${EMU[0]}" || { echo "emulator did not start:" >&2; cat "$log" >&2; exit 1; }
echo "bedrock-local serving SmolLM2-135M-Instruct at $endpoint"

export AWS_ENDPOINT_URL_BEDROCK_RUNTIME="$endpoint"
export AWS_REGION=us-east-1 AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local
export BEDROCK_CONTEXT_WINDOW=8192 BEDROCK_METRICS=off
./target/debug/examples/summarize \
  shared/bedrock/tests/data/languages/en.txt \
  shared/bedrock/tests/data/languages/de.txt
