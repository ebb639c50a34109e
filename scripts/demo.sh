#!/usr/bin/env bash
# The main job, locally and offline: build, start the local stack (Bedrock emulator with
# the local model, lambda-local with the functions, moto S3 + Step Functions running
# the workflow ASL), push sample documents through the S3 trigger, the workflow and the
# HTTP API, print a report, and stop everything. The model is the catalog's demo model
# (tools/local-stack/models.json, chosen with make eval: docs/quality.md), fetched once.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

"$root/scripts/setup.sh"
case " $* " in
  *" --aws"*|*" --model"*) ;;  # a deployed stack, or another GGUF: the demo model is not needed
  *) "$root/scripts/models.sh" --demo ;;
esac
export PATH="$HOME/.cargo/bin:$PATH"
echo "building the functions and local tools (the first build takes several minutes)"
cargo build -q --bins -p bedrock-local --features bedrock-local/llama -p lambda-local \
  -p summarize-document -p classify-ticket -p translate -p jobs
exec "$root/.venv/bin/python" "$root/tools/local-stack/demo.py" "$@"
