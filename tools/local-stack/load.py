"""Load at volume: a backlog of documents of mixed sizes through the upload queue (S3 ->
SQS -> the event source mapping -> summarize-document) or the batch workflow (Distributed
Map) of the local stack, against an emulator limited like Bedrock: a fixed number of
concurrent generations with no waiting queue (beyond it: ``ThrottlingException``) and a
per-minute token budget. The concurrency caps come from the capacity planner
(``tools/capacity``) given the emulator's limits, as the template derives them from the
account's quotas. Meanwhile an HTTP probe classifies tickets to show the routes stay served.

Used by the end-to-end test (a small backlog, ``make test``) and by ``benches/load.py``
(1,000 documents, ``make bench``, figures in docs/benchmarks.md). The test asserts on
counts (nothing lost, the emulator's peak concurrency, throttles); speed is only reported.
"""

from __future__ import annotations

import json
import math
import random
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from stack import BUCKET, ROOT, LocalStack, StackOptions

sys.path.insert(0, str(ROOT / "tools" / "capacity"))

SAMPLES = ROOT / "shared" / "tokens" / "tests" / "data" / "languages"
LANGUAGES = ("en", "de", "fr", "it", "pt", "es")
#: Share of documents per size class (words): most are short, a few need several parts.
SIZES = ((0.75, 120, 700), (0.20, 1500, 3000), (0.05, 9000, 14000))
#: Tokens per word as the emulator counts them: the scripted double counts a word as a
#: token (Llama 3's tokenizer would count 1.3 to 2 per word in these languages), and its
#: token budget is checked against that count.
TOKENS_PER_WORD = 1.0
TICKET = {"subject": "Invoice charged twice", "body": "I was billed twice for the same order; please refund one."}


@dataclass
class LoadSettings:
    """The backlog, the emulator's limits and what the system is told about them."""

    documents: int = 1000
    #: Concurrent generations the emulator serves (no queue: beyond it, throttling).
    slots: int = 10
    #: Generation time of every scripted call, in milliseconds.
    call_ms: int = 1000
    #: The emulator's per-minute token budget (prompt + max_gen_len reserved per call).
    tokens_per_minute: int = 2_000_000
    #: The emulator's per-minute request budget.
    requests_per_minute: int = 1_200
    #: Share of the emulator's capacity the plan keeps for the HTTP routes.
    http_share_percent: int = 10
    #: Messages per invocation of the queue's event source mapping.
    batch_size: int = 1
    #: Seconds between HTTP probe requests.
    probe_interval: float = 0.5
    seed: int = 7
    prefix: str = "incoming/load/"
    log_dir: Path = ROOT / "target" / "local-stack-load"
    profile: str = "debug"


@dataclass
class LoadOutcome:
    """Where the backlog ended and how the system used the emulator."""

    mode: str
    documents: int
    caps: dict = field(default_factory=dict)
    summaries: int = 0
    failures: dict = field(default_factory=dict)
    dead_lettered: int = 0
    lost: list = field(default_factory=list)
    seconds: float = 0.0
    documents_per_minute: float = 0.0
    model_calls: int = 0
    calls_per_minute: float = 0.0
    #: Calls per minute the emulator can serve at most, and which of its limits sets that.
    capacity_calls_per_minute: float = 0.0
    binding_limit: str = ""
    #: Calls made (backlog and HTTP) against that bound, over the whole run and in its
    #: busiest 60 seconds.
    utilization_percent: float = 0.0
    peak_minute_utilization_percent: float = 0.0
    tokens_per_minute_used: int = 0
    emulator: dict = field(default_factory=dict)
    throttle_percent: float = 0.0
    retries: int = 0
    doc_seconds_p50: float = 0.0
    doc_seconds_p99: float = 0.0
    prompt_tokens: int = 0
    generated_tokens: int = 0
    http: dict = field(default_factory=dict)
    report: dict | None = None

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def rules(settings: LoadSettings, path: Path) -> Path:
    """A scripted emulator whose every call generates for ``call_ms`` (inside its slot)."""
    delay = settings.call_ms
    rules = [
        {"prompt_contains": "You classify customer support tickets", "delay_ms": min(delay, 200),
         "generation": "\"category\": \"billing\", \"priority\": \"high\", \"sentiment\": {\"label\": "
                       "\"negative\", \"score\": 0.8}, \"confidence\": 0.9, \"rationale\": \"Billing.\"}"},
        {"prompt_contains": "You summarize documents accurately", "delay_ms": delay,
         "generation": "SUMMARY of the whole document."},
        {"prompt_contains": "Summarize part ", "delay_ms": delay, "generation": "Summary of one part."},
        {"prompt_contains": "You combine summaries", "delay_ms": delay, "generation": "SUMMARY combined."},
    ]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"rules": rules}))
    return path


