"""The five measures: cold start, warm overhead, long document, deployment size, under load.

Every measure runs ours (the Rust function binaries) and the Python reference behind the
same lambda-local, against the same emulator and S3, interleaved where the machine's load
could otherwise favour one side."""

from __future__ import annotations

import asyncio
import json
import math
import shutil
import subprocess
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from . import services, stats
from .services import ROOT, Function, Invoker

REFERENCE = ROOT / "benches" / "reference"
MODEL_CONTEXT_WINDOW = 131072  # Llama 3.2 3B on Bedrock
LOCAL_CONTEXT_WINDOW = 8192  # the local stand-in model's

# The scripted emulator's answers. The classification continues the `{` prefill both
# implementations send; every other prompt (summaries) gets a canned paragraph.
CLASSIFICATION = ('"category": "billing", "priority": "high", "sentiment": {"label": "negative", "score": 0.82}, '
                  '"confidence": 0.9, "rationale": "The customer was charged twice and asks for a refund."}')
SUMMARY = ("The report covers the quarterly review, the billing platform and the northern warehouse. "
           "Revenue grew in most regions while the churn rate stayed stable, and the board approved "
           "a budget for new hires and a data migration that starts before the holiday season. "
           "Several managers questioned the pricing method, the security audit found a few critical "
           "issues that are being fixed, and shipping costs per parcel went down after the new "
           "logistics partner took over. The committee will revisit open decisions in the spring, "
           "and the finance team asked for a detailed plan by the end of the month.")


def script(summary_delay_ms: int = 0) -> dict:
    summary_rule = {"generation": SUMMARY}
    if summary_delay_ms:
        summary_rule["delay_ms"] = summary_delay_ms
    return {"rules": [{"prompt_contains": "customer support tickets", "generation": CLASSIFICATION}, summary_rule]}


@dataclass
class Impl:
    """One implementation: a label and its two executables."""

    key: str
    label: str
    classify: Path
    summarize: Path
    extra_env: dict


def impls(profile: str) -> list[Impl]:
    target = ROOT / "target" / profile
    return [
        Impl("rs", "ours (Rust)", target / "classify-ticket", target / "summarize-document", {"RUST_LOG": "info"}),
        Impl("py", "Python reference", REFERENCE / "bootstrap-classify-ticket",
             REFERENCE / "bootstrap-summarize-document", {}),
    ]


def function_env(bedrock: str, s3: str, window: int, extra: dict | None = None) -> dict:
    return {"AWS_ENDPOINT_URL_BEDROCK_RUNTIME": bedrock, "AWS_ENDPOINT_URL_S3": s3, "S3_FORCE_PATH_STYLE": "true",
            "BEDROCK_CONTEXT_WINDOW": str(window), **(extra or {})}


def check(name: str, status: int, body: bytes, error: str | None) -> dict:
    if status != 200 or error:
        raise RuntimeError(f"{name}: invoke failed ({status}, {error}): {body[:500]!r}")
    return json.loads(body)


def pid_of(parent: int, function_name: str) -> int | None:
    """The process serving ``function_name`` under lambda-local ``parent``."""
    for pid in services.function_pids(parent):
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"AWS_LAMBDA_FUNCTION_NAME={function_name}".encode() in environ:
            return pid
    return None


# ----- 1. cold start -----------------------------------------------------------------------


def cold_start(ctx, reps: int) -> dict:
    """Fresh lambda-local per sample, one invoke: client time to the first response (the
    process is started by that invoke), the REPORT line's Init Duration (process start to
    its first request for an event), and the process's peak RSS right after."""
    out = {}
    cases = [("classify-ticket", ctx.ticket_payload, "classify"),
             ("summarize-document", ctx.summary_payload, "summarize")]
    for fn, payload, attr in cases:
        rows = {impl.key: {"first_ms": [], "init_ms": [], "duration_ms": [], "hwm_kb": []} for impl in ctx.impls}
        for rep in range(reps + 1):  # sample 0 warms the page cache and is discarded
            for impl in ctx.impls if rep % 2 else list(reversed(ctx.impls)):
                name = f"{fn}-{impl.key}"
                env = function_env(ctx.bedrock, ctx.s3, MODEL_CONTEXT_WINDOW, impl.extra_env)
                log = ctx.log_dir / f"cold-{name}.log"
                svc = services.lambda_local(ctx.tools_profile, [Function(name, getattr(impl, attr), env)], log)
                try:
                    inv = Invoker(svc.urls[0])
                    elapsed, status, body, error = inv.invoke(name, payload)
                    check(name, status, body, error)
                    pid = pid_of(svc.pid, name)
                    hwm = services.memory_kb(pid)["VmHWM"] if pid else float("nan")
                    inv.close()
                finally:
                    svc.stop()
                report = services.reports(log)[-1]
                if rep == 0:
                    continue
                row = rows[impl.key]
                row["first_ms"].append(elapsed * 1000)
                row["init_ms"].append(report["init_ms"] or float("nan"))
                row["duration_ms"].append(report["duration_ms"])
                row["hwm_kb"].append(hwm)
        out[fn] = {key: {k: stats.median(v) for k, v in row.items()} | {"samples": row} for key, row in rows.items()}
    return out


