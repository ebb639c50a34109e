"""Streaming summaries and translations over function URLs (response streaming, Server-Sent
Events) on the local stack: the streaming functions are the same binaries with
RESPONSE_STREAMING=true behind lambda-local's function URLs; the scripted emulator streams one
word per chunk with a delay between chunks.

Asserted: events arrive in order (several `chunk` events, then `done`); when the first `chunk`
event has been read, the emulator still counts the streamed model call as generating and not
completed (so the answer is not buffered anywhere on the way), and it completes after; the
text equals what the buffered route returns for the same scripted generation; `done` carries
the final call's stop reason; a model failure mid-stream ends with a typed `error` event; bad
input gets a plain 4xx JSON error `{"error": {"type", "message"}}` that names no internals.
Time to first event and total time are printed (figures for docs/benchmarks.md), never
asserted.

Run: cargo build -q --bins -p bedrock-local -p lambda-local -p summarize-document
     -p classify-ticket -p translate -p jobs
     .venv/bin/python -m unittest tests/e2e/test_streaming.py
"""

from __future__ import annotations

import http.client
import json
import shutil
import sys
import tempfile
import time
import unittest
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools" / "local-stack"))

from stack import BUCKET, ROOT, LocalStack, StackOptions  # noqa: E402

SAMPLES = ROOT / "shared" / "tokens" / "tests" / "data" / "languages"
#: The scripted generations stream one word per this many milliseconds: the streamed call
#: is still generating for (words - 1) delays after its first chunk.
CHUNK_DELAY_MS = 100
WHOLE = ("The report explains how the team moved its document pipeline to streaming answers, "
         "what it cost, which risks remain and what the next quarter should bring for users.")
COMBINED = "Combined from the parts: the document covers many topics in a long and winding way."
TRANSLATED = ("Der Bericht erklärt, wie das Team seine Dokumente auf gestreamte Antworten umgestellt hat, "
              "was das gekostet hat, welche Risiken bleiben und was das nächste Quartal bringen soll.")
RULES = {
    "rules": [
        {"prompt_contains": "FAIL-MID-STREAM", "generation": "This answer breaks off after a few words",
         "stream_error_after": 4, "stream_error": "modelStreamErrorException", "chunk_delay_ms": CHUNK_DELAY_MS},
        {"prompt_contains": "You summarize documents accurately", "generation": WHOLE,
         "chunk_delay_ms": CHUNK_DELAY_MS},
        {"prompt_contains": "Summarize part ", "generation": "Summary of one part."},
        {"prompt_contains": "You combine summaries", "generation": COMBINED, "chunk_delay_ms": CHUNK_DELAY_MS},
        {"prompt_contains": "EMPTY-ONCE", "generation": "", "times": 1},
        {"prompt_contains": "EMPTY-ONCE", "generation": "Einmal leer, dann übersetzt."},
        {"prompt_contains": "You are a professional translator", "generation": TRANSLATED,
         "chunk_delay_ms": CHUNK_DELAY_MS},
    ]
}
#: What an error body must never contain: ARNs, the bucket, file paths, panics, tracebacks.
INTERNALS = ("arn:", BUCKET, str(ROOT), "/src/", ".rs:", "panicked", "backtrace", "Traceback")


@dataclass
class Answer:
    status: int
    headers: dict
    #: (name, data, seconds since the request); a non-SSE answer is one event ("json", body).
    events: list
    #: Seconds from the request to the end of the answer.
    total: float
    #: What ``at_first_chunk`` returned when the first ``chunk`` event had been read.
    at_first_chunk: object = None