def backlog(settings: LoadSettings) -> dict[str, bytes]:
    """``documents`` texts of mixed sizes and languages, keyed under ``prefix``."""
    rng = random.Random(settings.seed)
    words = {lang: (SAMPLES / f"{lang}.txt").read_text().split() for lang in LANGUAGES}
    docs = {}
    for i in range(settings.documents):
        draw, low, high = rng.random(), SIZES[-1][1], SIZES[-1][2]
        for share, lo, hi in SIZES:
            if draw < share:
                low, high = lo, hi
                break
            draw -= share
        lang = LANGUAGES[i % len(LANGUAGES)]
        pool = words[lang]
        n = rng.randint(low, high)
        start = rng.randrange(len(pool))
        text = " ".join(pool[(start + j) % len(pool)] for j in range(n))
        paragraphs = "\n\n".join(text[k:k + 1200] for k in range(0, len(text), 1200))
        docs[f"{settings.prefix}{i:04d}-{lang}.txt"] = f"# Report {i}\n\n{paragraphs}\n".encode()
    return docs


def plan_caps(settings: LoadSettings) -> dict:
    """The concurrency caps, from the capacity planner given the emulator's limits."""
    import planner  # tools/capacity

    return planner.emulator_caps(slots=settings.slots, call_seconds=settings.call_ms / 1000,
                                 tokens_per_minute=settings.tokens_per_minute,
                                 requests_per_minute=settings.requests_per_minute,
                                 http_share_percent=settings.http_share_percent, sizes=size_mix())


def size_mix() -> tuple[tuple[int, float], ...]:
    """SIZES as the planner's size classes: (real tokens at the class's mean word count, percent)."""
    return tuple((round((low + high) / 2 * TOKENS_PER_WORD), share * 100) for share, low, high in SIZES)


def stack_options(settings: LoadSettings, caps: dict) -> StackOptions:
    emulator = ["--max-concurrency", str(settings.slots), "--max-queue", "0",
                "--tokens-per-minute", str(settings.tokens_per_minute),
                "--requests-per-minute", str(settings.requests_per_minute)]
    return StackOptions(
        scripted=rules(settings, settings.log_dir / "load-rules.json"), context_window=8192,
        emulator_args=emulator, profile=settings.profile, log_dir=settings.log_dir,
        function_env={"SUMMARY_CONCURRENCY": str(caps["part_concurrency"]), "RUST_LOG": "warn,bedrock=info",
                      "BEDROCK_RETRY_BASE_MS": "200", "BEDROCK_RETRY_MAX_MS": "2000"},
        upload_queue=True, queue_max_concurrency=caps["upload_consumers"], queue_batch_size=settings.batch_size,
        # The emulator's slots bound the work; the function's timeout stays above its calls.
        visibility_timeout=300, function_concurrency=caps["upload_consumers"] + 2,
        map_concurrency=caps["workflow_map_concurrency"],
        batch_concurrency=caps["batch_concurrency"])


