"""Flow control, small: a backlog dropped into ``incoming/`` at once drains through the upload
queue (moto's S3 notifications -> SQS -> lambda-local's event source mapping with the
planner's MaximumConcurrency -> summarize-document) against an emulator with three
generation slots and no waiting queue, like Bedrock beyond its quota. Every document must
end as a record, the emulator must never see more calls at once than it has slots, and
nothing may be throttled; the HTTP routes answer meanwhile. ``make bench`` runs the same
with 1,000 documents (benches/load.py; figures in docs/benchmarks.md).
"""

from __future__ import annotations

import shutil
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools" / "local-stack"))

import load  # noqa: E402
from stack import ROOT, LocalStack  # noqa: E402


class FlowControl(unittest.TestCase):
    def test_a_backlog_drains_within_the_emulators_limits(self):
        settings = load.LoadSettings(documents=24, slots=3, call_ms=150, tokens_per_minute=3_000_000,
                                     requests_per_minute=6_000, http_share_percent=34, probe_interval=0.3,
                                     batch_size=4, seed=3, log_dir=ROOT / "target" / "local-stack-flow")
        shutil.rmtree(settings.log_dir, ignore_errors=True)
        caps = load.plan_caps(settings)
        # Two consumers (SQS's minimum) of one call each leave the third slot to HTTP.
        self.assertEqual((caps["upload_consumers"], caps["part_concurrency"]), (2, 1), caps)
        with LocalStack(load.stack_options(settings, caps)) as stack:
            outcome = load.run_uploads(stack, settings, caps, timeout=600)
        o = outcome.as_dict()
        self.assertEqual(outcome.lost, [], o)
        self.assertEqual(outcome.summaries, settings.documents, o)
        self.assertEqual(outcome.dead_lettered, 0, o)
        stats = outcome.emulator
        self.assertLessEqual(stats["peak_open_requests"], settings.slots, o)
        self.assertEqual(stats["throttled"], 0, o)
        self.assertLessEqual(stats["peak_tokens_per_minute"], settings.tokens_per_minute, o)
        # At least one long document was split into parts: more calls than documents.
        self.assertGreater(outcome.model_calls, settings.documents, o)
        self.assertGreater(outcome.http["requests"], 0, o)
        self.assertEqual(set(outcome.http["statuses"]), {200}, o)


if __name__ == "__main__":
    unittest.main(verbosity=2)
