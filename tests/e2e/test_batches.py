"""End-to-end tests of the batch workflow over the local stack: moto's Step Functions runs
``statemachines/document-batch.asl.json`` (a Distributed Map over an S3 listing or a
manifest) and every item invokes summarize-document's ``batch_item`` task, the upload
path's per-document logic. Model calls are counted in the emulator's log (one
``request received`` line per request).

Run by ``make test`` (scripts/test.sh) after the binaries are built.
"""

from __future__ import annotations

import json
import shutil
import sys
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools" / "local-stack"))

from stack import BUCKET, ROOT, LocalStack, StackOptions  # noqa: E402

RULES = Path(__file__).with_name("scripted-rules.json")
PNG = b"\x89PNG\r\n\x1a\n" + bytes(64)
PREFIX = "incoming/backlog/"
TEXTS = {f"{PREFIX}report-{i}.txt": (f"Report {i}. The northern warehouse shipped more parcels this quarter. "
                                    "On-time delivery stayed close to target despite two storms.\n") * 3
         for i in range(5)}
UNSUPPORTED = f"{PREFIX}photo.png"
#: The scripted emulator answers a prompt holding this after 15 s: a batch that stays RUNNING.
HELD = "incoming/held/slow.txt"
OTHER = {"userArn": "arn:aws:iam::123456789012:user/other", "callerId": "AIDAOTHER",
         "accountId": "123456789012", "accessKey": "AKIAOTHER", "userId": "AIDAOTHER"}


