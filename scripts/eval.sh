#!/usr/bin/env bash
# The evaluation harness (docs/quality.md): installs what it needs (scripts/setup.sh,
# sacrebleu in .venv), builds the functions and local tools as scripts/demo.sh does, then
# runs tools/eval/eval.py with the arguments given, e.g.
#   ./scripts/eval.sh --model .cache/models/other.gguf --limit 5
#   make eval ARGS="--tasks classify --limit 10"
#   ./scripts/eval.sh --aws my-stack          # a deployed stack (AWS credentials as usual)
# EVAL_PROFILE=release builds and uses release binaries instead of debug ones.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

"$root/scripts/setup.sh"
if ! "$root/.venv/bin/python" -c "import sacrebleu" 2>/dev/null; then
  echo "eval: installing sacrebleu into .venv"
  "$root/.venv/bin/pip" install -q --disable-pip-version-check "sacrebleu==2.6.0"
fi
profile="${EVAL_PROFILE:-debug}"
case " $* " in
  *" --aws "*|*" --aws="*) ;;  # a deployed stack needs no local binaries
  *)
    export PATH="$HOME/.cargo/bin:$PATH"
    echo "eval: building the functions and local tools ($profile; the first build takes several minutes)"
    release=(); [ "$profile" = release ] && release=(--release)
    cargo build -q "${release[@]}" --bins -p bedrock-local --features bedrock-local/llama -p lambda-local \
      -p summarize-document -p classify-ticket -p translate -p jobs
    ;;
esac
EVAL_PROFILE="$profile" exec "$root/.venv/bin/python" "$root/tools/eval/eval.py" "$@"
