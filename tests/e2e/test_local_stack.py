"""End-to-end tests over the local stack: the SAM functions, the workflow ASL executed by
moto's Step Functions, lambda-local, and the Bedrock emulator (scripted test double, so
answers are exact; with injected faults for the throttling storm).

Run by ``make test`` (scripts/test.sh) after the binaries are built.
"""

from __future__ import annotations

import json
import re
import sys
import time
import unittest
import urllib.parse
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools" / "local-stack"))

from stack import BUCKET, ROOT, LocalStack, StackOptions  # noqa: E402

RULES = Path(__file__).with_name("scripted-rules.json")
SAMPLES = ROOT / "shared" / "tokens" / "tests" / "data" / "languages"
WINDOW = 2048
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01"


def options(**extra) -> StackOptions:
    # These tests deliver S3's notifications themselves (duplicates included): no queue.
    # The queue's path is tested by test_flow_control.
    return StackOptions(scripted=RULES, context_window=WINDOW, upload_queue=False, **extra)


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


class WorkflowStateKeysAndLimits(unittest.TestCase):
    """The workflow keeps only references in its state, finds keys in either form, names
    long keys shortly for classify, refuses translations over Translate's cap up front, and
    fails with the original error when even its failure record cannot be written."""

    @classmethod
    def setUpClass(cls):
        cls.stack = LocalStack(options()).start()

    @classmethod
    def tearDownClass(cls):
        cls.stack.stop()

    def history(self, arn: str) -> list[dict]:
        return self.stack.sfn().get_execution_history(executionArn=arn, maxResults=1000)["events"]

    def start(self, execution_input: dict) -> dict:
        name = f"direct-{time.time_ns() % 10**12}"
        arn = self.stack.sfn().start_execution(stateMachineArn=self.stack.state_machine_arn, name=name,
                                               input=json.dumps(execution_input))["executionArn"]
        return self.stack.wait_execution(arn, timeout=300)

    def test_state_holds_references_not_summaries(self):
        long_text = "\n\n".join(f"## Part {i}\n\n" + (SAMPLES / "en.txt").read_text() for i in range(12))
        key = "workflow/state-check.md"
        arn = self.stack.upload_for_workflow(key, long_text.encode())
        desc = self.stack.wait_execution(arn, timeout=300)
        self.assertEqual(desc["status"], "SUCCEEDED", desc)
        record = self.stack.get_json(f"results/{key}.json")
        self.assertGreater(record["parts"], 1, record)
        self.assertEqual(record["usage"]["parts"]["model_calls"], record["parts"], record)
        parts = self.stack.keys(f"work/{desc['name']}/parts/")
        self.assertEqual(len(parts), record["parts"], parts)
        largest = 0
        for event in self.history(arn):
            for details in event.values():
                if isinstance(details, dict):
                    for field in ("input", "output"):
                        data = details.get(field)
                        if isinstance(data, str):
                            largest = max(largest, len(data))
                            self.assertNotIn("Summary of one part", data, event)
        self.assertLess(largest, 16 * 1024)

    def test_keys_with_spaces_plus_percent_and_non_ascii(self):
        body = (SAMPLES / "en.txt").read_bytes()
        key = "workflow/Q3 r\u00e9sum\u00e9 + 50% off.txt"
        # EventBridge gives the key as it is.
        desc, where = self.run_key(key, body)
        self.assertEqual(desc["status"], "SUCCEEDED", desc)
        self.assertEqual(where, f"results/{key}.json")
        self.assertEqual(self.stack.get_json(where)["source"]["key"], key)
        # A form-encoded key (as in an S3 notification) is found decoded.
        other = "workflow/\u00fcber uns + 100%.txt"
        self.stack.s3().put_object(Bucket=BUCKET, Key=other, Body=body)
        encoded = urllib.parse.quote_plus(other, safe="/")
        self.assertNotEqual(encoded, other)
        desc = self.start({"key": encoded})
        self.assertEqual(desc["status"], "SUCCEEDED", desc)
        self.assertEqual(self.stack.get_json(f"results/{other}.json")["source"]["key"], other)

    def run_key(self, key: str, body: bytes) -> tuple[dict, str]:
        arn = self.stack.upload_for_workflow(key, body)
        desc = self.stack.wait_execution(arn, timeout=300)
        where = self.stack.wait_object([f"results/{key}.json", f"failed/{key}.json"], timeout=30)
        return desc, where

    def test_a_thousand_byte_key_is_classified(self):
        last = "r\u00e9sum\u00e9-" * 30 + ".txt"
        key = "workflow/" + "d" * (1000 - len("workflow/") - len(last.encode()) - 1) + "/" + last
        self.assertEqual(len(key.encode()), 1000)
        desc, where = self.run_key(key, (SAMPLES / "en.txt").read_bytes())
        self.assertEqual(desc["status"], "SUCCEEDED", desc)
        self.assertEqual(self.stack.get_json(where)["classification"]["category"], "billing")

    def test_translation_over_the_cap_fails_in_prepare(self):
        german = (SAMPLES / "de.txt").read_text()
        text = "\n\n".join([german] * (210_000 // len(german.encode()) + 1))
        desc, where = self.run_key("workflow/lang-de.txt", text.encode())
        self.assertEqual(desc["status"], "FAILED", desc)
        error = self.stack.get_json(where)["error"]
        self.assertEqual(error["type"], "InputTooLarge", error)
        self.assertIn("TranslateMaxTextBytes", error["message"])
        entered = {e["stateEnteredEventDetails"]["name"] for e in self.history(desc["executionArn"])
                   if "stateEnteredEventDetails" in e}
        self.assertNotIn("Translate", entered)

    def test_when_the_failure_record_cannot_be_written_the_original_error_remains(self):
        desc = self.start({"bucket": "no-such-bucket", "key": "workflow/x.txt"})
        self.assertEqual(desc["status"], "FAILED", desc)
        self.assertEqual(desc.get("error"), "DocumentNotFound", desc)
        entered = [e["stateEnteredEventDetails"]["name"] for e in self.history(desc["executionArn"])
                   if "stateEnteredEventDetails" in e]
        self.assertEqual(entered[-2:], ["RecordFailure", "WorkflowFailed"], entered)

    def test_an_aborted_execution_gets_its_failure_record_from_the_status_event(self):
        key = "workflow/aborted.md"
        # The model takes 15 s to answer this document (a scripted delay), so the execution
        # is still running when it is stopped; moto applies the stop when the task returns.
        text = "HOLD-UNTIL-STOPPED\n\n" + (SAMPLES / "en.txt").read_text()
        arn = self.stack.upload_for_workflow(key, text.encode())
        # Stopped while the held model call is open, a point that does not depend on timing.
        self.stack.wait_model_calls_open(1, timeout=120)
        self.stack.sfn().stop_execution(executionArn=arn)
        desc = self.stack.wait_execution(arn, timeout=300)
        # AWS ends a stopped execution ABORTED. moto 5.2.5 does when the stop finds it in a
        # Task state, but a stop inside a Map iteration (here: the parts' Map) breaks its
        # interpreter and the execution ends FAILED with States.Runtime; either way it ended
        # without the workflow's own failure record, and EventBridge would say ABORTED.
        self.assertIn(desc["status"], ("ABORTED", "FAILED"), desc)
        self.assertEqual(self.stack.keys(f"failed/{key}"), [], "the workflow recorded nothing itself")
        # What EventBridge sends on the rule DocumentWorkflowUnfinishedRule (played here).
        event = {"version": "0", "id": "local", "detail-type": "Step Functions Execution Status Change",
                 "source": "aws.states", "account": "123456789012", "time": "2026-11-30T00:00:00Z",
                 "region": "us-east-1", "resources": [arn],
                 "detail": {"executionArn": arn, "stateMachineArn": desc["stateMachineArn"],
                            "name": desc["name"], "status": "ABORTED",
                            "startDate": int(desc["startDate"].timestamp() * 1000),
                            "stopDate": int(desc["stopDate"].timestamp() * 1000),
                            "input": desc["input"], "output": None, "error": None, "cause": None}}
        resp = self.stack.lambda_().invoke(FunctionName="summarize-document", Payload=json.dumps(event).encode())
        out = json.loads(resp["Payload"].read())
        self.assertNotIn("FunctionError", resp, out)
        self.assertEqual(out["status"], "recorded", out)
        record = self.stack.get_json(f"failed/{key}.json")
        self.assertEqual(record["error"]["type"], "ExecutionAborted", record)
        self.assertEqual(record["execution"], arn)


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
