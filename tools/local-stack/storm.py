"""The fault storm: many documents through the upload path of the local stack while the
emulator injects throttling, 503s, mid-stream failures and stalls, with duplicate
deliveries and overwrites, and streamed summaries over HTTP; then an account of where every
document ended, of what it cost and of the faults the emulator injected.

The upload path is the deployed one: moto's S3 notifications go to the uploads queue, whose
event source mapping (ReportBatchItemFailures) feeds summarize-document; a message that
failed for now comes back after the function's visibility backoff, and after the template's
``UploadMaxReceives`` receives it would move to the dead-letter queue. ``upload_queue=False``
runs the former path instead: asynchronous Lambda invocations with Lambda's two retries and
its dead-letter folder.

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
import urllib.parse
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from stack import ROOT, LocalStack, StackOptions

SAMPLES = ROOT / "shared" / "tokens" / "tests" / "data" / "languages"
LANGUAGES = ("en", "de", "fr", "it", "pt", "hi", "es", "th")
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01"
#: The faults the issue asks for: 30% throttling, 5% 503s, 2% mid-stream failures, 1% stalls.
FAULTS = ["--throttle-rate", "0.3", "--unavailable-rate", "0.05", "--stream-fail-rate", "0.02",
          "--stall-rate", "0.01"]
#: The injected faults counted per storm (``fault_counts``).
FAULT_KINDS = ("throttled", "unavailable", "stream_failed", "stalled")
#: Retries fast enough for a test; an attempt that stalls is cut after a second.
FUNCTION_ENV = {"BEDROCK_RETRY_BASE_MS": "20", "BEDROCK_RETRY_MAX_MS": "200",
                "BEDROCK_ATTEMPT_TIMEOUT_MS": "1000", "BEDROCK_STREAM_IDLE_TIMEOUT_MS": "1000"}
#: The function's visibility backoff in seconds rather than the template's minutes: a
#: message that failed comes back after 1 s, then 1-2 s, then 2-4 s at most.
QUEUE_ENV = {"UPLOAD_RETRY_BASE_SECONDS": "1", "UPLOAD_RETRY_MAX_SECONDS": "4"}
#: The upload queue's visibility timeout (the template's is 5,400 s), which also caps the
#: function's timeout: 120 s leaves a minute after lambda_kit's 60 s start reserve. moto's
#: SQS rebuilds its message list on every delete without a lock, so two deletes at once can
#: bring one deleted message back, invisible for this long; it then comes back and is
#: acknowledged as already done: the storm waits two minutes more at most, not fifteen.
VISIBILITY_TIMEOUT = 120
#: Kinds of document, in rotation; the last two can only end as failure records.
KINDS = ("txt", "md", "html", "docx", "pdf", "long", "txt", "md", "png", "empty")
UNREADABLE = {"png", "empty"}
#: What an HTTP caller may get besides 200 in a storm: typed, retryable model-side errors.
RETRYABLE_STATUS = {429, 502, 503, 504}


def template_default(parameter: str) -> int:
    """The default of a Number parameter of template.yaml."""
    text = (ROOT / "template.yaml").read_text()
    found = re.search(rf"^  {parameter}:\n(?:    .*\n)*?    Default: (\d+)$", text, re.M)
    if not found:
        raise KeyError(f"template.yaml has no default for {parameter}")
    return int(found.group(1))


def storm_options(log_dir: Path, rules: Path, seed: int, window: int, upload_queue: bool = True) -> StackOptions:
    """The stack for a storm: versioned bucket, faults, fast retries, and the upload queue as
    deployed (its receives before the dead-letter queue; the backoff in seconds)."""
    env = {**FUNCTION_ENV, **(QUEUE_ENV if upload_queue else {})}
    return StackOptions(scripted=rules, context_window=window, versioned=True, upload_queue=upload_queue,
                        max_receive_count=template_default("UploadMaxReceives"), visibility_timeout=VISIBILITY_TIMEOUT,
                        emulator_args=[*FAULTS, "--fault-seed", str(seed)], function_env=env, log_dir=log_dir)


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
    #: Texts summarized over ``POST /summaries``, whose final call streams.
    http_texts: list[str] = field(default_factory=list)


def plan(documents: int, seed: int, http_summaries: int | None = None) -> Plan:
    """Every 7th document is delivered three times at once, every 10th is overwritten by a
    version of another kind (the older version's event comes again, late), and
    ``http_summaries`` short texts (default: two per document) are summarized over HTTP:
    their calls stream, the only ones a mid-stream failure can hit."""
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
    texts = 2 * documents if http_summaries is None else http_summaries
    p.http_texts = [document("txt", rng)[1].decode() for _ in range(texts)]
    return p


@dataclass
class Outcome:
    """Where the storm's documents ended, what it cost and which faults it met."""

    documents: int
    #: ``queue`` (S3 -> SQS -> event source mapping) or ``direct`` (async invocations).
    upload_path: str = "queue"
    summaries: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    dead_lettered: int = 0
    #: HTTP answers by status code.
    http: dict[int, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    #: S3 notifications, repeated and late events delivered.
    deliveries: int = 0
    #: Deliveries that failed for now and came back (a message received again after its
    #: backoff, or an invocation retried by Lambda).
    redeliveries: int = 0
    work_runs: int = 0
    model_calls_recorded: int = 0
    model_calls_made: int = 0
    #: Model requests the emulator received.
    model_requests: int = 0
    #: Faults the emulator injected (``FAULT_KINDS``): in the whole storm, and in its HTTP
    #: part alone.
    faults: dict[str, int] = field(default_factory=dict)
    http_faults: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def run(stack: LocalStack, p: Plan, timeout: float = 900) -> Outcome:
    """Summarizes the plan's texts over HTTP, then uploads and delivers its documents, waits
    until every delivery has ended, and accounts."""
    started = time.time()
    queue = stack.options.upload_queue
    outcome = Outcome(documents=len(p.versions), upload_path="queue" if queue else "direct")
    summarize_over_http(stack, p.http_texts, outcome)
    outcome.http_faults = fault_counts(stack)
    newest, outcome.deliveries = upload(stack, p)
    if queue:
        settle_queue(stack, outcome, started + timeout)
    else:
        # The HTTP requests are invocations of the same function, already ended.
        settle_invocations(stack, outcome, outcome.deliveries + len(p.http_texts), started + timeout)
    outcome.seconds = round(time.time() - started, 1)
    outcome.faults = fault_counts(stack)
    outcome.model_requests = stack.emulator_stats()["requests"]
    account(stack, newest, outcome)
    return outcome


def summarize_over_http(stack: LocalStack, texts: list[str], outcome: Outcome) -> None:
    """``POST /summaries`` for each text, one at a time and before any upload: with no other
    model calls, the seeded faults fall on the same calls in every run of a plan."""
    for text in texts:
        status, body = stack.http("POST /summaries", {"text": text})
        outcome.http[status] = outcome.http.get(status, 0) + 1
        if status != 200 and (status not in RETRYABLE_STATUS or not body.get("error", {}).get("type")):
            outcome.problems.append(f"POST /summaries answered {status}: {body}")


def upload(stack: LocalStack, p: Plan) -> tuple[dict[str, tuple[str, dict]], int]:
    """Puts every version and delivers the events; returns each key's newest version (kind,
    event) and the number of deliveries.

    With the queue, S3 (moto) sends each put's notification to it in put order; the storm
    adds what S3 may also do: the newest version's event twice more at once (every 7th key)
    and the older version's event again, late (every 10th). moto numbers its events in put
    order as the stack does (the storm puts one object at a time), so these are S3's own
    events, and ``account`` checks each record's sequencer against them. Without the queue,
    the storm delivers every event itself: newest version first, duplicates at once, older
    versions late."""
    queue = stack.options.upload_queue
    sqs = stack.sqs() if queue else None

    def deliver(event: dict) -> None:
        if sqs:
            sqs.send_message(QueueUrl=stack.queue_url, MessageBody=json.dumps(event))
        else:
            stack.deliver(event)

    newest: dict[str, tuple[str, dict]] = {}
    late: list[dict] = []
    deliveries = 0
    for key, versions in p.versions.items():
        events = [(kind, stack.put_for_summary(key, body)) for kind, body in versions]
        newest[key] = events[-1]
        if queue:
            deliveries += len(events)
        else:
            deliver(events[-1][1])
            deliveries += 1
        late += [event for _, event in events[:-1]]
        if key in p.duplicated:
            for _ in range(2):
                deliver(events[-1][1])
                deliveries += 1
    for event in late:
        deliver(event)
        deliveries += 1
    return newest, deliveries


def settle_queue(stack: LocalStack, outcome: Outcome, deadline: float) -> None:
    """Waits until the upload queue holds no message, visible or not: each one deleted after
    it succeeded, or moved to the dead-letter queue after its last receive."""
    while time.time() < deadline:
        if stack.queue_depth(stack.queue_url) == 0:
            return
        time.sleep(1)
    attributes = stack.sqs().get_queue_attributes(QueueUrl=stack.queue_url, AttributeNames=[
        "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
    outcome.problems.append(f"timed out waiting for the upload queue to drain: {attributes}")


def settle_invocations(stack: LocalStack, outcome: Outcome, invocations: int, deadline: float) -> None:
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


def dead_letters(stack: LocalStack) -> list[dict]:
    """The S3 events in the upload queue's dead-letter queue, or without the queue in
    Lambda's dead-letter folder."""
    if not stack.options.upload_queue:
        folder = stack.options.log_dir / "dlq"
        letters = sorted(folder.glob("*")) if folder.exists() else []
        return [json.loads(letter.read_text()).get("requestPayload", {}) for letter in letters]
    sqs, events = stack.sqs(), []
    while True:
        # Received and left invisible, so that each is read once.
        got = sqs.receive_message(QueueUrl=stack.dlq_url, MaxNumberOfMessages=10,
                                  VisibilityTimeout=900).get("Messages", [])
        if not got:
            return events
        events += [json.loads(message["Body"]) for message in got]


def fault_counts(stack: LocalStack) -> dict[str, int]:
    """The faults the emulator injected so far, by kind: throttles from its counters, the
    others from its log (one line per 503 answer, failed stream and stalled request)."""
    log = (stack.options.log_dir / "bedrock-local.log").read_text(errors="replace").splitlines()
    return {
        "throttled": stack.emulator_stats()["throttled_by"]["injected"],
        "unavailable": sum(1 for line in log
                           if "request refused" in line and "kind=ServiceUnavailableException" in line),
        "stream_failed": sum(1 for line in log if "stream failed" in line and "kind=ModelStreamErrorException" in line),
        "stalled": sum(1 for line in log if "stalling a request (fault)" in line),
    }


def account(stack: LocalStack, newest: dict, outcome: Outcome) -> None:
    """Checks every key's records against its newest version and reads the costs. Every
    document must end as its record: a dead letter is a problem (with the queue, a document
    that failed on all of its receives; its last receive's failure record then has a type
    other than ``UnsupportedDocument`` and is a problem too)."""
    summaries = set(stack.keys("summaries/incoming/storm/"))
    failures = set(stack.keys("failed/incoming/storm/"))
    dead = dead_letters(stack)
    outcome.dead_lettered = len(dead)
    for event in dead:
        for record in event.get("Records", []):
            key = urllib.parse.unquote_plus(record["s3"]["object"]["key"])
            outcome.problems.append(f"{key} ({record['s3']['object'].get('eTag')}): a delivery ended as a dead letter")
    for key, (kind, event) in newest.items():
        s, f = f"summaries/{key}.json", f"failed/{key}.json"
        if s in summaries and f in failures:
            outcome.problems.append(f"{key}: both a summary and a failure record")
        elif s in summaries:
            record = stack.get_json(s)
            outcome.summaries += 1
            check_source(key, record, event, outcome)
            if kind in UNREADABLE:
                outcome.problems.append(f"{key}: an unreadable document has a summary")
        elif f in failures:
            record = stack.get_json(f)
            error = record["error"]["type"]
            outcome.failures[error] = outcome.failures.get(error, 0) + 1
            check_source(key, record, event, outcome)
            if kind not in UNREADABLE:
                outcome.problems.append(f"{key}: readable document failed with {error}")
        else:
            outcome.problems.append(f"{key}: no record: lost")
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
    # Upload-path calls (InvokeModel); the HTTP requests' calls stream.
    outcome.model_calls_made = sum(1 for line in log.splitlines()
                                   if '"model call finished"' in line and '"operation":"InvokeModel"' in line)
    outcome.redeliveries = log.count("document will be retried")


def check_source(key: str, record: dict, event: dict, outcome: Outcome) -> None:
    """A record must describe the newest version, as its S3 event announced it."""
    source, announced = record["source"], event["Records"][0]["s3"]["object"]
    if source["etag"] != announced["eTag"]:
        outcome.problems.append(f"{key}: record of an older version")
    elif source.get("sequencer") not in (None, announced["sequencer"]):
        outcome.problems.append(f"{key}: record sequencer {source['sequencer']}, "
                                f"the event's {announced['sequencer']}")
