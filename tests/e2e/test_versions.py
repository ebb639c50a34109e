"""Versions through the document workflow on a versioned bucket (moto executes the ASL):
an execution reads the version its EventBridge event names, not whatever is current, a
late event of an older version ends at once and leaves the newer result, and a duplicate
event for a version that is done or being done makes no model call.
"""

from __future__ import annotations

import json
import shutil
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools" / "local-stack"))

from stack import ROOT, LocalStack, StackOptions  # noqa: E402

RULES = Path(__file__).with_name("scripted-rules.json")
SAMPLES = ROOT / "shared" / "tokens" / "tests" / "data" / "languages"


class VersionedWorkflow(unittest.TestCase):
    def test_each_execution_reads_its_version_and_the_newest_result_stays(self):
        opts = StackOptions(scripted=RULES, context_window=2048, versioned=True,
                            log_dir=ROOT / "target" / "local-stack-versions")
        shutil.rmtree(opts.log_dir, ignore_errors=True)
        key = "workflow/versions/report.txt"
        english = (SAMPLES / "en.txt").read_text()
        with LocalStack(opts) as stack:
            older = stack.put_for_workflow(key, english[: len(english) // 2].encode())
            newer = stack.put_for_workflow(key, english.encode())
            self.assertIn("version-id", older["detail"]["object"])

            def run(event: dict) -> dict:
                desc = stack.wait_execution(stack.start_workflow(event), timeout=300)
                self.assertEqual(desc["status"], "SUCCEEDED", desc)
                return stack.get_json(f"results/{key}.json")["source"]

            source = run(older)
            self.assertEqual(source["etag"], older["detail"]["object"]["etag"], "read the named version")
            self.assertEqual(source["version_id"], older["detail"]["object"]["version-id"])
            self.assertEqual(run(newer)["etag"], newer["detail"]["object"]["etag"])
            # The older version's event again, late: superseded at once, so its result never
            # replaces the newer one.
            desc = stack.wait_execution(stack.start_workflow(older), timeout=300)
            self.assertEqual(json.loads(desc["output"])["outcome"], "superseded", desc)
            self.assertEqual(stack.get_json(f"results/{key}.json")["source"]["etag"],
                             newer["detail"]["object"]["etag"])
            self.assertEqual(stack.keys("failed/"), [])

    def test_a_duplicate_event_of_a_version_makes_no_model_call(self):
        opts = StackOptions(scripted=RULES, context_window=2048, versioned=True,
                            log_dir=ROOT / "target" / "local-stack-duplicates")
        shutil.rmtree(opts.log_dir, ignore_errors=True)
        key = "workflow/versions/duplicate.txt"
        # The scripted model holds the call of the part with this marker for 15 s, so the
        # duplicate starts while the first execution is surely running.
        body = "HOLD-UNTIL-STOPPED\n\n" + (SAMPLES / "en.txt").read_text()
        with LocalStack(opts) as stack:
            event = stack.put_for_workflow(key, body.encode())

            def finished(arn: str) -> dict:
                desc = stack.wait_execution(arn, timeout=300)
                self.assertEqual(desc["status"], "SUCCEEDED", desc)
                return json.loads(desc["output"])

            first = stack.start_workflow(event)
            stack.wait_model_calls_open(1)
            # The same event again while the first execution holds the key's claim.
            self.assertEqual(finished(stack.start_workflow(event))["outcome"], "in_progress")
            self.assertEqual(finished(first)["result_key"], f"results/{key}.json")
            # And once more after it finished: the result is found.
            late = finished(stack.start_workflow(event))
            self.assertEqual((late["outcome"], late["record_key"]), ("already_done", f"results/{key}.json"))

            result = stack.get_json(f"results/{key}.json")
            one_run = (result["usage"]["parts"]["model_calls"] + result["usage"]["combine"]["model_calls"]
                       + result["classification"]["usage"]["model_calls"])
            self.assertGreater(one_run, 0)
            self.assertEqual(stack.emulator_stats()["requests"], one_run, "the duplicates made no model call")
            self.assertEqual(stack.keys("claims/"), [], "the claim is released")
            self.assertEqual(stack.keys("failed/"), [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
