"""Summarize a folder of documents as a backlog through the batch workflow, offline.

Starts the local stack, stores every file of ``FOLDER`` under ``incoming/<name>/`` without
upload notifications (a backlog that predates the stack), runs the batch workflow
(``statemachines/document-batch.asl.json``) over that prefix through ``POST /batches``
and prints the report (the summary ``reports/batches/<id>.json`` and the per-document lines
``reports/batches/<id>.items.jsonl``). ``--again`` runs the same batch a
second time: every document is then ``already_done`` and no model call is made.

    .venv/bin/python tools/local-stack/batch.py shared/tokens/tests/data/languages --again

With ``--scripted RULES`` the emulator answers from a rules file instead of the local model
(fast, for plumbing); by default it runs the local GGUF model.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from stack import BUCKET, ROOT, LocalStack, StackOptions

MODEL = ROOT / ".cache" / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"


def run_batch(stack: LocalStack, prefix: str) -> dict:
    """Starts a batch over ``prefix`` through ``POST /batches``; waits; returns its report
    (the summary, with its per-document lines as ``items``)."""
    status, _, started = stack.request("POST", "/batches", {"prefix": prefix})
    if status != 202:
        raise SystemExit(f"POST /batches answered {status}: {started}")
    desc = stack.wait_execution(started["execution_arn"])
    if desc["status"] != "SUCCEEDED":
        raise SystemExit(f"the batch ended {desc['status']}: {desc.get('error')} {desc.get('cause')}")
    body = stack.s3().get_object(Bucket=BUCKET, Key=started["items_key"])["Body"].read()
    items = [json.loads(line) for line in body.decode().splitlines()]
    return {**stack.get_json(started["report_key"]), "items": items}


def summary(report: dict) -> str:
    counts = ", ".join(f"{n} {status}" for status, n in report["counts"].items() if n)
    usage = report["usage"]
    return (f"{report['documents']} documents in {report['elapsed_ms'] or 0} ms: {counts}; "
            f"failures {report['failures'] or 'none'}; {usage['model_calls']} model calls, "
            f"{usage['input_tokens']} tokens in, {usage['output_tokens']} out")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, help="the documents (every file, not recursive)")
    parser.add_argument("--scripted", type=Path, help="emulator rules file instead of the local model")
    parser.add_argument("--concurrency", type=int, default=4, help="the Distributed Map's MaxConcurrency")
    parser.add_argument("--again", action="store_true", help="run the batch a second time")
    parser.add_argument("--json", action="store_true", help="print the whole first report as JSON")
    args = parser.parse_args()
    files = sorted(p for p in args.folder.iterdir() if p.is_file())
    if not files:
        raise SystemExit(f"no files in {args.folder}")
    # Without the upload queue: the puts below must wait for the batch, not be summarized.
    options = StackOptions(model=None if args.scripted else MODEL, scripted=args.scripted,
                           upload_queue=False, batch_concurrency=args.concurrency,
                           function_env={"SUMMARY_LENGTH": "short", "SUMMARY_CONCURRENCY": "1"})
    with LocalStack(options) as stack:
        prefix = f"incoming/{args.folder.resolve().name}/"
        for path in files:
            stack.s3().put_object(Bucket=BUCKET, Key=prefix + path.name, Body=path.read_bytes())
        started = time.time()
        report = run_batch(stack, prefix)
        print(f"batch over {prefix} ({time.time() - started:.1f}s): {summary(report)}")
        for line in report["items"]:
            print(f"  {line['status']:<13} {line['key']} -> {line.get('output_key') or line.get('error_type')}")
        if args.json:
            print(json.dumps(report, indent=2))
        if args.again:
            print(f"again: {summary(run_batch(stack, prefix))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
