"""End-to-end tests of asynchronous jobs over the local stack: `Prefer: respond-async` on
the task routes and `POST /jobs` answer 202 with `Location: /jobs/{id}`; the same function,
invoked asynchronously by lambda-local, runs the job; `GET /jobs/{id}` shows the result
(the same record the synchronous route returns, the scripted emulator makes it exact) or
the typed error; an `Idempotency-Key` returns the same job and runs the model once.

Run by ``make test`` (scripts/test.sh) after the binaries are built.
"""

from __future__ import annotations

import json
import re
import sys
import time
import unittest
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools" / "local-stack"))

from stack import LocalStack, StackOptions  # noqa: E402

RULES = Path(__file__).with_name("scripted-rules.json")
DOCUMENT = {"text": "The quarterly report covers revenue, costs and hiring plans. " * 20}
TICKET = {"subject": "Charged twice", "body": "My card was charged twice for one invoice."}
ASYNC = {"prefer": "respond-async"}
JOB_ID = re.compile(r"^[0-9a-f]{32}$")


def without_times(value):
    """`value` without its measured durations (`*_ms`), which differ from run to run."""
    if isinstance(value, dict):
        return {k: without_times(v) for k, v in value.items() if not k.endswith("_ms")}
    if isinstance(value, list):
        return [without_times(v) for v in value]
    return value


