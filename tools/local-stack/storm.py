"""The fault storm: many documents through the upload path of the local stack while the
emulator injects throttling, 503s, mid-stream failures and stalls, with duplicate
deliveries and overwrites, then an account of where every document ended.

Used by the end-to-end test (a small storm, ``make test``) and by ``benches/storm.py``
(200 documents, ``make bench``, figures in docs/reliability.md). Everything here is
asserted on counts and records, never on time.
"""

from __future__ import annotations

import collections
import io
import json
import random
import re
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from stack import BUCKET, ROOT, LocalStack, StackOptions

SAMPLES = ROOT / "shared" / "tokens" / "tests" / "data" / "languages"
LANGUAGES = ("en", "de", "fr", "it", "pt", "hi", "es", "th")
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01"
#: The faults the issue asks for: 30% throttling, 5% 503s, 2% mid-stream failures, 1% stalls.
FAULTS = ["--throttle-rate", "0.3", "--unavailable-rate", "0.05", "--stream-fail-rate", "0.02",
          "--stall-rate", "0.01"]
#: Retries fast enough for a test; an attempt that stalls is cut after a second.
FUNCTION_ENV = {"BEDROCK_RETRY_BASE_MS": "20", "BEDROCK_RETRY_MAX_MS": "200",
                "BEDROCK_ATTEMPT_TIMEOUT_MS": "1000", "BEDROCK_STREAM_IDLE_TIMEOUT_MS": "1000"}
#: Kinds of document, in rotation; the last two can only end as failure records.
KINDS = ("txt", "md", "html", "docx", "pdf", "long", "txt", "md", "png", "empty")
UNREADABLE = {"png", "empty"}
#: What an HTTP caller may get besides 200 in a storm: typed, retryable model-side errors.
RETRYABLE_STATUS = {429, 502, 503, 504}


def storm_options(log_dir: Path, rules: Path, seed: int, window: int) -> StackOptions:
    """The stack for a storm: versioned bucket, faults, fast retries."""
    # The storm plays S3's deliveries itself (duplicates, late events): no queue.
    return StackOptions(scripted=rules, context_window=window, versioned=True, upload_queue=False,
                        emulator_args=[*FAULTS, "--fault-seed", str(seed)], function_env=dict(FUNCTION_ENV),
                        log_dir=log_dir)


def docx(text: str) -> bytes:
    """A minimal Word document holding ``text``."""
    paragraphs = "".join(f"<w:p><w:r><w:t>{p}</w:t></w:r></w:p>" for p in text.split("\n") if p.strip())
    xml = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
           '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main">'
           f"<w:body>{paragraphs}</w:body></w:document>")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr("[Content_Types].xml",
                   '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/'
                   'package/2006/content-types"><Override PartName="/word/document.xml" ContentType="'
                   'application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>')
        z.writestr("word/document.xml", xml)
    return out.getvalue()


def pdf(text: str) -> bytes:
    """A one-page PDF whose text layer holds ``text`` (ASCII)."""
    lines = [ln for ln in re.sub(r"[^ -~\n]", "", text).split("\n") if ln.strip()][:40]
    ops = ["BT /F1 10 Tf 50 780 Td 12 TL"]
    ops += [f"({ln[:90].replace(chr(92), '').replace('(', '').replace(')', '')}) Tj T*" for ln in lines]
    ops.append("ET")
    stream = "\n".join(ops).encode()
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 842] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for i, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def document(kind: str, rng: random.Random) -> tuple[str, bytes]:
    """A document of ``kind`` (extension, bytes) of a random size in a random language."""
    lang = rng.choice(LANGUAGES)
    sample = (SAMPLES / f"{lang}.txt").read_text()
    paragraphs = [p for p in sample.split("\n\n") if p.strip()]
    text = "\n\n".join(paragraphs[: rng.randint(1, len(paragraphs))])
    if kind == "md":
        return "md", f"# Report {rng.randint(1, 999)}\n\n{text}".encode()
    if kind == "html":
        return "html", f"<html><body><h1>Note</h1><p>{text}</p></body></html>".encode()
    if kind == "docx":
        return "docx", docx(text)
    if kind == "pdf":
        english = (SAMPLES / "en.txt").read_text()
        return "pdf", pdf(english[: rng.randint(300, len(english))])
    if kind == "long":
        return "txt", "\n\n".join(f"## Part {i}\n\n{sample}" for i in range(rng.randint(3, 6))).encode()
    if kind == "png":
        return "png", PNG
    if kind == "empty":
        return "txt", b"  \n\n "
    return "txt", text.encode()


