"""The fault storm, small: 80 streamed summaries over HTTP, then 40 documents of every kind
through the upload queue as deployed (S3 -> SQS -> event source mapping with batch item
failures, the function's visibility backoff, the dead-letter queue after the template's
receives), while the emulator throttles 30% of calls, answers 5% with 503, fails 2% of
streams midway and stalls 1%, with duplicate deliveries and late events of overwritten
objects. Every document must end as exactly one record of its newest version, none as a
dead letter, no duplicate may pay twice, and no claim may stay behind. ``make bench`` runs
the same storm with 200 documents (benches/storm.py; figures in docs/reliability.md).
"""

from __future__ import annotations

import shutil
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools" / "local-stack"))

import storm  # noqa: E402
from stack import ROOT, LocalStack  # noqa: E402

RULES = Path(__file__).with_name("scripted-rules.json")


class FaultStorm(unittest.TestCase):
    def test_every_document_ends_as_one_record_of_its_newest_version(self):
        opts = storm.storm_options(ROOT / "target" / "local-stack-storm", RULES, seed=5, window=2048)
        self.assertTrue(opts.upload_queue)
        shutil.rmtree(opts.log_dir, ignore_errors=True)
        plan = storm.plan(40, seed=5)
        self.assertTrue(plan.duplicated and plan.overwritten)
        with LocalStack(opts) as stack:
            outcome = storm.run(stack, plan, timeout=600)
        o = outcome.as_dict()
        self.assertEqual(outcome.problems, [], o)
        self.assertEqual(outcome.dead_lettered, 0, o)
        self.assertEqual(outcome.summaries + sum(outcome.failures.values()), len(plan.versions), o)
        unreadable = sum(1 for v in plan.versions.values() if v[-1][0] in storm.UNREADABLE)
        self.assertEqual(outcome.failures, {"UnsupportedDocument": unreadable}, o)
        # Every put was notified by S3 through the queue, plus the repeated and late events.
        puts = sum(len(v) for v in plan.versions.values())
        self.assertEqual(outcome.deliveries, puts + 2 * len(plan.duplicated) + len(plan.overwritten), o)
        # No version was paid for twice (checked per key and ETag in ``problems``); only an
        # older version that started before its successor was claimed may have paid at all.
        self.assertLessEqual(outcome.work_runs, outcome.summaries + len(plan.overwritten), o)
        self.assertEqual(sum(outcome.http.values()), len(plan.http_texts), o)
        self.assertGreater(outcome.http.get(200, 0), 0, o)
        # The HTTP requests run one at a time before any upload, so the seeded faults fall on
        # the same calls in every run: with this seed and plan, every kind among them.
        for kind in storm.FAULT_KINDS:
            self.assertGreater(outcome.http_faults[kind], 0, f"no {kind} fault: {o}")


if __name__ == "__main__":
    unittest.main(verbosity=2)