# ----- 2. warm overhead --------------------------------------------------------------------


def warm(ctx, n: int, n_mapreduce: int, block: int = 100, warmup: int = 50) -> dict:
    """Sequential invokes through lambda-local at zero model latency, the series interleaved
    in blocks so that the machine's load falls on all of them alike. The map-reduced 200 KB
    series (window 8192) get ``n_mapreduce`` invokes, spread over the same blocks."""
    rs, py = ctx.impls
    b, s3 = ctx.bedrock, ctx.s3
    off = {"BEDROCK_METRICS": "off"}
    series = [
        # (group, label, function, payload)
        ("classify", "ours (Rust)", Function("c-rs", rs.classify, function_env(b, s3, MODEL_CONTEXT_WINDOW, rs.extra_env)),
         ctx.ticket_payload),
        ("classify", "ours, BEDROCK_METRICS=off",
         Function("c-rs-quiet", rs.classify, function_env(b, s3, MODEL_CONTEXT_WINDOW, rs.extra_env | off)),
         ctx.ticket_payload),
        ("classify", "Python reference", Function("c-py", py.classify, function_env(b, s3, MODEL_CONTEXT_WINDOW)),
         ctx.ticket_payload),
        ("classify", "floor: echo function (no model call)",
         Function("echo", ROOT / "target" / ctx.tools_profile / "lambda-local-echo-fn", {}), ctx.ticket_payload),
    ]
    for window, tag in ((MODEL_CONTEXT_WINDOW, "131072"), (LOCAL_CONTEXT_WINDOW, "8192")):
        series += [  # groups: summarize-131072 (one call), summarize-8192 (map-reduced)
            (f"summarize-{tag}", "ours (Rust)",
             Function(f"s{tag}-rs", rs.summarize, function_env(b, s3, window, rs.extra_env)), ctx.summary_payload),
            (f"summarize-{tag}", "Python reference",
             Function(f"s{tag}-py", py.summarize, function_env(b, s3, window)), ctx.summary_payload),
        ]
    log = ctx.log_dir / "warm-lambda-local.log"
    svc = services.lambda_local(ctx.tools_profile, [s[2] for s in series], log)
    results: dict[str, dict] = {}
    try:
        inv = Invoker(svc.urls[0])
        outputs = {}
        for group, _, fn, payload in series:
            for _ in range(min(warmup, 5) if group == "summarize-8192" else warmup):
                elapsed, status, body, error = inv.invoke(fn.name, payload)
                outputs[fn.name] = check(fn.name, status, body, error)
        for group, label, fn, _ in series:  # the emulator's answers reached both sides intact
            out = outputs[fn.name]
            ok = (out.get("category") == "billing" and not out.get("needs_review")) if group == "classify" \
                else "The report covers" in str(out.get("summary", ""))
            if fn.name != "echo" and not ok:
                raise RuntimeError(f"{fn.name}: unexpected output {json.dumps(out)[:500]}")
        latencies = {fn.name: [] for _, _, fn, _ in series}
        timings: dict[str, list[dict]] = {fn.name: [] for _, _, fn, _ in series}
        blocks = math.ceil(n / block)
        for blk in range(blocks):
            order = series if blk % 2 == 0 else list(reversed(series))
            for group, _, fn, payload in order:
                count = math.ceil(n_mapreduce / blocks) if group == "summarize-8192" else block
                for _ in range(count):
                    elapsed, status, body, error = inv.invoke(fn.name, payload)
                    if status != 200 or error:
                        check(fn.name, status, body, error)
                    latencies[fn.name].append(elapsed * 1000)
                    if group.startswith("summarize"):
                        timings[fn.name].append(json.loads(body).get("timings", {}))
        inv.close()
        memory = {}
        for _, _, fn, _ in series:
            pid = pid_of(svc.pid, fn.name)
            memory[fn.name] = services.memory_kb(pid) if pid else {}
    finally:
        svc.stop()
    durations: dict[str, list[float]] = {}
    for report in services.reports(log):
        durations.setdefault(report["name"], []).append(report["duration_ms"])
    for group, label, fn, _ in series:
        out = outputs.get(fn.name, {})
        usage = out.get("usage", {}) if isinstance(out, dict) else {}
        results.setdefault(group, {})[label] = {
            "function": fn.name,
            "client_ms": stats.summary(latencies[fn.name]),
            "duration_ms": stats.summary(durations.get(fn.name, [])[-len(latencies[fn.name]):]),
            "n": len(latencies[fn.name]),
            # The function's own breakdown where it reports one (ours: extract_ms = S3 read
            # + text extraction, model_ms = the summarization, total_ms).
            "timings_p50": {k: stats.median([t[k] for t in timings[fn.name] if k in t])
                            for k in ("extract_ms", "model_ms", "total_ms")
                            if any(k in t for t in timings[fn.name])},
            "hwm_kb": memory[fn.name].get("VmHWM"),
            "model_calls": usage.get("model_calls"),
            "parts": out.get("parts") if isinstance(out, dict) else None,
        }
    results["floors"] = floors(ctx)
    return results


