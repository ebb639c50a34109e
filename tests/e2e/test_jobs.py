"""End-to-end tests of asynchronous jobs over the local stack: `Prefer: respond-async` on
the task routes and `POST /jobs` answer 202 with `Location: /jobs/{id}`; the same function,
invoked asynchronously by lambda-local, runs the job; `GET /jobs/{id}` shows the result
(the same record the synchronous route returns, the scripted emulator makes it exact) or
the typed error; an `Idempotency-Key` returns the same job and runs the model once, also
when its requests come at once; a second worker for a job does nothing; inputs and results
over 300 KB go to S3. Model calls are counted by the emulator itself (``/_local/stats``).

Run by ``make test`` (scripts/test.sh) after the binaries are built.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import time
import unittest
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import boto3

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools" / "local-stack"))

from stack import REGION, ROOT, LocalStack, StackOptions  # noqa: E402

RULES = Path(__file__).with_name("scripted-rules.json")
EVENTS = ROOT / "events"
DOCUMENT = {"text": "The quarterly report covers revenue, costs and hiring plans. " * 20}
TICKET = {"subject": "Charged twice", "body": "My card was charged twice for one invoice."}
TRANSLATION = {"text": "Hallo Welt, wie geht es dir heute? Das Wetter ist schön, wir gehen im Park spazieren.",
               "target_language": "en"}
#: lambda_kit::jobs' INLINE_LIMIT: a job's input or result larger than this (as JSON) goes to
#: S3 under jobs/<id>/.
OFFLOAD_BYTES = 300 * 1024
#: What ends a worker invocation, in the functions' logs: it ran the job, or left it alone.
WORKER_ENDS = ("job finished", "job already taken", "another invocation took the job")
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
        # The scripted emulator answers a translation with its text (no rule matches), so a
        # translation over OFFLOAD_BYTES needs a text over translate's default limits.
        limits = {"TRANSLATE_MAX_TEXT_BYTES": str(512 * 1024), "TRANSLATE_MAX_BODY_BYTES": str(1024 * 1024)}
        cls.stack = LocalStack(StackOptions(scripted=RULES, context_window=2048, function_env=limits)).start()
        cls.dynamodb = boto3.client("dynamodb", endpoint_url=cls.stack.aws_endpoint, region_name=REGION,
                                    aws_access_key_id="local", aws_secret_access_key="local")

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

    def wait(self, job_id: str, timeout: float = 300, status_event: dict | None = None) -> dict:
        """Polls GET /jobs/{id} (through the HTTP front, or by invoking the jobs function with
        `status_event`) until the job is finished (the bound is a guard only)."""
        end = time.monotonic() + timeout
        while True:
            if status_event is None:
                status, _, job = self.stack.request("GET", f"/jobs/{job_id}")
            else:
                response = self.invoke("jobs", status_event)
                status, job = response["statusCode"], json.loads(response["body"])
            self.assertEqual(status, 200, job)
            if job["status"] in ("succeeded", "failed") or time.monotonic() > end:
                return job
            time.sleep(0.2)

    def invoke(self, function: str, event: dict) -> dict:
        """Invokes `function` synchronously through lambda-local's Invoke API; its answer."""
        out = self.stack.lambda_().invoke(FunctionName=function, Payload=json.dumps(event).encode())
        answer = json.loads(out["Payload"].read())
        self.assertNotIn("FunctionError", out, answer)
        return answer

    def model_calls_seen(self) -> int:
        """Model calls the emulator has received since the stack started."""
        return self.stack.emulator_stats()["requests"]

    def item(self, job_id: str) -> dict:
        """The job's DynamoDB item, as stored."""
        return self.dynamodb.get_item(TableName="jobs", Key={"id": {"S": job_id}}, ConsistentRead=True)["Item"]

    def record(self, job_id: str) -> dict:
        return json.loads(self.item(job_id)["record"]["S"])

    def workers_started(self, job_id: str) -> int:
        """Worker invocations started for the job: one when it was created, and one more for
        every submission of its Idempotency-Key that found it still queued."""
        return self.log_lines(job_id, "job queued") + self.log_lines(
            job_id, "job found by its idempotency key", '"status":"queued"')

    def wait_workers(self, job_id: str, count: int, timeout: float = 120) -> None:
        """Waits until `count` worker invocations of the job have ended (a guard bounds it)."""
        end = time.monotonic() + timeout
        while sum(self.log_lines(job_id, line) for line in WORKER_ENDS) < count:
            if time.monotonic() > end:
                self.fail(f"fewer than {count} workers of job {job_id} ended after {timeout} s")
            time.sleep(0.1)

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
        before = self.model_calls_seen()
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
        self.wait_workers(first["id"], self.workers_started(first["id"]))
        self.assertEqual(self.model_calls_seen() - before, 1, "the emulator saw one model call")

    def test_the_same_idempotency_key_sent_at_once_is_one_job_and_one_run(self):
        key = {"idempotency-key": f"key-{uuid.uuid4()}"}
        ticket = {"subject": "Refund please", "body": f"Order {uuid.uuid4()} arrived broken."}
        submissions = [("/jobs", {"task": "classify", **ticket}, key),
                       ("/tickets/classify", ticket, {**key, **ASYNC})] * 3
        start = threading.Barrier(len(submissions))

        def send(submission: tuple) -> tuple:
            path, body, headers = submission
            start.wait(timeout=60)
            return self.stack.request("POST", path, body, headers)

        before = self.model_calls_seen()
        with ThreadPoolExecutor(len(submissions)) as pool:
            answers = list(pool.map(send, submissions))
        for status, _, answer in answers:
            self.assertEqual(status, 202, answer)
        ids = {answer["id"] for _, _, answer in answers}
        self.assertEqual(len(ids), 1, answers)
        job_id = ids.pop()
        job = self.wait(job_id)
        self.assertEqual(job["status"], "succeeded", job)
        # Submissions that found the job still queued started a worker again; all of them end
        # before the count.
        self.wait_workers(job_id, self.workers_started(job_id))
        self.assertEqual(self.log_lines(job_id, "job queued"), 1, "the job was created once")
        self.assertEqual(self.log_lines(job_id, "job running"), 1, "the job ran once")
        self.assertEqual(job["usage"]["model_calls"], 1)
        self.assertEqual(self.model_calls_seen() - before, 1, "the emulator saw one model call")

    def test_a_second_worker_for_a_finished_job_changes_nothing(self):
        ticket = {"subject": "Refund please", "body": f"Order {uuid.uuid4()} arrived broken."}
        job_id = self.submit("POST", "/jobs", {"task": "classify", **ticket})["id"]
        job = self.wait(job_id)
        self.assertEqual(job["status"], "succeeded", job)
        self.wait_workers(job_id, 1)
        item, before = self.item(job_id), self.model_calls_seen()
        # The payload the function sends itself to start the worker.
        self.assertEqual(self.invoke("classify-ticket", {"job": {"id": job_id}}),
                         {"job": {"id": job_id, "status": "succeeded"}})
        self.assertEqual(self.model_calls_seen(), before, "the second worker called the model")
        self.assertEqual(self.item(job_id), item)
        self.assertEqual(self.wait(job_id), job)
        self.assertEqual(self.log_lines(job_id, "job running"), 1)

    def test_a_worker_leaves_a_job_another_invocation_runs_alone(self):
        # A job another invocation runs, as that invocation's start writes it: running, with
        # its request id (a finished classification's record, put back). Holding a real run
        # there would take the scripted HOLD-UNTIL-STOPPED rule's 15 s.
        ticket = {"subject": "Refund please", "body": f"Order {uuid.uuid4()} arrived broken."}
        finished = self.record(self.wait(self.submit("POST", "/jobs", {"task": "classify", **ticket})["id"])["id"])
        self.assertEqual(finished["status"], "succeeded", finished)
        job_id = uuid.uuid4().hex
        running = {key: value for key, value in finished.items()
                   if key not in ("finished_at", "result", "usage", "expires_at")}
        running.update(id=job_id, status="running", run_by="another-invocation", input=ticket)
        self.dynamodb.put_item(TableName="jobs", Item={
            "id": {"S": job_id}, "status": {"S": "running"}, "run_by": {"S": "another-invocation"},
            "record": {"S": json.dumps(running)}})
        item, before = self.item(job_id), self.model_calls_seen()
        self.assertEqual(self.invoke("classify-ticket", {"job": {"id": job_id}}),
                         {"job": {"id": job_id, "status": "running"}})
        self.assertEqual(self.model_calls_seen(), before, "the second worker called the model")
        self.assertEqual(self.item(job_id), item)
        self.assertEqual(self.log_lines(job_id, "job already taken"), 1)

    def test_workers_racing_for_a_new_job_run_it_once(self):
        ticket = {"subject": "Refund please", "body": f"Order {uuid.uuid4()} arrived broken."}
        before = self.model_calls_seen()
        job_id = self.submit("POST", "/tickets/classify", ticket, ASYNC)["id"]
        # The function has started its worker; three more start at once with its payload.
        with ThreadPoolExecutor(3) as pool:
            answers = list(pool.map(lambda _: self.invoke("classify-ticket", {"job": {"id": job_id}}), range(3)))
        for answer in answers:
            self.assertEqual(answer["job"]["id"], job_id)
            self.assertIn(answer["job"]["status"], ("running", "succeeded"))
        job = self.wait(job_id)
        self.assertEqual(job["status"], "succeeded", job)
        self.wait_workers(job_id, 4)
        self.assertEqual(self.log_lines(job_id, "job running"), 1, "the job ran once")
        self.assertEqual(job["usage"]["model_calls"], 1)
        self.assertEqual(self.model_calls_seen() - before, 1, "the emulator saw one model call")

    def test_translations_run_as_jobs_like_the_sync_route(self):
        before = self.model_calls_seen()
        status, sync = self.stack.http("POST /translations", TRANSLATION)
        self.assertEqual(status, 200, sync)
        calls = self.model_calls_seen() - before
        self.assertGreater(calls, 0)
        self.assertEqual(sync["usage"]["model_calls"], calls)
        for form, path, body, headers in [("POST /jobs", "/jobs", {"task": "translate", **TRANSLATION}, {}),
                                          ("Prefer: respond-async", "/translations", TRANSLATION, ASYNC)]:
            with self.subTest(form=form):
                before = self.model_calls_seen()
                job = self.wait(self.submit("POST", path, body, headers)["id"])
                self.assertEqual(job["status"], "succeeded", job)
                self.assertEqual((job["function"], job["route"]), ("translate", "POST /translations"))
                self.assertEqual(without_times(job["result"]), without_times(sync))
                self.assertEqual(self.model_calls_seen() - before, calls)

    def test_an_input_over_the_offload_limit_is_kept_in_s3(self):
        document = {"text": DOCUMENT["text"] * 340}
        size = len(json.dumps(document).encode())
        # Over the offload limit, within summarize-document's MAX_REQUEST_BYTES (1 MiB).
        self.assertTrue(OFFLOAD_BYTES < size < 1024 * 1024, size)
        before = self.model_calls_seen()
        job_id = self.submit("POST", "/summaries", document, ASYNC)["id"]
        job = self.wait(job_id)
        self.assertEqual(job["status"], "succeeded", job)
        self.assertEqual(job["result"]["summary"], "SUMMARY combined from the parts.")
        self.assertGreater(job["result"]["parts"], 1)
        record = self.record(job_id)
        self.assertNotIn("input", record)
        self.assertNotIn("result_key", record)
        self.assertRegex(record["input_key"], rf"^jobs/{job_id}/input-[0-9a-f]{{16}}\.json$")
        self.assertEqual(self.stack.keys(f"jobs/{job_id}/"), [record["input_key"]])
        self.assertEqual(self.stack.get_json(record["input_key"]), document)
        self.assertEqual(self.model_calls_seen() - before, job["usage"]["model_calls"])

    def test_a_result_over_the_offload_limit_is_read_back_from_s3(self):
        # The scripted emulator echoes each part of the text, so the translation is as long.
        text = "Hallo Welt, wie geht es dir heute? Das Wetter ist schön. " * 5600
        body = {"task": "translate", "text": text, "source_language": "de", "target_language": "en"}
        before = self.model_calls_seen()
        job_id = self.submit("POST", "/jobs", body)["id"]
        job = self.wait(job_id)
        self.assertEqual(job["status"], "succeeded", job)
        record = self.record(job_id)
        self.assertNotIn("result", record)
        self.assertEqual(record["result_key"], f"jobs/{job_id}/result.json")
        self.assertEqual(self.stack.keys(f"jobs/{job_id}/"), sorted([record["input_key"], record["result_key"]]))
        stored = self.stack.get_json(record["result_key"])
        self.assertGreater(len(json.dumps(stored, ensure_ascii=False, separators=(",", ":")).encode()),
                           OFFLOAD_BYTES)
        self.assertEqual(job["result"], stored)
        self.assertEqual(job["usage"], stored["usage"])
        self.assertEqual(self.model_calls_seen() - before, job["usage"]["model_calls"])

    def test_the_sample_events_run_on_the_functions(self):
        def sample(name: str) -> dict:
            return json.loads((EVENTS / name).read_text())

        # One job in both forms (events/): Prefer: respond-async on POST /summaries, then
        # POST /jobs with the same Idempotency-Key, caller and body.
        job_id = sample("jobs-worker.json")["job"]["id"]
        before = self.model_calls_seen()
        for function, name in [("summarize-document", "summarize-document-respond-async-http.json"),
                               ("jobs", "jobs-submit-http.json")]:
            with self.subTest(sample=name):
                response = self.invoke(function, sample(name))
                self.assertEqual(response["statusCode"], 202, response)
                self.assertEqual(response["headers"]["location"], f"/jobs/{job_id}")
                self.assertEqual(json.loads(response["body"])["id"], job_id)
        job = self.wait(job_id, status_event=sample("jobs-status-http.json"))
        self.assertEqual(job["status"], "succeeded", job)
        self.assertEqual(job["route"], "POST /summaries")
        self.assertEqual(job["result"]["summary"], "SUMMARY of the whole document.")
        # The worker's payload, once more: the job is done, so nothing runs.
        self.assertEqual(self.invoke("summarize-document", sample("jobs-worker.json")),
                         {"job": {"id": job_id, "status": "succeeded"}})
        self.wait_workers(job_id, self.workers_started(job_id) + 1)
        self.assertEqual(self.log_lines(job_id, "job running"), 1)
        self.assertEqual(self.model_calls_seen() - before, job["usage"]["model_calls"])

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