@dataclass
class Plan:
    """What the storm uploads and how it delivers: per key, the versions in upload order."""

    versions: dict[str, list[tuple[str, bytes]]] = field(default_factory=dict)
    duplicated: set[str] = field(default_factory=set)
    overwritten: set[str] = field(default_factory=set)
    #: Texts also sent to ``POST /summaries``, whose final summary streams.
    http_texts: list[str] = field(default_factory=list)


def plan(documents: int, seed: int) -> Plan:
    """Every 7th document is delivered three times at once, every 10th is overwritten
    (its newer version's event delivered first, the older one's late), and some plain
    texts are also summarized over HTTP (streamed)."""
    rng = random.Random(seed)
    p = Plan()
    for i in range(documents):
        kind = KINDS[i % len(KINDS)]
        ext, body = document(kind, rng)
        # Some keys need URL-encoding in the S3 event: spaces, '+', '%', non-ASCII.
        name = [f"{i:03d}", f"{i:03d} q+{i}% é", f"{i:03d}-naïve report"][i % 3]
        key = f"incoming/storm/{name}-{kind}.{ext}"
        p.versions[key] = [(kind, body)]
        if i % 10 == 9:
            newer_kind = KINDS[(i + 3) % len(KINDS)]
            p.versions[key].append((newer_kind, document(newer_kind, rng)[1]))
            p.overwritten.add(key)
        if i % 7 == 3:
            p.duplicated.add(key)
        if kind == "txt" and i % 4 == 0:
            p.http_texts.append(body.decode())
    return p