class Probe(threading.Thread):
    """Classifies a ticket every ``interval`` seconds over the HTTP front until stopped."""

    def __init__(self, stack: LocalStack, interval: float):
        super().__init__(daemon=True)
        self.stack, self.interval = stack, interval
        self.results: list[tuple[int, float]] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            started = time.monotonic()
            status, _ = self.stack.http("POST /tickets/classify", TICKET)
            self.results.append((status, time.monotonic() - started))
            self.stopped.wait(max(0.0, self.interval - (time.monotonic() - started)))

    def summary(self) -> dict:
        times = sorted(t for _, t in self.results)
        statuses: dict[int, int] = {}
        for status, _ in self.results:
            statuses[status] = statuses.get(status, 0) + 1
        return {"requests": len(times), "statuses": statuses, "p50_ms": round(percentile(times, 50) * 1000),
                "p99_ms": round(percentile(times, 99) * 1000)}


def percentile(values: list[float], pct: float) -> float:
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(pct / 100 * len(ordered)) - 1)]


def upload(stack: LocalStack, docs: dict[str, bytes]) -> dict[str, float]:
    """Puts every document at once (8 at a time); returns when each was put."""
    s3 = stack.s3()
    put_at: dict[str, float] = {}

    def put(item: tuple[str, bytes]) -> None:
        key, body = item
        s3.put_object(Bucket=BUCKET, Key=key, Body=body, ContentType="text/plain")
        put_at[key] = time.monotonic()

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(put, docs.items()))
    return put_at


def watch(stack: LocalStack, keys: list[str], prefix: str, deadline: float) -> dict[str, float]:
    """Waits until every key has a summary or failure record; returns when each appeared."""
    seen: dict[str, float] = {}
    s3 = stack.s3()
    wanted = set(keys)
    while time.time() < deadline and len(seen) < len(wanted):
        for records in ("summaries/", "failed/"):
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=records + prefix):
                for obj in page.get("Contents", []):
                    key = obj["Key"][len(records):].removesuffix(".json")
                    if key in wanted and key not in seen:
                        seen[key] = time.monotonic()
        time.sleep(2)
    return seen


def run_uploads(stack: LocalStack, settings: LoadSettings, caps: dict, timeout: float = 3600) -> LoadOutcome:
    """The backlog dropped into ``incoming/`` at once, drained through the queue."""
    docs = backlog(settings)
    outcome = LoadOutcome(mode="upload queue", documents=len(docs), caps=caps)
    stack.reset_emulator_stats()
    probe = Probe(stack, settings.probe_interval)
    probe.start()
    started = time.monotonic()
    put_at = upload(stack, docs)
    seen = watch(stack, list(docs), settings.prefix, time.time() + timeout)
    stack.wait_queue_empty(timeout=max(60.0, timeout - (time.monotonic() - started)))
    outcome.seconds = round(max(seen.values(), default=started) - started, 1)
    probe.stopped.set()
    probe.join()
    outcome.http = probe.summary()
    times = [seen[k] - put_at[k] for k in seen]
    outcome.doc_seconds_p50 = round(percentile(times, 50), 1)
    outcome.doc_seconds_p99 = round(percentile(times, 99), 1)
    account(stack, settings, docs, outcome)
    return outcome


