"""Versions through the document workflow on a versioned bucket (moto executes the ASL):
an execution reads the version its EventBridge event names, not whatever is current, and
an older version's execution that finishes last does not replace the newer result.
"""

from __future__ import annotations

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
            # The older version's event again, late: its result never replaces the newer one.
            self.assertEqual(run(older)["etag"], newer["detail"]["object"]["etag"])
            self.assertEqual(stack.keys("failed/"), [])


if __name__ == "__main__":
    unittest.main(verbosity=2)
