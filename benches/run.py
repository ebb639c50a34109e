"""Benchmarks: our Rust functions vs a Python boto3 reference, side by side, one run.

Starts moto S3 and the scripted Bedrock emulator, then measures cold start, warm overhead,
a long document under a latency and concurrency limit, deployment size and HTTP load, and
writes docs/benchmarks.md (raw numbers: target/bench/results.json). Needs the release
builds of the functions and lambda-local / bedrock-local (`scripts/bench.sh` builds them).

    .venv/bin/python benches/run.py            # everything, as `make bench` runs it
    .venv/bin/python benches/run.py --quick    # a smoke run with few samples → target/bench/benchmarks-quick.md
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from importlib import metadata
from pathlib import Path
from types import SimpleNamespace

sys.dont_write_bytecode = True  # no __pycache__ litter in the work tree
sys.path.insert(0, str(Path(__file__).resolve().parent))

import boto3  # noqa: E402

from harness import corpus, measure, report, services, stats  # noqa: E402
from harness.services import ROOT  # noqa: E402

BUCKET = "bench-documents"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="few samples, for checking the harness")
    ap.add_argument("--tools-profile", default="release", help="cargo profile of lambda-local/bedrock-local")
    ap.add_argument("--functions-profile", default="release",
                    help="cargo profile of the function binaries (release is what deploys)")
    ap.add_argument("--output", type=Path, default=None,
                    help="report path (default docs/benchmarks.md; with --quick target/bench/benchmarks-quick.md)")
    ap.add_argument("--overhead-bench", type=Path, default=ROOT / "target" / "bench" / "overhead.txt",
                    help="criterion output to include, if present")
    ap.add_argument("--only", default="cold,warm,long,size,load", help="comma-separated measures to run")
    ap.add_argument("--render", action="store_true",
                    help="only re-render the report from target/bench/results.json")
    args = ap.parse_args()
    if args.output is None:
        args.output = ROOT / ("target/bench/benchmarks-quick.md" if args.quick else "docs/benchmarks.md")
    if args.render:
        saved = ROOT / "target" / "bench" / ("results-quick.json" if args.quick else "results.json")
        if not saved.exists():
            print(f"bench: no {saved}; run the benchmarks first", file=sys.stderr)
            return 2
        res = json.loads(saved.read_text())
        overhead = args.overhead_bench.read_text() if args.overhead_bench.exists() else None
        report.write(args.output, res, overhead)
        return 0
    only = set(args.only.split(","))
    quick = args.quick

    settings = {
        "tools_profile": args.tools_profile,
        "functions_profile": args.functions_profile,
        "cold_reps": 3 if quick else 10,
        "warm_n": 100 if quick else 1000,
        "warm_warmup": 10 if quick else 50,
        "warm_mapreduce_n": 20 if quick else 100,
        "long_latency_ms": 300,
        "long_concurrency": 4,
        "long_ours_reps": 1 if quick else 3,
        "long_ref_reps": 1,
        "long_words": 60_000 if quick else 300_000,
        "summary_bytes": 200 * 1024,
        "load_concurrent": 200,
        "load_bursts": 2 if quick else 5,
        "load_workers": 8,
    }
    for path in [ROOT / "target" / args.functions_profile / f
                 for f in ("classify-ticket", "summarize-document", "translate")] + \
                [ROOT / "target" / args.tools_profile / f for f in ("lambda-local", "bedrock-local",
                                                                     "lambda-local-echo-fn")]:
        if not path.exists():
            print(f"bench: missing {path}; run scripts/bench.sh (it builds them)", file=sys.stderr)
            return 2

    log_dir = ROOT / "target" / "bench"
    log_dir.mkdir(parents=True, exist_ok=True)
    started = time.time()
    res: dict = {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "machine": stats.machine(),
                 "load_start": stats.loadavg(), "settings": settings}
    try:
        res["awslambdaric"] = metadata.version("awslambdaric")
    except metadata.PackageNotFoundError:
        print("bench: awslambdaric is not installed in .venv (scripts/requirements.txt)", file=sys.stderr)
        return 2

    s3svc = services.moto(log_dir)
    emu = None
    try:
        emu = services.emulator(args.tools_profile, measure.script(), log_dir, "warm")
        s3 = boto3.client("s3", endpoint_url=s3svc.urls[0], region_name=services.REGION,
                          aws_access_key_id="local", aws_secret_access_key="local")
        s3.create_bucket(Bucket=BUCKET)
        doc = corpus.document_bytes(settings["summary_bytes"])
        s3.put_object(Bucket=BUCKET, Key="incoming/report-200k.txt", Body=doc.encode(), ContentType="text/plain")
        (log_dir / "summary-doc.txt").write_text(doc)
        long_doc = corpus.document(settings["long_words"])
        s3.put_object(Bucket=BUCKET, Key="incoming/long-300k.txt", Body=long_doc.encode(), ContentType="text/plain")
        (log_dir / "long-document.txt").write_text(long_doc)
        ctx = SimpleNamespace(
            impls=measure.impls(args.functions_profile), tools_profile=args.tools_profile, log_dir=log_dir,
            bedrock=emu.urls[0], s3=s3svc.urls[0], bucket=BUCKET,
            ticket_payload=json.dumps(corpus.ticket()).encode(),
            summary_key="incoming/report-200k.txt",
            summary_payload=json.dumps({"bucket": BUCKET, "key": "incoming/report-200k.txt"}).encode(),
            long_key="incoming/long-300k.txt", long_words=len(long_doc.split()), long_bytes=len(long_doc.encode()),
        )
        settings["summary_bytes"] = len(doc.encode())
        # For the S3 floor: a presigned GET (moto refuses anonymous reads).
        url = s3.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": ctx.summary_key},
                                        ExpiresIn=3600)
        ctx.summary_get_path = url.split(s3svc.urls[0], 1)[1]

        def section(name: str, fn):
            load_before = stats.loadavg()
            t = time.time()
            print(f"bench: {name} ... (load {load_before})", file=sys.stderr, flush=True)
            out = fn()
            out["load"] = f"{load_before} → {stats.loadavg()}"
            print(f"bench: {name} done in {time.time() - t:.0f} s", file=sys.stderr, flush=True)
            return out

        if "cold" in only:
            res["cold_start"] = section("cold start", lambda: measure.cold_start(ctx, settings["cold_reps"]))
        if "warm" in only:
            res["warm"] = section("warm overhead", lambda: measure.warm(ctx, settings["warm_n"], settings["warm_mapreduce_n"],
                                                                       warmup=settings["warm_warmup"]))
        if "long" in only:
            res["long_document"] = section("long document", lambda: measure.long_document(
                ctx, settings["long_latency_ms"], settings["long_concurrency"], settings["long_ours_reps"],
                settings["long_ref_reps"]))
        if "size" in only:
            res["sizes"] = section("deployment size", lambda: measure.deployment_sizes(ctx))
        if "load" in only:
            res["under_load"] = section("under load", lambda: measure.under_load(
                ctx, settings["load_concurrent"], settings["load_bursts"], settings["load_workers"]))
    finally:
        if emu:
            emu.stop()
        s3svc.stop()
    res["load_end"] = stats.loadavg()
    res["elapsed_s"] = time.time() - started
    if only != {"cold", "warm", "long", "size", "load"}:
        (log_dir / "results-partial.json").write_text(json.dumps(res, indent=1, default=str))
        print(f"bench: partial run; raw results in {log_dir / 'results-partial.json'} (no report written)",
              file=sys.stderr)
        return 0
    (log_dir / ("results-quick.json" if quick else "results.json")).write_text(json.dumps(res, indent=1, default=str))
    overhead = args.overhead_bench.read_text() if args.overhead_bench.exists() else None
    report.write(args.output, res, overhead)
    print(f"bench: wrote {args.output.relative_to(ROOT)} ({res['elapsed_s']:.0f} s)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