def account(stack: LocalStack, settings: LoadSettings, docs: dict[str, bytes], outcome: LoadOutcome) -> None:
    """Reads every record, the dead-letter queue and the emulator's counters."""
    for key in docs:
        try:
            record = stack.get_json(f"summaries/{key}.json")
            outcome.summaries += 1
            usage = record.get("usage", {})
            outcome.prompt_tokens += int(usage.get("prompt_tokens", 0))
            outcome.generated_tokens += int(usage.get("generation_tokens", 0))
            continue
        except stack.s3().exceptions.NoSuchKey:
            pass
        try:
            error = stack.get_json(f"failed/{key}.json")["error"]["type"]
            outcome.failures[error] = outcome.failures.get(error, 0) + 1
        except stack.s3().exceptions.NoSuchKey:
            outcome.lost.append(key)
    if stack.dlq_url:
        attrs = stack.sqs().get_queue_attributes(QueueUrl=stack.dlq_url, AttributeNames=["ApproximateNumberOfMessages"])
        outcome.dead_lettered = int(attrs["Attributes"]["ApproximateNumberOfMessages"])
    stats = stack.emulator_stats()
    outcome.emulator = stats
    outcome.model_calls = int(stats.get("completed", 0))
    minutes = max(outcome.seconds, 1e-9) / 60
    outcome.documents_per_minute = round(outcome.documents / minutes, 1)
    outcome.calls_per_minute = round(outcome.model_calls / minutes, 1)
    # The emulator's bound, whichever of its limits binds: its slots, its token budget at
    # the tokens this backlog's calls took, its request budget.
    calls = max(outcome.model_calls, 1)
    tokens_per_call = (int(stats.get("prompt_tokens", 0)) + int(stats.get("generated_tokens", 0))) / calls
    bounds = {"generation slots": settings.slots * 60_000 / settings.call_ms,
              "tokens/min": settings.tokens_per_minute / max(tokens_per_call, 1e-9),
              "requests/min": float(settings.requests_per_minute)}
    outcome.binding_limit = min(bounds, key=bounds.get)
    outcome.capacity_calls_per_minute = round(bounds[outcome.binding_limit], 1)
    outcome.utilization_percent = round(100 * outcome.calls_per_minute / outcome.capacity_calls_per_minute, 1)
    outcome.peak_minute_utilization_percent = round(
        100 * int(stats.get("peak_requests_per_minute", 0)) / outcome.capacity_calls_per_minute, 1)
    outcome.tokens_per_minute_used = round((int(stats.get("prompt_tokens", 0)) + int(stats.get("generated_tokens", 0)))
                                           / minutes)
    requests = max(int(stats.get("requests", 0)), 1)
    outcome.throttle_percent = round(100 * int(stats.get("throttled", 0)) / requests, 2)
    outcome.retries = int(stats.get("requests", 0)) - int(stats.get("completed", 0))


def batch_lines(stack: LocalStack, name: str, report: dict) -> list[dict]:
    """The batch report's per-document lines (in the report, or in its JSON Lines object)."""
    if isinstance(report.get("items"), list):
        return report["items"]
    body = stack.s3().get_object(Bucket=BUCKET, Key=f"reports/batches/{name}.items.jsonl")["Body"].read()
    return [json.loads(line) for line in body.decode().splitlines() if line.strip()]


def run_batch(stack: LocalStack, settings: LoadSettings, caps: dict, timeout: float = 3600) -> LoadOutcome:
    """The backlog put first (no notification), then drained by the batch workflow."""
    docs = backlog(settings)
    outcome = LoadOutcome(mode="batch workflow", documents=len(docs), caps=caps)
    upload(stack, docs)
    stack.reset_emulator_stats()
    probe = Probe(stack, settings.probe_interval)
    probe.start()
    started = time.monotonic()
    name = f"load-{time.time_ns()}"
    execution = stack.start_batch(prefix=settings.prefix, name=name)
    desc = stack.wait_execution(execution, timeout=timeout)
    outcome.seconds = round(time.monotonic() - started, 1)
    probe.stopped.set()
    probe.join()
    outcome.http = probe.summary()
    if desc["status"] != "SUCCEEDED":
        outcome.lost.append(f"execution {desc['status']}")
    else:
        outcome.report = stack.get_json(f"reports/batches/{name}.json")
        times = [line["elapsed_ms"] / 1000 for line in batch_lines(stack, name, outcome.report)]
        outcome.doc_seconds_p50 = round(percentile(times, 50), 1)
        outcome.doc_seconds_p99 = round(percentile(times, 99), 1)
    account(stack, settings, docs, outcome)
    return outcome