def floors(ctx, n: int = 300) -> dict:
    """What the harness itself costs: one emulator call with the classification prompt, and
    one S3 GET of the 200 KB document, each from a kept-alive client (no signing)."""
    import http.client

    def timed(url: str, method: str, path: str, body: bytes | None) -> list[float]:
        host, port = url.removeprefix("http://").split(":")
        conn = http.client.HTTPConnection(host, int(port), timeout=60)
        out = []
        for i in range(n + 20):
            started = time.perf_counter()
            conn.request(method, path, body=body, headers={"content-type": "application/json"})
            resp = conn.getresponse()
            resp.read()
            if resp.status != 200:
                raise RuntimeError(f"floor {path}: {resp.status}")
            if i >= 20:
                out.append((time.perf_counter() - started) * 1000)
        conn.close()
        return out

    doc = (ROOT / "target" / "bench" / "summary-doc.txt").read_text()
    summary_body = json.dumps({"prompt": "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n" + doc
                               + "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n",
                               "max_gen_len": 512}).encode()
    prompt = ("<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nYou classify customer support tickets."
              "<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n" + json.loads(ctx.ticket_payload)["body"]
              + "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n{")
    body = json.dumps({"prompt": prompt, "max_gen_len": 256}).encode()
    return {
        "emulator_ms": stats.summary(timed(ctx.bedrock, "POST", "/model/us.meta.llama3-2-3b-instruct-v1%3A0/invoke",
                                           body)),
        "emulator_200k_ms": stats.summary(timed(ctx.bedrock, "POST",
                                                "/model/us.meta.llama3-2-3b-instruct-v1%3A0/invoke", summary_body)),
        "s3_get_ms": stats.summary(timed(ctx.s3, "GET", ctx.summary_get_path, None)),
    }


# ----- 3. long document --------------------------------------------------------------------

#: Generation tokens reserved for each part summary (the functions' default).
PART_SUMMARY_TOKENS = 384


def llama3_tokens(path: Path) -> int:
    """The exact Llama 3 token count of a file (the `tokens` crate's `count_tokens` example,
    which `scripts/bench.sh` builds)."""
    tool = ROOT / "target" / "release" / "examples" / "count_tokens"
    out = subprocess.run([str(tool), str(path)], check=True, capture_output=True, text=True).stdout
    return int(out.split()[0])


def lower_bound_ms(parts: int, calls: int, concurrency: int, latency_ms: int) -> float:
    """Least wall time for these calls: the map phase in ceil(parts / N) waves, then the
    combine calls: one final call after ceil((combine - 1) / N) waves of group calls (any
    deeper tree only costs more, since ceil(a) + ceil(b) >= ceil(a + b))."""
    combine = calls - parts
    waves = math.ceil(parts / concurrency)
    if combine >= 1:
        waves += 1 + math.ceil((combine - 1) / concurrency)
    return waves * latency_ms