class Jobs(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.stack = LocalStack(StackOptions(scripted=RULES, context_window=2048)).start()

    @classmethod
    def tearDownClass(cls):
        cls.stack.stop()

    def submit(self, method: str, path: str, body: dict, headers: dict | None = None) -> dict:
        status, response_headers, answer = self.stack.request(method, path, body, headers)
        self.assertEqual(status, 202, answer)
        self.assertRegex(answer["id"], JOB_ID)
        self.assertEqual(response_headers["location"], f"/jobs/{answer['id']}")
        self.assertEqual(response_headers["preference-applied"], "respond-async")
        self.assertIn(answer["status"], ("queued", "running", "succeeded"))
        return answer

    def wait(self, job_id: str, timeout: float = 300) -> dict:
        """Polls GET /jobs/{id} until the job is finished (the bound is a guard only)."""
        end = time.monotonic() + timeout
        while True:
            status, _, job = self.stack.request("GET", f"/jobs/{job_id}")
            self.assertEqual(status, 200, job)
            if job["status"] in ("succeeded", "failed") or time.monotonic() > end:
                return job
            time.sleep(0.2)

    def log_lines(self, *parts: str) -> int:
        """Lines of the functions' logs (lambda-local's log) that contain every part."""
        log = self.stack.options.log_dir / "lambda-local.log"
        return sum(all(p in line for p in parts) for line in log.read_text(errors="replace").splitlines())

    def test_prefer_respond_async_gives_the_sync_routes_record(self):
        status, sync = self.stack.http("POST /summaries", DOCUMENT)
        self.assertEqual(status, 200, sync)
        accepted = self.submit("POST", "/summaries", DOCUMENT, ASYNC)
        job = self.wait(accepted["id"])
        self.assertEqual(job["status"], "succeeded", job)
        self.assertEqual(job["route"], "POST /summaries")
        self.assertEqual(job["result"]["summary"], sync["summary"])
        self.assertEqual(job["result"]["usage"], sync["usage"])
        self.assertEqual(job["usage"], sync["usage"])
        for field in ("created_at", "started_at", "finished_at"):
            self.assertRegex(job[field], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,9})?Z$")
        self.assertEqual(set(job["timings"]), {"queued_ms", "run_ms"})

    def test_post_jobs_runs_each_task_like_its_route(self):
        for task, route, body in [
            ("summarize", "POST /summaries", DOCUMENT),
            ("classify", "POST /tickets/classify", TICKET),
        ]:
            with self.subTest(task=task):
                status, sync = self.stack.http(route, body)
                self.assertEqual(status, 200, sync)
                accepted = self.submit("POST", "/jobs", {"task": task, **body})
                job = self.wait(accepted["id"])
                self.assertEqual(job["status"], "succeeded", job)
                self.assertEqual(job["route"], route)
                self.assertEqual(without_times(job["result"]), without_times(sync))

    def test_a_failing_job_ends_failed_with_the_typed_error(self):
        # Valid input; the model refuses it while the job runs (a scripted rule).
        accepted = self.submit("POST", "/jobs", {"task": "classify", "subject": "FAIL-THIS-JOB"})
        job = self.wait(accepted["id"])
        self.assertEqual(job["status"], "failed", job)
        self.assertEqual(job["error"]["type"], "ModelAccessDenied")
        self.assertNotIn("arn:", job["error"]["message"])
        self.assertNotIn("result", job)
        # What the run spent before it failed: the refused attempt, nothing billed.
        self.assertEqual(job["usage"]["model_calls"], 0, job)
        self.assertGreaterEqual(job["usage"]["attempts"], 1, job)
        self.assertEqual(job["usage"]["cost_usd"], 0.0, job)

    def test_the_same_idempotency_key_is_one_job_and_one_run(self):
        key = {"idempotency-key": f"key-{uuid.uuid4()}"}
        ticket = {"subject": "Refund please", "body": f"Order {uuid.uuid4()} arrived broken."}
        first = self.submit("POST", "/jobs", {"task": "classify", **ticket}, key)
        job = self.wait(first["id"])
        self.assertEqual(job["status"], "succeeded", job)
        # Again, on the route itself this time, with the keys of the body in another order:
        # the same request, so the same job, already finished, and no second run.
        again = self.submit("POST", "/tickets/classify", dict(reversed(ticket.items())), {**key, **ASYNC})
        self.assertEqual(again["id"], first["id"])
        self.assertEqual(again["status"], "succeeded")
        self.assertEqual(self.log_lines(first["id"], "job running"), 1, "the job ran once")
        self.assertEqual(job["usage"]["model_calls"], 1)
        # The same key with another body is refused.
        status, _, answer = self.stack.request("POST", "/jobs", {"task": "classify", "subject": "other"}, key)
        self.assertEqual(status, 422, answer)
        self.assertEqual(answer["error"]["type"], "IdempotencyKeyReused")

    def test_only_the_caller_who_submitted_a_job_can_read_it(self):
        accepted = self.submit("POST", "/jobs", {"task": "classify", "subject": "Whose job is it?"})
        self.wait(accepted["id"])

        def get_as(identity: dict | None) -> int:
            """GET /jobs/{id} as API Gateway sends it, with the authorizer's identity."""
            context = {"http": {"method": "GET", "path": f"/jobs/{accepted['id']}"}, "stage": "$default",
                       "requestId": "r", "accountId": "123456789012", "apiId": "local"}
            if identity:
                context["authorizer"] = {"iam": identity}
            event = {"version": "2.0", "routeKey": "GET /jobs/{id}", "rawPath": f"/jobs/{accepted['id']}",
                     "headers": {}, "requestContext": context, "pathParameters": {"id": accepted["id"]},
                     "isBase64Encoded": False}
            out = self.stack.lambda_().invoke(FunctionName="jobs", Payload=json.dumps(event).encode())
            return json.loads(out["Payload"].read())["statusCode"]

        # Submitted without an authorizer (the local front): another caller cannot see it.
        self.assertEqual(get_as(None), 200)
        other = {"userArn": "arn:aws:iam::123456789012:user/other", "callerId": "AIDAOTHER",
                 "accountId": "123456789012", "accessKey": "AKIAOTHER", "userId": "AIDAOTHER"}
        self.assertEqual(get_as(other), 404)

    def test_bad_input_gets_a_4xx_with_the_error_shape(self):
        cases = [
            ("POST", "/jobs", {"task": "paint"}, {}, 400, "InvalidInput"),
            ("POST", "/jobs", {"text": "no task"}, {}, 400, "InvalidInput"),
            ("POST", "/jobs", {"task": "classify", "subject": "s"}, {"idempotency-key": "has space"}, 400,
             "InvalidInput"),
            ("POST", "/summaries", {"text": "t"}, {**ASYNC, "content-type": "text/plain"}, 415,
             "UnsupportedMediaType"),
            # Input the task would refuse is refused at once, not turned into a failed job.
            ("POST", "/jobs", {"task": "summarize", "txt": "typo"}, {}, 400, "InvalidInput"),
            ("POST", "/jobs", {"task": "translate", "text": "Hallo Welt", "target_language": "ja"}, {}, 400,
             "InvalidInput"),
            ("POST", "/summaries", {"text": "t", "length": "huge"}, ASYNC, 400, "InvalidInput"),
            ("GET", "/jobs/not-a-job", None, {}, 400, "InvalidInput"),
            ("GET", f"/jobs/{uuid.uuid4().hex}", None, {}, 404, "JobNotFound"),
        ]
        for method, path, body, headers, want, kind in cases:
            with self.subTest(method=method, path=path, body=body):
                status, _, answer = self.stack.request(method, path, body, headers)
                self.assertEqual(status, want, answer)
                self.assertEqual(set(answer), {"error"})
                self.assertEqual(set(answer["error"]), {"type", "message"})
                self.assertEqual(answer["error"]["type"], kind)
                self.assertNotIn("arn:", answer["error"]["message"])


if __name__ == "__main__":
    unittest.main()