class Batches(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        # The batch's documents are put under incoming/ before the batch runs: without the
        # upload queue, which would summarize them on their puts.
        opts = StackOptions(scripted=RULES, context_window=2048, upload_queue=False,
                            log_dir=ROOT / "target" / "local-stack-batches")
        shutil.rmtree(opts.log_dir, ignore_errors=True)
        cls.stack = LocalStack(opts).start()
        # A backlog: objects stored without notifications (uploaded before the stack existed).
        s3 = cls.stack.s3()
        for key, text in TEXTS.items():
            s3.put_object(Bucket=BUCKET, Key=key, Body=text.encode())
        s3.put_object(Bucket=BUCKET, Key=UNSUPPORTED, Body=PNG)

    @classmethod
    def tearDownClass(cls):
        cls.stack.stop()

    def model_calls(self) -> int:
        return (self.stack.options.log_dir / "bedrock-local.log").read_text().count("request received")

    def run_batch(self, status: str = "SUCCEEDED", **source) -> tuple[str, dict]:
        """Runs a batch to its end: its name and its report, with its lines as ``items``."""
        arn = self.stack.start_batch(**source)
        desc = self.stack.wait_execution(arn, timeout=120)
        self.assertEqual(desc["status"], status, desc)
        name = arn.rsplit(":", 1)[-1]
        if status == "SUCCEEDED":
            output = json.loads(desc["output"])
            self.assertEqual(output["report_key"], f"reports/batches/{name}.json")
            self.assertEqual(output["items_key"], f"reports/batches/{name}.items.jsonl")
        report = self.stack.get_json(f"reports/batches/{name}.json")
        self.assertNotIn("items", report)
        return name, {**report, "items": self.items(name)}

    def items(self, name: str) -> list[dict]:
        body = self.stack.s3().get_object(Bucket=BUCKET, Key=f"reports/batches/{name}.items.jsonl")["Body"].read()
        return [json.loads(line) for line in body.decode().splitlines()]

    def get_batch_as(self, batch_id: str, identity: dict | None) -> int:
        """GET /batches/{id} as API Gateway sends it, with the authorizer's identity."""
        path = f"/batches/{batch_id}"
        context = {"http": {"method": "GET", "path": path}, "stage": "$default", "requestId": "r",
                   "accountId": "123456789012", "apiId": "local"}
        if identity:
            context["authorizer"] = {"iam": identity}
        event = {"version": "2.0", "routeKey": "GET /batches/{id}", "rawPath": path, "headers": {},
                 "requestContext": context, "pathParameters": {"id": batch_id}, "isBase64Encoded": False}
        out = self.stack.lambda_().invoke(FunctionName="jobs", Payload=json.dumps(event).encode())
        return json.loads(out["Payload"].read())["statusCode"]

    def test_1_a_prefix_batch_ends_every_document_as_a_record_and_a_rerun_pays_nothing(self):
        before = self.model_calls()
        name, report = self.run_batch(prefix=PREFIX)
        documents = sorted([*TEXTS, UNSUPPORTED])
        self.assertEqual(report["documents"], 6, report)
        self.assertEqual(report["map_items"], 6, report)
        self.assertIsNone(report["error"], report)
        self.assertEqual(report["counts"]["summarized"], 5, report)
        self.assertEqual(report["counts"]["failed"], 1, report)
        self.assertEqual(report["failures"], {"UnsupportedDocument": 1}, report)
        self.assertEqual([line["key"] for line in report["items"]], documents)
        for line in report["items"]:
            self.assertEqual(self.stack.get_json(line["output_key"])["source"]["key"], line["key"])
        for key in TEXTS:
            self.assertIn("SUMMARY", self.stack.get_json(f"summaries/{key}.json")["summary"])
        self.assertEqual(self.stack.get_json(f"failed/{UNSUPPORTED}.json")["error"]["type"], "UnsupportedDocument")
        calls = self.model_calls() - before
        self.assertEqual(report["usage"]["model_calls"], calls, report)
        self.assertGreater(report["usage"]["input_tokens"], 0, report)
        self.assertGreater(report["usage"]["output_tokens"], 0, report)
        self.assertIsNotNone(report["elapsed_ms"], report)
        self.assertEqual(report["source"], {"prefix": PREFIX})
        self.assertEqual(report["results"]["items_prefix"], f"batches/{name}/items/")
        self.assertEqual(report["results"]["items_key"], f"reports/batches/{name}.items.jsonl")
        # The Map's ResultWriter wrote its manifest under batches/<execution>/results/.
        writer = report["results"]["result_writer"]
        self.assertTrue(writer["Key"].startswith(f"batches/{name}/results/"), writer)
        self.assertTrue(writer["Key"].endswith("/manifest.json"), writer)
        self.stack.get_json(writer["Key"])

        # The same backlog again: every document is already done and no model call is made.
        before = self.model_calls()
        _, again = self.run_batch(prefix=PREFIX)
        self.assertEqual(again["counts"]["already_done"], 6, again)
        self.assertEqual(again["usage"], {"input_tokens": 0, "output_tokens": 0, "model_calls": 0, "cost_usd": 0})
        self.assertEqual(self.model_calls(), before)

    def test_2_a_manifest_batch_takes_only_the_keys_it_names(self):
        keys = sorted(TEXTS)[:2]
        extra = "incoming/manifest-only.txt"
        self.stack.s3().put_object(Bucket=BUCKET, Key=extra, Body=b"A short note about parcels and storms.\n" * 3)
        csv = "key,comment\n" + "".join(f"{k},x\n" for k in [keys[0], extra])
        self.stack.s3().put_object(Bucket=BUCKET, Key="manifests/two.csv", Body=csv.encode())
        _, report = self.run_batch(manifest="manifests/two.csv")
        self.assertEqual([line["key"] for line in report["items"]], sorted([keys[0], extra]), report)
        statuses = {line["key"]: line["status"] for line in report["items"]}
        self.assertEqual(statuses[extra], "summarized")
        self.assertIn(statuses[keys[0]], {"summarized", "already_done"})

        manifest = [{"key": keys[1]}, {"key": "incoming/no-such-document.txt"}, {"key": "summaries/x.json"}]
        self.stack.s3().put_object(Bucket=BUCKET, Key="manifests/three.json", Body=json.dumps(manifest).encode())
        _, report = self.run_batch(manifest="manifests/three.json")
        statuses = {line["key"]: line["status"] for line in report["items"]}
        self.assertEqual(statuses["incoming/no-such-document.txt"], "missing", report)
        self.assertEqual(statuses["summaries/x.json"], "ignored", report)
        self.assertEqual(report["documents"], 3, report)

    def test_2b_a_manifest_that_cannot_be_read_still_gets_a_report_that_says_why(self):
        # Started by an operator (POST /batches checks that the manifest exists); the Map's
        # ItemReader fails, its Catch writes the report with the error, the execution fails.
        name, report = self.run_batch(status="FAILED", manifest="manifests/deleted-meanwhile.csv")
        self.assertEqual(report["documents"], 0, report)
        self.assertIsNotNone(report["error"], report)
        self.assertTrue(report["error"]["type"], report)
        self.assertEqual(report["items"], [])
        desc = self.stack.sfn().describe_execution(
            executionArn=f"{self.stack.batch_state_machine_arn.replace(':stateMachine:', ':execution:')}:{name}")
        self.assertEqual(desc["error"], "BatchFailed", desc)

    def test_3_post_batches_starts_the_workflow_and_get_shows_its_report(self):
        key = sorted(TEXTS)[2]
        status, headers, body = self.stack.request("POST", "/batches", {"prefix": key},
                                                   headers={"idempotency-key": "backlog-3"})
        self.assertEqual(status, 202, body)
        self.assertEqual(headers["location"], f"/batches/{body['id']}")
        self.assertEqual(body["report_key"], f"reports/batches/{body['id']}.json")
        self.assertEqual(body["items_key"], f"reports/batches/{body['id']}.items.jsonl")
        self.assertEqual(body["results_prefix"], f"batches/{body['id']}/")
        self.assertTrue(body["execution_arn"].endswith(f":document-batch:{body['id']}"), body)
        # The same request with the same key is the same batch (while it runs, too).
        again = self.stack.request("POST", "/batches", {"prefix": key}, headers={"idempotency-key": "backlog-3"})
        self.assertEqual((again[0], again[2]["id"]), (202, body["id"]), again)
        reused = self.stack.request("POST", "/batches", {"prefix": PREFIX}, headers={"idempotency-key": "backlog-3"})
        self.assertEqual((reused[0], reused[2]["error"]["type"]), (422, "IdempotencyKeyReused"), reused)

        desc = self.stack.wait_execution(body["execution_arn"], timeout=120)
        self.assertEqual(desc["status"], "SUCCEEDED", desc)
        status, _, batch = self.stack.request("GET", body["status_url"])
        self.assertEqual((status, batch["status"]), (200, "SUCCEEDED"), batch)
        self.assertEqual(batch["report"]["documents"], 1, batch)
        self.assertNotIn("items", batch["report"])
        self.assertEqual([line["key"] for line in self.items(body["id"])], [key])
        # Only its caller reads it (the local front has no authorizer: the empty caller).
        self.assertEqual(self.get_batch_as(body["id"], None), 200)
        self.assertEqual(self.get_batch_as(body["id"], OTHER), 404)
        # Once the prefix is emptied, the same request still answers with its batch.
        self.stack.s3().delete_object(Bucket=BUCKET, Key=key)
        again = self.stack.request("POST", "/batches", {"prefix": key}, headers={"idempotency-key": "backlog-3"})
        self.assertEqual((again[0], again[2]["id"]), (202, body["id"]), again)
        self.stack.s3().put_object(Bucket=BUCKET, Key=key, Body=TEXTS[key].encode())

    def test_4_post_batches_refuses_requests_that_name_no_documents(self):
        for request, message in [({"prefix": "summaries/"}, "must start with"),
                                 ({"prefix": "incoming/nothing-here/"}, "no documents"),
                                 ({"manifest": "manifests/none.csv"}, "no manifest"),
                                 ({"manifest": "manifests/list.txt"}, ".csv"),
                                 ({"manifest": "incoming/list.csv"}, "manifests/"),
                                 ({"prefix": PREFIX, "manifest": "manifests/two.csv"}, "either"),
                                 ({"prefix": "incoming/" + "a" * 1016}, "1024 bytes"),
                                 ({"manifest": "manifests/a\u0007.csv"}, "control character"),
                                 ({"bucket": "elsewhere"}, "unknown field")]:
            status, _, body = self.stack.request("POST", "/batches", request)
            self.assertEqual((status, body["error"]["type"]), (400, "InvalidInput"), (request, body))
            self.assertIn(message, body["error"]["message"], request)
        status, _, body = self.stack.request("GET", "/batches/" + "0" * 32)
        self.assertEqual((status, body["error"]["type"]), (404, "JobNotFound"), body)
        status, _, body = self.stack.request("GET", "/batches/not-a-batch")
        self.assertEqual((status, body["error"]["type"]), (400, "InvalidInput"), body)

    def test_5_post_batches_refuses_a_batch_while_another_runs(self):
        self.stack.s3().put_object(Bucket=BUCKET, Key=HELD, Body=b"HOLD-UNTIL-STOPPED. A slow document.\n")
        # An operator's start-execution is not checked: it runs, held by its model call.
        held = self.stack.start_batch(prefix="incoming/held/")
        self.assertEqual(self.stack.sfn().describe_execution(executionArn=held)["status"], "RUNNING")
        try:
            status, _, body = self.stack.request("POST", "/batches", {"prefix": PREFIX},
                                                 headers={"idempotency-key": "while-held"})
            self.assertEqual((status, body["error"]["type"]), (409, "BatchRunning"), body)
            self.assertIn("another batch is running", body["error"]["message"])
            # Refused before its execution was started: nothing to find under that key.
            self.assertEqual(self.stack.sfn().describe_execution(executionArn=held)["status"], "RUNNING")
        finally:
            self.stack.sfn().stop_execution(executionArn=held)
        self.assertNotEqual(self.stack.wait_execution(held, timeout=60)["status"], "RUNNING")
        status, _, body = self.stack.request("POST", "/batches", {"prefix": PREFIX},
                                             headers={"idempotency-key": "while-held"})
        self.assertEqual(status, 202, body)
        self.assertEqual(self.stack.wait_execution(body["execution_arn"], timeout=120)["status"], "SUCCEEDED")


if __name__ == "__main__":
    unittest.main()