@dataclass
class Outcome:
    """Where the storm's documents ended, and what it cost."""

    documents: int
    summaries: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    dead_lettered: int = 0
    #: HTTP answers by status code.
    http: dict[int, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    deliveries: int = 0
    work_runs: int = 0
    model_calls_recorded: int = 0
    model_calls_made: int = 0
    attempts: int = 0
    throttles: int = 0
    invocation_retries: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def run(stack: LocalStack, p: Plan, timeout: float = 900) -> Outcome:
    """Uploads and delivers the plan, waits until every key is settled, and accounts."""
    started = time.time()
    newest: dict[str, tuple[str, dict]] = {}
    late: list[dict] = []
    deliveries = 0
    for key, versions in p.versions.items():
        events = [(kind, stack.put_for_summary(key, body)) for kind, body in versions]
        newest[key] = events[-1]
        # Newest first; older versions' events arrive late.
        stack.deliver(events[-1][1])
        deliveries += 1
        late += [event for _, event in events[:-1]]
        if key in p.duplicated:
            for _ in range(2):
                stack.deliver(events[-1][1])
                deliveries += 1
    for event in late:
        stack.deliver(event)
        deliveries += 1
    outcome = Outcome(documents=len(p.versions), deliveries=deliveries)
    with ThreadPoolExecutor(max_workers=4) as pool:
        for status, body in pool.map(lambda text: stack.http("POST /summaries", {"text": text}), p.http_texts):
            outcome.http[status] = outcome.http.get(status, 0) + 1
            if status != 200 and (status not in RETRYABLE_STATUS or not body.get("error", {}).get("type")):
                outcome.problems.append(f"POST /summaries answered {status}: {body}")
    # The HTTP requests are invocations of the same function, already ended.
    settle(stack, newest, outcome, deliveries + len(p.http_texts), started + timeout)
    outcome.seconds = round(time.time() - started, 1)
    account(stack, newest, outcome)
    return outcome


def etag(event: dict) -> str:
    return event["Records"][0]["s3"]["object"]["eTag"]


def settle(stack: LocalStack, newest: dict, outcome: Outcome, invocations: int, deadline: float) -> None:
    """Waits until ``invocations`` have ended, successfully or in the dead-letter folder
    after Lambda's retries, so that the records are final."""
    log = stack.options.log_dir / "lambda-local.log"
    while time.time() < deadline:
        text = log.read_text(errors="replace") if log.exists() else ""
        ended = text.count("[summarize-document] END RequestId")
        failed = text.count("summarize-document: async invocation")
        if ended - failed + len(dead_letters(stack)) >= invocations:
            return
        time.sleep(1)
    outcome.problems.append("timed out waiting for the deliveries to end")


def dead_letters(stack: LocalStack) -> list[Path]:
    folder = stack.options.log_dir / "dlq"
    return sorted(folder.glob("*")) if folder.exists() else []


def account(stack: LocalStack, newest: dict, outcome: Outcome) -> None:
    """Checks every key's records against its newest version and reads the costs."""
    summaries = set(stack.keys("summaries/incoming/storm/"))
    failures = set(stack.keys("failed/incoming/storm/"))
    dead = set()
    for letter in dead_letters(stack):
        payload = json.loads(letter.read_text()).get("requestPayload", {})
        dead |= {r["s3"]["object"]["eTag"] for r in payload.get("Records", [])}
    outcome.dead_lettered = len(dead_letters(stack))
    for key, (kind, event) in newest.items():
        s, f = f"summaries/{key}.json", f"failed/{key}.json"
        if s in summaries and f in failures:
            outcome.problems.append(f"{key}: both a summary and a failure record")
        elif s in summaries:
            record = stack.get_json(s)
            outcome.summaries += 1
            if record["source"]["etag"] != etag(event):
                outcome.problems.append(f"{key}: summary of an older version")
            if kind in UNREADABLE:
                outcome.problems.append(f"{key}: an unreadable document has a summary")
        elif f in failures:
            record = stack.get_json(f)
            error = record["error"]["type"]
            outcome.failures[error] = outcome.failures.get(error, 0) + 1
            if record["source"]["etag"] != etag(event):
                outcome.problems.append(f"{key}: failure record of an older version")
            if kind not in UNREADABLE:
                outcome.problems.append(f"{key}: readable document failed with {error}")
        elif etag(event) not in dead:
            outcome.problems.append(f"{key}: no record and no dead letter: lost")
    leftover = stack.keys("claims/")
    if leftover:
        outcome.problems.append(f"claims not released: {leftover}")
    log = (stack.options.log_dir / "lambda-local.log").read_text(errors="replace")
    work = collections.Counter()
    for line in log.splitlines():
        if '"document summarized"' in line or '"summary superseded by a newer version"' in line:
            fields = json.loads(line[line.index("{"):])
            f = fields.get("fields", fields)
            work[(f.get("key"), f.get("etag"))] += 1
            outcome.model_calls_recorded += int(f.get("model_calls", 0))
    outcome.work_runs = sum(work.values())
    for (key, tag), runs in work.items():
        if runs > 1:
            outcome.problems.append(f"{key} ({tag}) was summarized {runs} times: a duplicate paid twice")
    # Upload-path calls (InvokeModel); the HTTP requests' final summaries stream.
    outcome.model_calls_made = sum(1 for line in log.splitlines()
                                   if '"model call finished"' in line and '"operation":"InvokeModel"' in line)
    outcome.attempts = sum(int(n) for n in re.findall(r'"Attempts":(\d+)', log))
    outcome.throttles = sum(int(n) for n in re.findall(r'"Throttles":(\d+)', log))
    outcome.invocation_retries = log.count("document will be retried")
