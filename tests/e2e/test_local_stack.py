"""End-to-end tests over the local stack: the SAM functions, the workflow ASL executed by
moto's Step Functions, lambda-local, and the Bedrock emulator (scripted test double, so
answers are exact; with injected faults for the throttling storm).

Run by ``make test`` (scripts/test.sh) after the binaries are built.
"""

from __future__ import annotations

import json
import re
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools" / "local-stack"))

from stack import ROOT, LocalStack, StackOptions  # noqa: E402

RULES = Path(__file__).with_name("scripted-rules.json")
SAMPLES = ROOT / "shared" / "tokens" / "tests" / "data" / "languages"
WINDOW = 2048
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01"


def options(**extra) -> StackOptions:
    return StackOptions(scripted=RULES, context_window=WINDOW, **extra)


class WorkflowAndUploads(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stack = LocalStack(options()).start()

    @classmethod
    def tearDownClass(cls):
        cls.stack.stop()

    def run_workflow(self, key: str, body: bytes) -> tuple[dict, str]:
        arn = self.stack.upload_for_workflow(key, body)
        desc = self.stack.wait_execution(arn, timeout=300)
        where = self.stack.wait_object([f"results/{key}.json", f"failed/{key}.json"], timeout=30)
        return desc, where

    def test_workflow_english_document(self):
        desc, where = self.run_workflow("workflow/en-report.txt", (SAMPLES / "en.txt").read_bytes())
        self.assertEqual(desc["status"], "SUCCEEDED", desc)
        self.assertEqual(where, "results/workflow/en-report.txt.json")
        record = self.stack.get_json(where)
        text = json.dumps(record)
        self.assertIn("SUMMARY", text)
        self.assertIn('"billing"', text)
        self.assertEqual(record.get("language"), "en", record)

    def test_workflow_non_english_document_is_translated_first(self):
        desc, where = self.run_workflow("workflow/de-protokoll.txt", (SAMPLES / "de.txt").read_bytes())
        self.assertEqual(desc["status"], "SUCCEEDED", desc)
        record = self.stack.get_json(where)
        self.assertEqual(record.get("language"), "de", record)
        self.assertTrue(record.get("translated"), record)
        history = self.stack.sfn().get_execution_history(executionArn=desc["executionArn"], maxResults=1000)
        entered = [e["stateEnteredEventDetails"]["name"] for e in history["events"] if "stateEnteredEventDetails" in e]
        self.assertIn("Translate", entered)

    def test_long_document_goes_through_the_map_state(self):
        long_text = "\n\n".join(f"## Part {i}\n\n" + (SAMPLES / "en.txt").read_text() for i in range(12))
        desc, where = self.run_workflow("workflow/long.md", long_text.encode())
        self.assertEqual(desc["status"], "SUCCEEDED", desc)
        self.assertIn("SUMMARY combined", json.dumps(self.stack.get_json(where)))

    def test_unsupported_file_ends_as_a_failure_record(self):
        desc, where = self.run_workflow("workflow/photo.png", PNG)
        self.assertEqual(where, "failed/workflow/photo.png.json")
        self.assertEqual(self.stack.get_json(where)["error"]["type"], "UnsupportedDocument")
        self.stack.upload_for_summary("incoming/photo.png", PNG)
        where = self.stack.wait_object(["summaries/incoming/photo.png.json", "failed/incoming/photo.png.json"])
        self.assertEqual(where, "failed/incoming/photo.png.json")

    def test_duplicate_upload_is_not_processed_twice(self):
        event = self.stack.upload_for_summary("incoming/dup.txt", (SAMPLES / "it.txt").read_bytes())
        self.stack.wait_object(["summaries/incoming/dup.txt.json"])
        first = self.stack.get_json("summaries/incoming/dup.txt.json")
        # S3 delivers at least once: the same notification again.
        resp = self.stack.lambda_().invoke(FunctionName="summarize-document", Payload=json.dumps(event).encode())
        out = json.loads(resp["Payload"].read())
        self.assertNotIn("FunctionError", resp)
        self.assertEqual(out["records"][0]["status"], "already_done", out)
        self.assertEqual(self.stack.get_json("summaries/incoming/dup.txt.json"), first)

    def test_http_api(self):
        status, body = self.stack.http("POST /tickets/classify", {"subject": "Charged twice", "body": "Refund please."})
        self.assertEqual(status, 200, body)
        self.assertEqual(body["category"], "billing")
        status, body = self.stack.http("POST /translations", {"text": "Hallo Welt, wie geht es dir heute?",
                                                              "target_language": "ja"})
        self.assertEqual(status, 400, body)
        self.assertIn("th (Thai)", body["error"]["message"])
        status, body = self.stack.http("POST /summaries", {"text": (SAMPLES / "pt.txt").read_text()})
        self.assertEqual(status, 200, body)
        self.assertEqual(body["language"], "pt")


class ThrottlingStorm(unittest.TestCase):
    """Half of all model calls are throttled; every document still finishes, and
    documents in equal results plus failure records."""

    def test_every_document_finishes(self):
        opts = options(emulator_args=["--throttle-rate", "0.5", "--fault-seed", "11"],
                       function_env={"BEDROCK_MAX_ATTEMPTS": "2", "BEDROCK_RETRY_BASE_MS": "50"})
        with LocalStack(opts) as stack:
            workflow = {f"workflow/storm-{lang}.txt": (SAMPLES / f"{lang}.txt").read_bytes()
                        for lang in ("en", "es", "fr")}
            workflow["workflow/storm.png"] = PNG
            uploads = {f"incoming/storm-{lang}.txt": (SAMPLES / f"{lang}.txt").read_bytes() for lang in ("en", "pt")}
            arns = [stack.upload_for_workflow(k, v) for k, v in workflow.items()]
            for key, body in uploads.items():
                stack.upload_for_summary(key, body)
            for arn in arns:
                stack.wait_execution(arn, timeout=600)
            for key in uploads:
                stack.wait_object([f"summaries/{key}.json", f"failed/{key}.json"], timeout=300)
            results = stack.keys("results/") + stack.keys("summaries/")
            failures = stack.keys("failed/")
            self.assertEqual(len(results) + len(failures), len(workflow) + len(uploads), (results, failures))
            self.assertEqual(failures, ["failed/workflow/storm.png.json"], "only the unsupported file fails")
            log = (opts.log_dir / "lambda-local.log").read_text()
            throttles = [int(n) for n in re.findall(r'"Throttles":(\d+)', log)]
            self.assertGreater(sum(throttles), 0, "the storm must have throttled calls")


if __name__ == "__main__":
    unittest.main(verbosity=2)