def sse(url: str, body: dict | bytes, content_type: str = "application/json",
        at_first_chunk: Callable[[], object] | None = None) -> Answer:
    """POSTs to a function URL and reads the answer event by event; ``at_first_chunk`` is
    called as soon as the first ``chunk`` event is read, before the rest of the stream."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=900)
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    started = time.monotonic()
    conn.request("POST", parts.path, body=data, headers={"content-type": content_type})
    resp = conn.getresponse()
    headers = {k.lower(): v for k, v in resp.getheaders()}
    answer = Answer(resp.status, headers, [], 0.0)
    if not headers.get("content-type", "").startswith("text/event-stream"):
        answer.events.append(("json", json.loads(resp.read()), time.monotonic() - started))
    else:
        name, lines = None, []
        while True:
            line = resp.readline()
            if not line:
                break
            line = line.decode().rstrip("\n")
            if line.startswith("event: "):
                name = line[len("event: "):]
            elif line.startswith("data: "):
                lines.append(line[len("data: "):])
            elif line == "" and name is not None:
                answer.events.append((name, json.loads("\n".join(lines)), time.monotonic() - started))
                if name == "chunk" and at_first_chunk and answer.at_first_chunk is None:
                    answer.at_first_chunk = at_first_chunk()
                name, lines = None, []
    answer.total = time.monotonic() - started
    conn.close()
    return answer


class Streaming(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        rules = Path(cls.tmp.name) / "rules.json"
        rules.write_text(json.dumps(RULES))
        opts = StackOptions(scripted=rules, context_window=2048,
                            log_dir=ROOT / "target" / "local-stack-streaming")
        shutil.rmtree(opts.log_dir, ignore_errors=True)
        cls.stack = LocalStack(opts).start()

    @classmethod
    def tearDownClass(cls):
        cls.stack.stop()
        cls.tmp.cleanup()

    def stream(self, name: str, body: dict) -> Answer:
        """A streamed request whose emulator counters are read at its first chunk."""
        return sse(self.stack.stream_url(name), body, at_first_chunk=self.stack.emulator_stats)

    def calls_settled(self) -> dict:
        """The emulator's counters once no model call is open (hang guard: 60 s)."""
        end = time.monotonic() + 60
        while (stats := self.stack.emulator_stats())["open_requests"] > 0:
            if time.monotonic() > end:
                self.fail(f"model calls still open 60 s after the stream ended: {stats}")
            time.sleep(0.05)
        return stats

    def assert_streamed(self, answer: Answer, label: str):
        """Checks the event order and that the first chunk came while the streamed call was
        still generating; returns the streamed text and the `done` data."""
        names = [name for name, _, _ in answer.events]
        self.assertEqual(names[-1], "done", names)
        self.assertNotIn("error", names)
        chunks = [i for i, name in enumerate(names) if name == "chunk"]
        self.assertGreater(len(chunks), 1, "the text comes in several events")
        self.assertLess(chunks[0], len(names) - 1, "the first chunk precedes done")
        # Read at the first chunk: the final model call is open and still generating, and
        # has not completed; it completes after. A response buffered anywhere between the
        # emulator and the client shows up only after the call has completed.
        at_first = answer.at_first_chunk
        self.assertEqual((at_first["open_requests"], at_first["in_flight"]), (1, 1),
                         f"the streamed call was not generating any more at the first chunk: {at_first}")
        after = self.calls_settled()
        self.assertEqual(after["completed"], at_first["completed"] + 1,
                         f"the streamed call did not complete after the first chunk: {at_first} -> {after}")
        first = answer.events[chunks[0]][2]
        print(f"\n{label}: {len(chunks)} chunk events; first event after {first * 1000:.0f} ms, "
              f"done after {answer.total * 1000:.0f} ms ({first / answer.total:.0%} of the total)")
        return "".join(data["text"] for name, data, _ in answer.events if name == "chunk"), answer.events[-1][1]

    def assert_plain_error(self, answer: Answer, code: int, error_type: str):
        """A plain JSON error answer: exactly `{"error": {"type", "message"}}`, no internals."""
        self.assertEqual(answer.status, code)
        self.assertEqual(answer.headers["content-type"], "application/json")
        self.assertEqual([name for name, _, _ in answer.events], ["json"])
        body = answer.events[0][1]
        self.assertEqual(list(body), ["error"], body)
        self.assertEqual(sorted(body["error"]), ["message", "type"], body)
        self.assertEqual(body["error"]["type"], error_type)
        self.assertIsInstance(body["error"]["message"], str)
        self.assertTrue(body["error"]["message"], body)
        raw = json.dumps(body)
        for internal in INTERNALS:
            self.assertNotIn(internal, raw)

    def test_a_summary_streams_and_equals_the_buffered_summary(self):
        text = (SAMPLES / "en.txt").read_text()[:1500]
        answer = self.stream("summarize-stream", {"text": text})
        self.assertEqual(answer.status, 200)
        self.assertTrue(answer.headers["content-type"].startswith("text/event-stream"))
        streamed, done = self.assert_streamed(answer, "summary (one call)")
        self.assertEqual(streamed, WHOLE)
        code, record = self.stack.http("POST /summaries", {"text": text})
        self.assertEqual(code, 200, record)
        self.assertEqual(streamed, record["summary"])
        self.assertEqual(done["summary"], record["summary"])
        self.assertEqual(done["stop_reason"], "stop")
        self.assertEqual(done["parts"], 1)
        self.assertEqual(done["usage"]["model_calls"], 1)
        self.assertGreater(done["usage"]["generation_tokens"], 0)

    def test_a_long_document_reports_progress_then_streams_the_combination(self):
        text = (SAMPLES / "en.txt").read_text() * 8
        answer = self.stream("summarize-stream", {"text": text})
        self.assertEqual(answer.status, 200)
        names = [name for name, _, _ in answer.events]
        self.assertEqual(names[0], "progress")
        first_chunk = names.index("chunk")
        self.assertTrue(all(n == "progress" for n in names[:first_chunk]), names)
        streamed, done = self.assert_streamed(answer, "summary (parts, then the combination)")
        self.assertEqual(streamed, COMBINED)
        self.assertGreater(done["parts"], 1)
        self.assertEqual(done["stop_reason"], "stop")
        code, record = self.stack.http("POST /summaries", {"text": text})
        self.assertEqual(code, 200, record)
        self.assertEqual(streamed, record["summary"])
        self.assertEqual(done["parts"], record["parts"])

    def test_a_translation_streams_and_equals_the_buffered_translation(self):
        body = {"text": "The report explains how the team moved its documents to streamed answers.",
                "source_language": "en", "target_language": "de"}
        answer = self.stream("translate-stream", body)
        self.assertEqual(answer.status, 200)
        streamed, done = self.assert_streamed(answer, "translation")
        self.assertEqual(streamed, TRANSLATED)
        code, record = self.stack.http("POST /translations", body)
        self.assertEqual(code, 200, record)
        self.assertEqual(streamed, record["translation"])
        self.assertEqual(done["translation"], record["translation"])
        self.assertEqual(done["usage"]["model_calls"], record["usage"]["model_calls"])
        self.assertEqual(done["stop_reason"], "stop")

    def test_an_empty_streamed_translation_is_tried_once_more(self):
        body = {"text": "EMPTY-ONCE: the report is ready.", "source_language": "en", "target_language": "de"}
        answer = self.stream("translate-stream", body)
        self.assertEqual(answer.status, 200)
        names = [name for name, _, _ in answer.events]
        self.assertEqual(names[-1], "done", names)
        streamed = "".join(data["text"] for name, data, _ in answer.events if name == "chunk")
        self.assertEqual(streamed, "Einmal leer, dann übersetzt.")
        done = answer.events[-1][1]
        self.assertEqual(done["translation"], streamed)
        self.assertEqual(done["usage"]["model_calls"], 2)

    def test_a_failure_mid_stream_is_a_typed_error_event(self):
        text = "FAIL-MID-STREAM " + (SAMPLES / "en.txt").read_text()[:800]
        answer = sse(self.stack.stream_url("summarize-stream"), {"text": text})
        self.assertEqual(answer.status, 200)
        names = [name for name, _, _ in answer.events]
        self.assertEqual(names[-1], "error", names)
        self.assertIn("chunk", names[:-1], "the failure came after the first text")
        # modelStreamErrorException is a typed, retryable model failure (HTTP 503's message).
        self.assertEqual(answer.events[-1][1], {"type": "ModelUnavailable",
                                                "message": "the model is temporarily unavailable; retry later"})

    def test_bad_input_is_a_plain_4xx_json_error(self):
        summarize, translate = self.stack.stream_url("summarize-stream"), self.stack.stream_url("translate-stream")
        before = self.stack.emulator_stats()["requests"]
        for url, body, content_type, code, error_type in [
            (summarize, {"text": "   "}, "application/json", 422, "UnsupportedDocument"),
            (summarize, {"txt": "x"}, "application/json", 400, "InvalidInput"),
            (summarize, b"{not json", "application/json", 400, "InvalidInput"),
            (summarize, b"hello", "text/plain", 415, "UnsupportedMediaType"),
            (translate, {"text": "Hallo", "target_language": "xx"}, "application/json", 400, "InvalidInput"),
            (translate, {"text": "  ", "target_language": "de"}, "application/json", 400, "InvalidInput"),
        ]:
            with self.subTest(url=url, body=body):
                self.assert_plain_error(sse(url, body, content_type), code, error_type)
        self.assertEqual(self.stack.emulator_stats()["requests"], before, "bad input reached the model")


if __name__ == "__main__":
    unittest.main(verbosity=2)
