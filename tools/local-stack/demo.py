"""The main job, offline: sample documents through the S3 trigger, the document workflow
and the HTTP API of the local stack, with the local model; prints a report.

Run it through ``make demo`` (which installs and builds first). ``--aws STACK`` runs the
same workload against a deployed SAM stack instead (AWS credentials from the usual chain).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from decimal import Decimal
from pathlib import Path

from stack import BUCKET, ROOT, LocalStack, StackOptions

SAMPLES = ROOT / "shared" / "tokens" / "tests" / "data" / "languages"
CATALOG = ROOT / "tools" / "local-stack" / "models.json"
# The demo's window: small, so that a long document needs few parts on a CPU model.
CONTEXT_WINDOW = 2048


def demo_model() -> dict:
    """The catalog entry `make demo` serves: the one marked ``"demo": true`` (the evaluation
    harness's choice, docs/quality.md); scripts/models.sh --demo fetches it."""
    entries = [e for e in json.loads(CATALOG.read_text(encoding="utf-8")) if e.get("demo")]
    if len(entries) != 1:
        raise SystemExit(f"{CATALOG}: expected one entry marked demo, found {len(entries)}")
    return entries[0]


def long_document() -> bytes:
    """An English report of 6 sections, longer than the demo's 2,048-token window (2 parts)."""
    base = (SAMPLES / "en.txt").read_text(encoding="utf-8")
    sections = [f"## Region {i + 1}\n\n{base}" for i in range(6)]
    return "\n\n".join(sections).encode()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--aws", metavar="STACK", help="run against this deployed CloudFormation stack")
    parser.add_argument("--model", type=Path, help="another GGUF for the local stack (default: the catalog's "
                                                   "demo model)")
    args = parser.parse_args()
    entry = demo_model()
    model = args.model or ROOT / ".cache" / "models" / entry["file"]
    if not args.aws and not model.is_file():
        raise SystemExit(f"no model file {model}: scripts/models.sh --demo fetches it")
    # Short outputs and few documents keep a CPU model's run to minutes: every model call
    # waits for the one before it (one generation at a time, as on a 2-core machine).
    options = StackOptions(model=model, context_window=CONTEXT_WINDOW,
                           function_env={"SUMMARY_CONCURRENCY": "1", "PART_SUMMARY_TOKENS": "160",
                                         "SUMMARY_LENGTH": "short", "TRANSLATE_MAX_GEN_LEN": "768",
                                         "CLASSIFY_MAX_GEN_LEN": "192"})
    started = time.time()
    if args.aws:
        from remote import RemoteStack

        target = RemoteStack(args.aws)
    else:
        target = LocalStack(options)
    with target as stack:
        bucket = getattr(stack, "bucket", BUCKET)
        print(f"local stack up in {time.time() - started:.1f}s: S3/Step Functions {stack.aws_endpoint}, "
              f"Lambda {stack.lambda_endpoint}, HTTP API {stack.http_endpoint}, Bedrock {stack.bedrock_endpoint}")
        if not args.aws:
            about = (f"{entry['name']} ({entry['licence']})" if args.model is None else model.name)
            print(f"(the model is {about}, a small CPU stand-in for Bedrock's Llama 3.2 3B, served with a "
                  f"{CONTEXT_WINDOW}-token window: expect rough summaries and translations; docs/quality.md "
                  "has the measured figures)\n")

        uploads = {
            "incoming/betriebsversammlung.txt": (SAMPLES / "de.txt").read_bytes(),
            "incoming/long-report.md": long_document(),
            "incoming/photo.png": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
        }
        timings = {}
        spent = Decimal(0)
        for key, body in uploads.items():
            timings[key] = time.time()
            stack.upload_for_summary(key, body)
        workflow_docs = {
            "workflow/compte-rendu.txt": (SAMPLES / "fr.txt").read_bytes(),
        }
        executions = {key: (stack.upload_for_workflow(key, body), time.time()) for key, body in workflow_docs.items()}

        print("== S3 uploads (summarize-document, triggered like an S3 notification)")
        for key in uploads:
            where = stack.wait_object([f"summaries/{key}.json", f"failed/{key}.json"])
            record = stack.get_json(where)
            print(f"\n-- s3://{bucket}/{key} -> s3://{bucket}/{where} ({time.time() - timings[key]:.1f}s)")
            if where.startswith("failed/"):
                print(f"   failed: {record['error']['type']}: {record['error']['message']}")
                continue
            usage = record["usage"]
            spent += cost(usage)
            print(f"   language {record['language']}, format {record['format']}, parts {record['parts']}, "
                  f"model calls {usage['model_calls']}, tokens {usage['prompt_tokens']} in / "
                  f"{usage['generation_tokens']} out, cost {usd(cost(usage))}, model {record['model']}")
            print("   summary: " + record["summary"].replace("\n", "\n            ")[:600])

        print("\n== Document workflow (Step Functions, started like the EventBridge rule)")
        for key, (arn, t0) in executions.items():
            desc = stack.wait_execution(arn)
            where = stack.wait_object([f"results/{key}.json", f"failed/{key}.json"], timeout=30)
            record = stack.get_json(where)
            print(f"\n-- s3://{bucket}/{key}: execution {desc['status']} ({time.time() - t0:.1f}s) -> "
                  f"s3://{bucket}/{where}")
            if where.startswith("failed/"):
                print(f"   failed: {record['error']}")
                continue
            classification = record.get("classification") or {}
            spent += cost(record.get("usage"))
            print(f"   language {record.get('language')}, translated {record.get('translated')}, "
                  f"category {classification.get('category')} (priority {classification.get('priority')}, "
                  f"needs_review {classification.get('needs_review')}), cost {usd(cost(record.get('usage')))}")
            print("   summary: " + str(record.get("summary", ""))[:600])

        print("\n== HTTP API")
        status, body = stack.http("POST /tickets/classify", {
            "subject": "Charged twice for my subscription",
            "body": "Hello, my card was charged two times this month for the same plan. Please refund one.",
            "channel": "email", "customer_tier": "premium"})
        print(f"POST /tickets/classify -> {status}: category {body.get('category')}, priority "
              f"{body.get('priority')}, queue {body.get('queue')}, needs_review {body.get('needs_review')}, "
              f"tokens {body.get('usage')}, cost {usd(cost(body.get('usage')))}")
        spent += cost(body.get("usage"))
        status, body = stack.http("POST /translations", {"text": "Die Lieferung erfolgt innerhalb von drei Werktagen.",
                                                         "target_language": "en"})
        spent += cost(body.get("usage"))
        print(f"POST /translations -> {status}: {body.get('source_language')} -> {body.get('target_language')}: "
              f"{str(body.get('translation'))[:200]!r}, cost {usd(cost(body.get('usage')))}")
        status, body = stack.http("POST /translations", {"text": "Hallo", "target_language": "ja"})
        print(f"POST /translations (unsupported target) -> {status}: {body.get('error', {}).get('message')}")

        print(f"\nModel cost of everything above: {usd(spent)} (at the configured prices per 1,000 tokens)")
        print(f"Results are in the bucket {bucket}: {', '.join(stack.keys('summaries/') + stack.keys('results/') + stack.keys('failed/'))}")
        if not args.aws:
            print(f"Logs of every process: {options.log_dir}")
    print(f"\ndone; total {time.time() - started:.1f}s")
    return 0


def cost(usage) -> Decimal:
    """A record's `usage.cost_usd` (0 when absent), exact as written."""
    value = (usage or {}).get("cost_usd") or 0
    return Decimal(str(value))


def usd(amount: Decimal) -> str:
    """Dollars in plain decimal notation."""
    return (f"{amount:.12f}".rstrip("0").rstrip(".") if amount else "0") + " USD"


if __name__ == "__main__":
    sys.exit(main())
