"""Flow control, small: a backlog dropped into ``incoming/`` at once drains through the upload
queue (moto's S3 notifications -> SQS -> lambda-local's event source mapping with the
planner's MaximumConcurrency -> summarize-document) against an emulator with three
generation slots and no waiting queue, like Bedrock beyond its quota. Every document must
end as a record, the emulator must never see more calls at once than it has slots, and
nothing may be throttled; the HTTP routes answer meanwhile. ``make bench`` runs the same
with 1,000 documents (benches/load.py; figures in docs/benchmarks.md).
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools" / "local-stack"))

import load  # noqa: E402
from stack import ROOT, LocalStack, StackOptions  # noqa: E402


class FlowControl(unittest.TestCase):
    def test_a_backlog_drains_within_the_emulators_limits(self):
        # Four slots, half kept for HTTP: two consumers and the probe leave one slot spare, so
        # a slot freed a moment after its caller saw the answer cannot read as over the cap.
        settings = load.LoadSettings(documents=24, slots=4, call_ms=150, tokens_per_minute=3_000_000,
                                     requests_per_minute=6_000, http_share_percent=50, probe_interval=0.3,
                                     batch_size=4, seed=3, log_dir=ROOT / "target" / "local-stack-flow")
        shutil.rmtree(settings.log_dir, ignore_errors=True)
        caps = load.plan_caps(settings)
        self.assertEqual((caps["upload_consumers"], caps["part_concurrency"]), (2, 1), caps)
        with LocalStack(load.stack_options(settings, caps)) as stack:
            outcome = load.run_uploads(stack, settings, caps, timeout=600)
        o = outcome.as_dict()
        self.assertEqual(outcome.lost, [], o)
        self.assertEqual(outcome.summaries, settings.documents, o)
        self.assertEqual(outcome.dead_lettered, 0, o)
        stats = outcome.emulator
        # The consumers and the probe never had more calls open than they are: the queue's
        # MaximumConcurrency held, and nothing was refused for concurrency or budget.
        self.assertLessEqual(stats["peak_open_requests"], caps["upload_consumers"] + 1, o)
        self.assertEqual(stats["throttled"], 0, o)
        # At least one long document was split into parts: more calls than documents.
        self.assertGreater(outcome.model_calls, settings.documents, o)
        self.assertGreater(outcome.http["requests"], 0, o)
        self.assertEqual(set(outcome.http["statuses"]), {200}, o)

    def test_a_document_that_failed_for_now_comes_back_after_its_backoff(self):
        """The queue's visibility timeout is 900 s; the function's retry backoff 1-2 s. The
        flaky document's first model call is throttled (one attempt per call): its message
        is a batch item failure, and the function makes it visible again after the backoff
        instead of the 900 s, so it is summarized on its second receive, within a wait the
        visibility timeout alone could never meet."""
        log_dir = ROOT / "target" / "local-stack-visibility"
        shutil.rmtree(log_dir, ignore_errors=True)
        log_dir.mkdir(parents=True)
        marker = "QUOKKA-RETRY-MARKER"
        rules = log_dir / "rules.json"
        rules.write_text(json.dumps({
            "rules": [{"prompt_contains": marker, "times": 1, "error": "ThrottlingException"}],
            "fallback": {"generation": "A short summary."}}))
        opts = StackOptions(scripted=rules, log_dir=log_dir, upload_queue=True, visibility_timeout=900,
                            max_receive_count=3, function_env={
                                "UPLOAD_RETRY_BASE_SECONDS": "1", "UPLOAD_RETRY_MAX_SECONDS": "2",
                                "BEDROCK_MAX_ATTEMPTS": "1"})
        with LocalStack(opts) as stack:
            stack.upload_for_summary("incoming/flaky.txt", f"Quarterly notes. {marker} Sales grew.".encode())
            stack.upload_for_summary("incoming/steady.txt", b"Weekly notes. Nothing changed.")
            for key in ("incoming/flaky.txt", "incoming/steady.txt"):
                where = stack.wait_object([f"summaries/{key}.json", f"failed/{key}.json"], timeout=240)
                self.assertEqual(where, f"summaries/{key}.json")
            stats = stack.emulator_stats()
            dead = stack.sqs().get_queue_attributes(QueueUrl=stack.dlq_url,
                                                     AttributeNames=["ApproximateNumberOfMessages"])
        self.assertEqual(stats["throttled_by"]["injected"], 1, stats)
        self.assertEqual(dead["Attributes"]["ApproximateNumberOfMessages"], "0")
        log = (log_dir / "lambda-local.log").read_text()
        # One message failed, once; its visibility was changed (not left to the queue).
        self.assertEqual(log.count("message comes back"), 1, "visibility changes in the function log")
        self.assertEqual(log.count("visibility not changed") + log.count("visibility change not confirmed"), 0)
        # lambda-local's summary of the mapping: S3's test event, steady, and flaky twice
        # (its second receive); one batch item failure; three messages deleted.
        source = re.search(r"summarize-document: SQS source: \d+ batches, (\d+) messages, (\d+) deleted, "
                           r"(\d+) failed items", log)
        self.assertIsNotNone(source, "the mapping's summary line")
        self.assertEqual(tuple(map(int, source.groups())), (4, 3, 1), source.group(0))


if __name__ == "__main__":
    unittest.main(verbosity=2)