def long_document(ctx, latency_ms: int, concurrency: int, ours_reps: int, ref_reps: int) -> dict:
    """A document of at least 300,000 tokens through both summarizers, with a fixed latency
    per model call that holds one of ``concurrency`` emulator slots."""
    # The emulator counts prompts in exact Llama 3 tokens, as Bedrock does.
    emu = services.emulator(ctx.tools_profile, script(latency_ms) | {"tokens": "llama3"}, ctx.log_dir, "long",
                            context_window=MODEL_CONTEXT_WINDOW,
                            args=["--max-concurrency", str(concurrency), "--max-queue", "1000"])
    rs, py = ctx.impls
    fns = []
    windows = (MODEL_CONTEXT_WINDOW, LOCAL_CONTEXT_WINDOW)
    for window in windows:
        fns.append(Function(f"long{window}-rs", rs.summarize,
                            function_env(emu.urls[0], ctx.s3, window, rs.extra_env | {"SUMMARY_CONCURRENCY": str(concurrency)})))
        fns.append(Function(f"long{window}-py", py.summarize, function_env(emu.urls[0], ctx.s3, window)))
    log = ctx.log_dir / "long-lambda-local.log"
    svc = services.lambda_local(ctx.tools_profile, fns, log)
    payload = json.dumps({"bucket": ctx.bucket, "key": ctx.long_key}).encode()
    document_tokens = llama3_tokens(ctx.log_dir / "long-document.txt")
    out = {"latency_ms": latency_ms, "concurrency": concurrency, "document_tokens": document_tokens,
           "document_words": ctx.long_words, "document_bytes": ctx.long_bytes, "runs": {}}
    try:
        inv = Invoker(svc.urls[0])
        # Cold start outside the timing.
        for fn in fns:
            tiny = json.dumps({"text": "A short note about the quarterly review."}).encode()
            check(fn.name, *inv.invoke(fn.name, tiny)[1:])
        for window in windows:
            for key, reps in (("rs", ours_reps), ("py", ref_reps)):
                if reps == 0:
                    continue
                name = f"long{window}-{key}"
                runs = []
                for _ in range(reps):
                    if runs and runs[-1]["wall_ms"] > 60_000:
                        break  # a slow run is not repeated (keeps `make bench` within its time)
                    elapsed, status, body, error = inv.invoke(name, payload)
                    result = check(name, status, body, error)
                    usage = result["usage"]
                    runs.append({"wall_ms": elapsed * 1000, "parts": result["parts"],
                                 "model_calls": usage["model_calls"], "prompt_tokens": usage["prompt_tokens"],
                                 "generation_tokens": usage["generation_tokens"]})
                best = sorted(runs, key=lambda r: r["wall_ms"])[len(runs) // 2]
                bound = lower_bound_ms(best["parts"], best["model_calls"], concurrency, latency_ms)
                out["runs"][f"{window}-{key}"] = best | {
                    "window": window, "impl": key, "walls_ms": [r["wall_ms"] for r in runs],
                    "lower_bound_ms": bound, "sequential_bound_ms": best["model_calls"] * latency_ms,
                    "vs_bound": best["wall_ms"] / bound,
                    "prompt_overhead": best["prompt_tokens"] / document_tokens - 1,
                    # No fewer parts can hold the document beside a part summary's reserve.
                    "least_parts": math.ceil(document_tokens / (window - PART_SUMMARY_TOKENS)),
                }
        inv.close()
    finally:
        svc.stop()
        emu.stop()
    return out


# ----- 4. deployment size -------------------------------------------------------------------


def zip_size(files: dict[str, Path], dest: Path) -> int:
    """Size of a deflate (level 9) zip holding ``files`` (archive name -> path)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(dest, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        for arcname, path in files.items():
            info = zipfile.ZipInfo.from_file(path, arcname)
            info.external_attr = 0o755 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            with open(path, "rb") as f:
                z.writestr(info, f.read(), compresslevel=9)
    return dest.stat().st_size


def deployment_sizes(ctx) -> dict:
    out = {}
    release = ROOT / "target" / "release"
    for fn in ("classify-ticket", "summarize-document", "translate"):
        binary = release / fn
        out[fn] = {"binary": binary.stat().st_size,
                   "zip": zip_size({"bootstrap": binary}, ctx.log_dir / "zips" / f"{fn}.zip")}
    for fn, module in (("classify-ticket", "classify_ticket.py"), ("summarize-document", "summarize_document.py")):
        out[f"{fn}-py"] = {"binary": (REFERENCE / module).stat().st_size,
                           "zip": zip_size({module: REFERENCE / module}, ctx.log_dir / "zips" / f"{fn}-py.zip")}
    # The same with boto3 and its dependencies bundled (pinning the SDK version, as many
    # teams do instead of relying on the runtime's copy).
    site = next((ROOT / ".venv" / "lib").glob("python3*/site-packages"))
    files = {"summarize_document.py": REFERENCE / "summarize_document.py"}
    for pkg in ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "urllib3", "six.py"):
        path = site / pkg
        if path.is_file():
            files[pkg] = path
            continue
        for f in path.rglob("*"):
            if f.is_file() and "__pycache__" not in f.parts:
                files[str(f.relative_to(site))] = f
    out["summarize-document-py-bundled"] = {"binary": sum(f.stat().st_size for f in files.values()),
                                            "zip": zip_size(files, ctx.log_dir / "zips" / "summarize-py-bundled.zip")}
    shutil.rmtree(ctx.log_dir / "zips", ignore_errors=True)
    return out


# ----- 5. under load ------------------------------------------------------------------------


async def _one(host: str, port: int, path: str, body: bytes) -> tuple[float, int]:
    started = time.perf_counter()
    try:
        reader, writer = await asyncio.open_connection(host, port)
        head = (f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\ncontent-type: application/json\r\n"
                f"content-length: {len(body)}\r\nconnection: close\r\n\r\n").encode()
        writer.write(head + body)
        await writer.drain()
        data = await reader.read()
        writer.close()
        status = int(data.split(b" ", 2)[1])
    except (OSError, ValueError, IndexError):
        status = 0
    return (time.perf_counter() - started) * 1000, status


async def _burst(url: str, path: str, body: bytes, n: int) -> tuple[list[float], list[int], float]:
    host, port = url.removeprefix("http://").split(":")
    started = time.perf_counter()
    results = await asyncio.gather(*(_one(host, int(port), path, body) for _ in range(n)))
    wall = time.perf_counter() - started
    return [r[0] for r in results], [r[1] for r in results], wall


def under_load(ctx, concurrent: int, bursts: int, workers: int) -> dict:
    """``concurrent`` simultaneous POST /tickets/classify through lambda-local's HTTP API
    front; the first burst per side (with the workers' cold starts) is reported apart."""
    fronts = {}
    out = {"concurrent": concurrent, "bursts": bursts, "workers": workers, "results": {}}
    try:
        for impl in ctx.impls:
            env = function_env(ctx.bedrock, ctx.s3, MODEL_CONTEXT_WINDOW, impl.extra_env)
            fn = Function("classify-ticket", impl.classify, env, concurrency=workers, timeout_s=30)
            fronts[impl.key] = services.lambda_local(ctx.tools_profile, [fn], ctx.log_dir / f"load-{impl.key}.log",
                                                     http_routes={"POST /tickets/classify": "classify-ticket"})
        body = json.dumps({k: v for k, v in json.loads(ctx.ticket_payload).items()}).encode()
        samples = {impl.key: {"cold": None, "lat": [], "status": [], "walls": []} for impl in ctx.impls}
        for round_ in range(bursts + 1):
            order = ctx.impls if round_ % 2 == 0 else list(reversed(ctx.impls))
            for impl in order:
                lat, status, wall = asyncio.run(_burst(fronts[impl.key].urls[1], "/tickets/classify", body, concurrent))
                s = samples[impl.key]
                if round_ == 0:
                    s["cold"] = {"lat": stats.summary(lat), "errors": sum(1 for x in status if x != 200),
                                 "wall_ms": wall * 1000}
                else:
                    s["lat"] += lat
                    s["status"] += status
                    s["walls"].append(wall * 1000)
        for impl in ctx.impls:
            s = samples[impl.key]
            out["results"][impl.key] = {
                "cold": s["cold"], "lat": stats.summary(s["lat"]),
                "errors": sum(1 for x in s["status"] if x != 200), "requests": len(s["status"]),
                "burst_wall_ms": stats.median(s["walls"]),
                "throughput_rps": concurrent / (stats.median(s["walls"]) / 1000),
            }
    finally:
        for svc in fronts.values():
            svc.stop()
    return out
