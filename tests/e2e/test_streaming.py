"""Streaming summaries and translations over function URLs (response streaming, Server-Sent
Events) on the local stack: the streaming functions are the same binaries with
RESPONSE_STREAMING=true behind lambda-local's function URLs; the scripted emulator streams one
word per chunk with a delay between chunks.

Asserted: events arrive in order (several `chunk` events, then `done`); their text equals
what the buffered route returns for the same scripted generation; a model failure mid-stream
ends with a typed `error` event; bad input gets a plain 4xx JSON error. Time to first event
and total time are printed (figures for docs/benchmarks.md), never asserted.

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
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools" / "local-stack"))

from stack import ROOT, LocalStack, StackOptions  # noqa: E402

SAMPLES = ROOT / "shared" / "tokens" / "tests" / "data" / "languages"
CHUNK_DELAY_MS = 40
WHOLE = ("The report explains how the team moved its document pipeline to streaming answers, "
         "what it cost, which risks remain and what the next quarter should bring for users.")
COMBINED = "Combined from the parts: the document covers many topics in a long and winding way."
TRANSLATED = "Der Bericht erklärt, wie das Team seine Dokumente auf gestreamte Antworten umgestellt hat."
RULES = {
    "rules": [
        {"prompt_contains": "FAIL-MID-STREAM", "generation": "This answer breaks off after a few words",
         "stream_error_after": 4, "stream_error": "modelStreamErrorException", "chunk_delay_ms": CHUNK_DELAY_MS},
        {"prompt_contains": "You summarize documents accurately", "generation": WHOLE,
         "chunk_delay_ms": CHUNK_DELAY_MS},
        {"prompt_contains": "Summarize part ", "generation": "Summary of one part."},
        {"prompt_contains": "You combine summaries", "generation": COMBINED, "chunk_delay_ms": CHUNK_DELAY_MS},
        {"prompt_contains": "You are a professional translator", "generation": TRANSLATED,
         "chunk_delay_ms": CHUNK_DELAY_MS},
    ]
}


def sse(url: str, body: dict | bytes, content_type: str = "application/json"):
    """POSTs to a function URL; returns (status, headers, events as (name, data, seconds since
    the request), total seconds). A non-SSE answer comes back as one event ("json", body)."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=900)
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    started = time.monotonic()
    conn.request("POST", parts.path, body=data, headers={"content-type": content_type})
    resp = conn.getresponse()
    headers = {k.lower(): v for k, v in resp.getheaders()}
    events = []
    if not headers.get("content-type", "").startswith("text/event-stream"):
        events.append(("json", json.loads(resp.read()), time.monotonic() - started))
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
                events.append((name, json.loads("\n".join(lines)), time.monotonic() - started))
                name, lines = None, []
    total = time.monotonic() - started
    conn.close()
    return resp.status, headers, events, total


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

    def assert_streamed(self, events, total, label):
        names = [name for name, _, _ in events]
        self.assertEqual(names[-1], "done", names)
        self.assertNotIn("error", names)
        chunks = [i for i, name in enumerate(names) if name == "chunk"]
        self.assertGreater(len(chunks), 1, "the text comes in several events")
        self.assertLess(chunks[0], len(names) - 1, "the first chunk precedes done")
        first = events[chunks[0]][2]
        print(f"\n{label}: {len(chunks)} chunk events; first event after {first * 1000:.0f} ms, "
              f"done after {total * 1000:.0f} ms ({first / total:.0%} of the total)")
        return "".join(data["text"] for name, data, _ in events if name == "chunk"), events[-1][1]

    def test_a_summary_streams_and_equals_the_buffered_summary(self):
        text = (SAMPLES / "en.txt").read_text()[:1500]
        status, headers, events, total = sse(self.stack.stream_url("summarize-stream"), {"text": text})
        self.assertEqual(status, 200)
        self.assertTrue(headers["content-type"].startswith("text/event-stream"))
        streamed, done = self.assert_streamed(events, total, "summary (one call)")
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
        status, _, events, total = sse(self.stack.stream_url("summarize-stream"), {"text": text})
        self.assertEqual(status, 200)
        names = [name for name, _, _ in events]
        self.assertEqual(names[0], "progress")
        first_chunk = names.index("chunk")
        self.assertTrue(all(n == "progress" for n in names[:first_chunk]), names)
        streamed, done = self.assert_streamed(events, total, "summary (parts, then the combination)")
        self.assertEqual(streamed, COMBINED)
        self.assertGreater(done["parts"], 1)
        code, record = self.stack.http("POST /summaries", {"text": text})
        self.assertEqual(code, 200, record)
        self.assertEqual(streamed, record["summary"])
        self.assertEqual(done["parts"], record["parts"])

    def test_a_translation_streams_and_equals_the_buffered_translation(self):
        body = {"text": "The report explains how the team moved its documents to streamed answers.",
                "source_language": "en", "target_language": "de"}
        status, _, events, total = sse(self.stack.stream_url("translate-stream"), body)
        self.assertEqual(status, 200)
        streamed, done = self.assert_streamed(events, total, "translation")
        code, record = self.stack.http("POST /translations", body)
        self.assertEqual(code, 200, record)
        self.assertEqual(streamed, record["translation"])
        self.assertEqual(done["translation"], record["translation"])
        self.assertEqual(done["usage"]["model_calls"], record["usage"]["model_calls"])

    def test_a_failure_mid_stream_is_a_typed_error_event(self):
        text = "FAIL-MID-STREAM " + (SAMPLES / "en.txt").read_text()[:800]
        status, _, events, _ = sse(self.stack.stream_url("summarize-stream"), {"text": text})
        self.assertEqual(status, 200)
        names = [name for name, _, _ in events]
        self.assertEqual(names[-1], "error", names)
        self.assertIn("chunk", names[:-1], "the failure came after the first text")
        # modelStreamErrorException is a typed, retryable model failure (HTTP 503's message).
        self.assertEqual(events[-1][1], {"type": "ModelUnavailable",
                                         "message": "the model is temporarily unavailable; retry later"})

    def test_bad_input_is_a_plain_4xx_json_error(self):
        url = self.stack.stream_url("summarize-stream")
        for body, content_type, code, error_type in [
            ({"text": "   "}, "application/json", 422, "UnsupportedDocument"),
            ({"txt": "x"}, "application/json", 400, "InvalidInput"),
            (b"hello", "text/plain", 415, "UnsupportedMediaType"),
        ]:
            with self.subTest(error_type=error_type):
                status, headers, events, _ = sse(url, body, content_type)
                self.assertEqual(status, code)
                self.assertEqual(headers["content-type"], "application/json")
                self.assertEqual(events[0][1]["error"]["type"], error_type)
        status, _, events, _ = sse(self.stack.stream_url("translate-stream"),
                                   {"text": "Hallo", "target_language": "xx"})
        self.assertEqual(status, 400)
        self.assertEqual(events[0][1]["error"]["type"], "InvalidInput")


if __name__ == "__main__":
    unittest.main(verbosity=2)
