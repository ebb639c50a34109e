"""The fault storm at full size: 200 documents per run (mixed formats and sizes, duplicate
deliveries, overwrites with late events) through the upload queue of the local stack as
deployed (S3 -> SQS -> event source mapping, visibility backoff, dead-letter queue), and
400 streamed summaries over HTTP, with the emulator injecting 30% throttling, 5% 503s, 2%
mid-stream failures and 1% stalls. Every run must end with every document as one record of
its newest version and must have met every kind of fault. Writes the figures into
docs/reliability.md (between the storm markers) and the raw outcomes to
target/bench/storm.json.

    .venv/bin/python benches/storm.py                      # 3 runs of 200, as `make bench` does
    .venv/bin/python benches/storm.py --documents 50 --runs 1 --profile debug
    .venv/bin/python benches/storm.py --direct             # asynchronous invocations, no queue
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

sys.dont_write_bytecode = True
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools" / "local-stack"))

import storm  # noqa: E402
from stack import LocalStack  # noqa: E402

BEGIN, END = "<!-- storm:begin -->", "<!-- storm:end -->"
FAULT_LABELS = {"throttled": "`ThrottlingException`", "unavailable": "`ServiceUnavailableException` (503)",
                "stream_failed": "stream failed midway", "stalled": "stalled (accepted, never answered)"}


def table(outcomes: list[dict]) -> str:
    rows = [
        ("documents (keys)", "documents"),
        ("deliveries (S3 notifications, repeated and late events)", "deliveries"),
        ("summaries of the newest version", "summaries"),
        ("failure records, by type", "failures"),
        ("dead letters", "dead_lettered"),
        ("lost, doubled or stale records", "problem_count"),
        ("paid summarizing runs", "work_runs"),
        ("upload model calls in records / made", "calls"),
        ("deliveries failed for now and received again", "redeliveries"),
        ("`POST /summaries` (streamed) answers by status", "http"),
        ("model requests at the emulator", "model_requests"),
        *((f"injected: {label}", f"fault:{kind}") for kind, label in FAULT_LABELS.items()),
        ("wall time, s", "seconds"),
    ]
    head = "| | " + " | ".join(f"seed {o['seed']}" for o in outcomes) + " |"
    lines = [head, "|---|" + "---|" * len(outcomes)]
    for label, name in rows:
        cells = []
        for o in outcomes:
            if name == "failures":
                cells.append(", ".join(f"`{k}`: {v}" for k, v in sorted(o["failures"].items())) or "0")
            elif name == "problem_count":
                cells.append(str(len(o["problems"])))
            elif name == "http":
                cells.append(", ".join(f"{k}: {v}" for k, v in sorted(o["http"].items())))
            elif name == "calls":
                cells.append(f"{o['model_calls_recorded']} / {o['model_calls_made']}")
            elif name.startswith("fault:"):
                cells.append(str(o["faults"][name.removeprefix("fault:")]))
            else:
                cells.append(str(o[name]))
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--documents", type=int, default=200)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--profile", default="release", help="cargo profile of the binaries")
    ap.add_argument("--direct", action="store_true",
                    help="deliver uploads as asynchronous invocations instead of through the upload queue")
    ap.add_argument("--no-docs", action="store_true", help="do not update docs/reliability.md")
    args = ap.parse_args()
    outcomes, failed = [], False
    for seed in range(1, args.runs + 1):
        opts = storm.storm_options(ROOT / "target" / "bench" / f"storm-{seed}",
                                   ROOT / "tests" / "e2e" / "scripted-rules.json", seed=seed, window=2048,
                                   upload_queue=not args.direct)
        opts.profile = args.profile
        shutil.rmtree(opts.log_dir, ignore_errors=True)
        with LocalStack(opts) as stack:
            outcome = storm.run(stack, storm.plan(args.documents, seed), timeout=1800).as_dict()
        outcome["seed"] = seed
        print(json.dumps(outcome), flush=True)
        outcomes.append(outcome)
        missing = [kind for kind in storm.FAULT_KINDS if not outcome["faults"][kind]]
        for problem in outcome["problems"]:
            print(f"seed {seed}: {problem}", file=sys.stderr)
        if missing:
            print(f"seed {seed}: no injected fault of kind {', '.join(missing)}", file=sys.stderr)
        failed |= bool(missing or outcome["problems"])
    out = ROOT / "target" / "bench" / "storm.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(outcomes, indent=1))
    if not args.no_docs:
        doc = ROOT / "docs" / "reliability.md"
        text = doc.read_text()
        start, end = text.index(BEGIN) + len(BEGIN), text.index(END)
        path = "asynchronous invocations, no queue" if args.direct else "through the upload queue"
        body = (f"\n`.venv/bin/python benches/storm.py --documents {args.documents} --runs {args.runs}"
                f"{' --direct' if args.direct else ''}` ({args.profile} binaries, uploads {path}; "
                f"{2 * args.documents} `POST /summaries` per run):\n\n{table(outcomes)}\n")
        doc.write_text(text[:start] + body + text[end:])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
