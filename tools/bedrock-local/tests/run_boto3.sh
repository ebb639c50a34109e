#!/usr/bin/env bash
# Runs tests/boto3_smoke.py (boto3, from the workspace .venv) against a bedrock-local built
# from this checkout, serving the scripted test double from tests/boto3_rules.json on a free port.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
python="${PYTHON:-$root/.venv/bin/python}"

cargo build --quiet --manifest-path "$root/Cargo.toml" -p bedrock-local --bin bedrock-local
target_dir="$(cargo metadata --quiet --format-version 1 --no-deps --manifest-path "$root/Cargo.toml" \
  | "$python" -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"

out="$(mktemp)"
log="$(mktemp)"
"$target_dir/debug/bedrock-local" --listen 127.0.0.1:0 --scripted "$here/boto3_rules.json" >"$out" 2>"$log" &
server=$!
trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null; rm -f "$out" "$log"' EXIT

endpoint=""
for _ in $(seq 1 100); do
  endpoint="$(head -n 1 "$out")"
  [ -n "$endpoint" ] && break
  kill -0 "$server" 2>/dev/null || { echo "bedrock-local exited early:" >&2; cat "$log" >&2; exit 1; }
  sleep 0.1
done
[ -n "$endpoint" ] || { echo "bedrock-local printed no address" >&2; exit 1; }

BEDROCK_ENDPOINT="$endpoint" "$python" "$here/boto3_smoke.py" || { echo "server log:" >&2; cat "$log" >&2; exit 1; }
