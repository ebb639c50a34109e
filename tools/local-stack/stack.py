"""The offline local stack: the same functions, ASL and SDK calls as in AWS, on one machine.

Started pieces (all on free loopback ports, all stopped by ``LocalStack.stop``):

* ``bedrock-local``: the Bedrock Runtime emulator, with the local GGUF model or a scripted
  test double, optionally with injected faults;
* ``lambda-local``: the three Lambda functions behind the real Lambda Invoke and Runtime
  APIs, plus an HTTP API (payload 2.0) front for the API routes;
* moto in server mode: S3 and Step Functions, executing the ASL from ``statemachines/``
  with its ``${...}`` substitutions resolved to the local functions. moto's Step Functions
  invokes Lambda at ``http://localhost:$MOTO_PORT``, so ``MOTO_PORT`` is set to
  lambda-local's port in moto's environment.

What AWS does on its own is played by this module, labelled as such: the S3 -> Lambda
notification (``upload_for_summary`` sends the S3 event as an asynchronous invocation) and
the EventBridge rule (``upload_for_workflow`` starts the execution with the EventBridge
event). With ``StackOptions.upload_queue`` the upload path is AWS's own instead: moto sends
the S3 notifications for ``incoming/`` to the SQS queue ``uploads`` and lambda-local's SQS
event source mapping feeds summarize-document (redrive to ``uploads-dlq``).
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import boto3
from botocore.config import Config

from service_router import ServiceRouter

ROOT = Path(__file__).resolve().parents[2]
ACCOUNT = "123456789012"
REGION = "us-east-1"
BUCKET = "text-processing-documents"
FUNCTIONS = ("summarize-document", "classify-ticket", "translate", "jobs")
HTTP_ROUTES = {
    "POST /summaries": "summarize-document",
    "POST /tickets/classify": "classify-ticket",
    "POST /translations": "translate",
    "POST /jobs": "jobs",
    "GET /jobs/{id}": "jobs",
    "POST /batches": "jobs",
    "GET /batches/{id}": "jobs",
    "POST /uploads": "summarize-document",
    "GET /documents/{key+}": "summarize-document",
}
JOBS_TABLE = "jobs"
# The jobs function's own settings: the function each task goes to.
# The streaming functions (the template's SummarizeStreamFunction, TranslateStreamFunction):
# the same binaries with RESPONSE_STREAMING=true, each behind a function URL on the HTTP
# front (name -> (binary, URL path)).
STREAM_FUNCTIONS = {
    "summarize-stream": ("summarize-document", "/urls/summarize-stream"),
    "translate-stream": ("translate", "/urls/translate-stream"),
}
JOBS_ENV = {"SUMMARIZE_FUNCTION": "summarize-document", "TRANSLATE_FUNCTION": "translate",
            "CLASSIFY_FUNCTION": "classify-ticket",
            # POST /batches starts the batch workflow (BATCH_STATE_MACHINE, registered below).
            "BATCH_STATE_MACHINE_ARN": f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:document-batch"}
STATE_MACHINE = "document-workflow"
# The upload queue (template's UploadQueue and its dead-letter queue): S3 notifications for
# incoming/ go there and lambda-local's SQS event source mapping feeds summarize-document.
UPLOAD_QUEUE = "uploads"
UPLOAD_DLQ = "uploads-dlq"
UPLOAD_PREFIX = "incoming/"
BATCH_STATE_MACHINE = "document-batch"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "local", "AWS_SECRET_ACCESS_KEY": "local", "AWS_REGION": REGION,
               "AWS_DEFAULT_REGION": REGION}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class ProcessDidNotStart(RuntimeError):
    """A process of the stack exited before printing its address (a port taken, say)."""


def spawn(name: str, cmd: list[str], log: Path, lines: int = 1, env: dict | None = None
          ) -> tuple[subprocess.Popen, list[str]]:
    """Starts ``cmd`` with stderr (and stdout, when it prints nothing to read) in ``log`` and
    reads the ``lines`` addresses it prints first; a process that prints none is stopped."""
    with open(log, "w") as sink:  # the child holds its own descriptor
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE if lines else sink, stderr=sink, env=env, text=True,
                                cwd=ROOT)
    out = []
    for _ in range(lines):
        line = proc.stdout.readline().strip()
        if not line:
            stop_processes([proc])
            raise ProcessDidNotStart(f"{name} did not start; see {log}")
        out.append(line)
    return proc, out


def stop_processes(procs: list[subprocess.Popen], timeout: float = 10) -> None:
    """Terminates ``procs`` (all first, then waits for each), killing any that outlive ``timeout``."""
    for proc in reversed(procs):
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout:
            proc.stdout.close()


def wait_http(url: str, timeout: float = 60) -> None:
    """Waits until ``url`` answers at all (any HTTP status)."""
    end = time.time() + timeout
    while time.time() < end:
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer")


def function_arn(name: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"


@dataclass
class StackOptions:
    """How to start the stack."""

    #: Path of a GGUF model for the emulator, or None to use ``scripted``.
    model: Path | None = None
    #: Path of a scripted rules file (the emulator's test double).
    scripted: Path | None = None
    #: Context window the functions budget for (the local model's).
    context_window: int = 8192
    #: Extra emulator flags (faults, capacity), e.g. ["--throttle-rate", "0.5"].
    emulator_args: list[str] = field(default_factory=list)
    #: Cargo profile directory the binaries were built in.
    profile: str = "debug"
    #: Where logs of the started processes go.
    log_dir: Path = ROOT / "target" / "local-stack"
    #: Extra environment for every function.
    function_env: dict[str, str] = field(default_factory=dict)
    #: Step Functions Map concurrency substituted into the ASL.
    map_concurrency: int = 4
    #: Turn on S3 versioning for the documents bucket (events then carry version ids).
    versioned: bool = False
    #: Worker processes of each of the four functions (lambda-local's --concurrency).
    function_concurrency: int = 4
    #: The upload queue: S3 notifications for ``incoming/`` go to the SQS queue ``uploads``
    #: (moto sends them on every put, as S3 does) and lambda-local's event source mapping
    #: feeds summarize-document; ``upload_for_summary`` then only puts. Off: no queue, and
    #: ``upload_for_summary`` invokes summarize-document asynchronously with the S3 event.
    upload_queue: bool = True
    #: The mapping's ScalingConfig.MaximumConcurrency (2-1000); None: the function's workers.
    queue_max_concurrency: int | None = None
    #: The mapping's BatchSize (one document per invocation by default).
    queue_batch_size: int = 1
    #: The queue's redrive policy: receives before a message goes to ``uploads-dlq``.
    max_receive_count: int = 3
    #: The queue's visibility timeout in seconds; summarize-document's timeout is capped to
    #: it (Lambda refuses a mapping whose function timeout exceeds it).
    visibility_timeout: int = 900
    #: The batch workflow's Distributed Map concurrency (the template's BatchMapConcurrency).
    batch_concurrency: int = 4


class LocalStack:
    """Starts and stops the local stack; gives SDK clients and helpers for the workload."""

    def __init__(self, options: StackOptions):
        self.options = options
        self.procs: list[subprocess.Popen] = []
        self.bedrock_endpoint = ""
        self.lambda_endpoint = ""
        self.http_endpoint = ""
        self.aws_endpoint = ""
        self.queue_url = ""
        self.dlq_url = ""
        self.router: ServiceRouter | None = None
        # S3 orders the events of a key by a growing hexadecimal sequencer; so do we.
        self._sequencer = 0

    # ----- lifecycle -----------------------------------------------------------------

    def start(self) -> "LocalStack":
        # Ports are picked free before the processes bind them; another process can take
        # one in between (lambda-local then cannot listen). Such a start is tried again
        # with new ports, twice at most.
        for attempt in range(3):
            try:
                self._start()
                return self
            except ProcessDidNotStart:
                self.stop()
                if attempt == 2:
                    raise
            except BaseException:
                self.stop()
                raise
        return self

    def _start(self) -> None:
        opts = self.options
        opts.log_dir.mkdir(parents=True, exist_ok=True)
        binaries = ROOT / "target" / opts.profile
        emulator = [str(binaries / "bedrock-local"), "--listen", "127.0.0.1:0"]
        if opts.model:
            emulator += ["--model", str(opts.model)]
        elif opts.scripted:
            emulator += ["--scripted", str(opts.scripted)]
        emulator += ["--context-window", str(opts.context_window), *opts.emulator_args]
        self.bedrock_endpoint = self._spawn("bedrock-local", emulator)[0]

        # lambda-local's port is chosen first: moto's Step Functions invoke Lambda there
        # (MOTO_PORT) and the functions invoke each other there (job workers). moto starts
        # before lambda-local, so lambda-local's own ephemeral HTTP port cannot take moto's.
        lambda_port = free_port()
        moto_port = free_port()
        while moto_port == lambda_port:
            moto_port = free_port()
        self.aws_endpoint = f"http://127.0.0.1:{moto_port}"
        # moto's Step Functions send every service call to MOTO_PORT: the router there
        # passes Lambda invocations to lambda-local and the rest (the Distributed Map's S3
        # ItemReader and ResultWriter) to moto.
        self.router = ServiceRouter(f"127.0.0.1:{lambda_port}", f"127.0.0.1:{moto_port}")
        moto_env = {**os.environ, **CREDENTIALS, "MOTO_PORT": str(self.router.start())}
        # moto_server, with S3 notification records completed as S3 sends them.
        moto = [sys.executable, str(Path(__file__).with_name("moto_s3_events.py")), "-H", "127.0.0.1", "-p",
                str(moto_port)]
        self._spawn("moto", moto, lines=0, env=moto_env)
        wait_http(f"{self.aws_endpoint}/moto-api/")
        if opts.upload_queue:
            self._create_upload_queue()
        # Credentials and region reach the functions through lambda-local's own
        # environment (Lambda reserves those names for itself).
        function_env = {
            "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": self.bedrock_endpoint,
            "AWS_ENDPOINT_URL_S3": self.aws_endpoint,
            "AWS_ENDPOINT_URL_DYNAMODB": self.aws_endpoint,
            "AWS_ENDPOINT_URL_SQS": self.aws_endpoint,
            "AWS_ENDPOINT_URL_LAMBDA": f"http://127.0.0.1:{lambda_port}",
            "AWS_ENDPOINT_URL_SFN": self.aws_endpoint,
            "JOBS_TABLE": JOBS_TABLE,
            "JOBS_BUCKET": BUCKET,
            # summarize-document's direct uploads (POST /uploads) go to the documents bucket.
            "DOCUMENTS_BUCKET": BUCKET,
            "S3_FORCE_PATH_STYLE": "true",
            "BEDROCK_CONTEXT_WINDOW": str(opts.context_window),
            # A real local model has its own tokenizer: exact Llama 3 counts would fill its
            # window past what it takes, so only the estimate's margin counts there.
            "BEDROCK_TOKEN_COUNT": "estimate" if opts.model else "llama3",
            "RUST_LOG": "info",
            **opts.function_env,
        }
        lambda_cmd = [str(binaries / "lambda-local"), "--listen", f"127.0.0.1:{lambda_port}", "--http-listen",
                      "127.0.0.1:0"]
        # The queue's consumer changes the visibility of its failed messages (backoff) and
        # knows the queue's maxReceiveCount, as the template tells it; function_env wins.
        queue_env = {"UPLOAD_QUEUE_URL": self.queue_url, "UPLOAD_MAX_RECEIVES": str(opts.max_receive_count),
                     **opts.function_env} if opts.upload_queue else {}
        for name in FUNCTIONS:
            timeout = 900
            if opts.upload_queue and name == "summarize-document":
                timeout = min(timeout, opts.visibility_timeout)
            lambda_cmd += ["--function", f"{name}={binaries / name}", "--timeout", f"{name}={timeout}",
                           "--concurrency", f"{name}={opts.function_concurrency}"]
            own_env = JOBS_ENV if name == "jobs" else queue_env if name == "summarize-document" else {}
            for key, value in {**function_env, **own_env}.items():
                lambda_cmd += ["--env", f"{name}:{key}={value}"]
        for route, name in HTTP_ROUTES.items():
            lambda_cmd += ["--http", f"{route}={name}"]
        for name, (binary, path) in STREAM_FUNCTIONS.items():
            lambda_cmd += ["--function", f"{name}={binaries / binary}", "--timeout", f"{name}=900",
                           "--concurrency", f"{name}=2", "--function-url", f"{name}={path}"]
            for key, value in {**function_env, "RESPONSE_STREAMING": "true"}.items():
                lambda_cmd += ["--env", f"{name}:{key}={value}"]
        lambda_cmd += ["--dlq-dir", str(opts.log_dir / "dlq")]
        if opts.upload_queue:
            lambda_cmd += ["--sqs-source", f"summarize-document={self.queue_url}",
                           "--sqs-batch-size", f"summarize-document={opts.queue_batch_size}",
                           "--sqs-report-batch-item-failures", "summarize-document"]
            if opts.queue_max_concurrency is not None:
                lambda_cmd += ["--sqs-max-concurrency", f"summarize-document={opts.queue_max_concurrency}"]
        self.lambda_endpoint, self.http_endpoint = self._spawn(
            "lambda-local", lambda_cmd, lines=2,
            env={**os.environ, **CREDENTIALS, "AWS_ENDPOINT_URL_SQS": self.aws_endpoint})

        req = urllib.request.Request(
            f"{self.aws_endpoint}/moto-api/config",
            data=json.dumps({"stepfunctions": {"execute_state_machine": True}}).encode(),
            method="POST",
        )
        urllib.request.urlopen(req, timeout=10).read()
        self.s3().create_bucket(Bucket=BUCKET)
        if opts.upload_queue:
            # S3 (and moto) send an s3:TestEvent message to the queue on this call.
            queue_arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{UPLOAD_QUEUE}"
            self.s3().put_bucket_notification_configuration(Bucket=BUCKET, NotificationConfiguration={
                "QueueConfigurations": [{"QueueArn": queue_arn, "Events": ["s3:ObjectCreated:*"], "Filter": {
                    "Key": {"FilterRules": [{"Name": "prefix", "Value": UPLOAD_PREFIX}]}}}]})
        # The jobs table as template.yaml declares it (key `id`, TTL on `expires_at`).
        dynamodb = self._client("dynamodb", self.aws_endpoint)
        dynamodb.create_table(TableName=JOBS_TABLE, BillingMode="PAY_PER_REQUEST",
                              AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                              KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}])
        dynamodb.update_time_to_live(TableName=JOBS_TABLE, TimeToLiveSpecification={
            "Enabled": True, "AttributeName": "expires_at"})
        if opts.versioned:
            self.s3().put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        self.state_machine_arn = self._register_state_machine()
        self.batch_state_machine_arn = self._register_batch_state_machine()

    def _spawn(self, name: str, cmd: list[str], lines: int = 1, env: dict | None = None) -> list[str]:
        proc, out = spawn(name, cmd, self.options.log_dir / f"{name}.log", lines, env)
        self.procs.append(proc)
        return out

    def stop(self) -> None:
        stop_processes(self.procs)
        self.procs.clear()
        if self.router:
            self.router.stop()

    def __enter__(self) -> "LocalStack":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # ----- clients ---------------------------------------------------------------------

    def _client(self, service: str, endpoint: str):
        return boto3.client(service, endpoint_url=endpoint, region_name=REGION, aws_access_key_id="local",
                            aws_secret_access_key="local",
                            config=Config(retries={"max_attempts": 2}, read_timeout=900))

    def s3(self):
        return self._client("s3", self.aws_endpoint)

    def sqs(self):
        return self._client("sqs", self.aws_endpoint)

    def sfn(self):
        return self._client("stepfunctions", self.aws_endpoint)

    def lambda_(self):
        return self._client("lambda", self.lambda_endpoint)

    # ----- the state machine -----------------------------------------------------------

    def _register_batch_state_machine(self) -> str:
        return self._register_asl(BATCH_STATE_MACHINE, {
            "SummarizeDocumentFunctionArn": function_arn("summarize-document"),
            "DocumentsBucketName": BUCKET,
            "BatchMapConcurrency": str(self.options.batch_concurrency),
        })

    def _register_state_machine(self) -> str:
        return self._register_asl(STATE_MACHINE, {
            "SummarizeDocumentFunctionArn": function_arn("summarize-document"),
            "ClassifyTicketFunctionArn": function_arn("classify-ticket"),
            "TranslateFunctionArn": function_arn("translate"),
            "DocumentsBucketName": BUCKET,
            "WorkingLanguage": "en",
            "MapMaxConcurrency": str(self.options.map_concurrency),
            # translate's TRANSLATE_MAX_TEXT_BYTES (its default, as the local functions run).
            "TranslateMaxTextBytes": "204800",
        })

    def _register_asl(self, name: str, substitutions: dict[str, str]) -> str:
        """Registers ``statemachines/<name>.asl.json`` with its ``${...}`` substitutions."""
        asl = (ROOT / "statemachines" / f"{name}.asl.json").read_text()

        def resolve(match: re.Match) -> str:
            name = match.group(1)
            if name not in substitutions:
                raise KeyError(f"ASL substitution ${{{name}}} has no local value")
            return substitutions[name]

        definition = re.sub(r"\$\{(\w+)\}", resolve, asl)
        json.loads(definition)
        out = self.sfn().create_state_machine(
            name=name, definition=definition, roleArn=f"arn:aws:iam::{ACCOUNT}:role/{name}", type="STANDARD")
        return out["stateMachineArn"]

    # ----- what AWS would do on its own (played here) ----------------------------------

    def upload_for_summary(self, key: str, body: bytes) -> dict:
        """Puts an object under ``incoming/`` and delivers the S3 ObjectCreated
        notification to summarize-document as an asynchronous invocation, as S3 does; with
        the upload queue, S3 (moto) sends it to the queue by itself and this only puts."""
        event = self.put_for_summary(key, body)
        if not self.options.upload_queue:
            self.deliver(event)
        return event

    def put_for_summary(self, key: str, body: bytes) -> dict:
        """Puts an object and returns the S3 ObjectCreated notification S3 would send for
        it (with the version id when versioned, and the next sequencer), undelivered."""
        put = self.s3().put_object(Bucket=BUCKET, Key=key, Body=body)
        self._sequencer += 1
        return s3_event(key, put["ETag"].strip('"'), len(body), put.get("VersionId"), f"{self._sequencer:018X}")

    def notify_for_summary(self, key: str) -> dict:
        """Delivers the S3 ObjectCreated notification for an object already stored (an
        upload through a presigned URL, say) to summarize-document, as S3 does."""
        head = self.s3().head_object(Bucket=BUCKET, Key=key)
        self._sequencer += 1
        event = s3_event(key, head["ETag"].strip('"'), head["ContentLength"], head.get("VersionId"),
                         f"{self._sequencer:018X}")
        if not self.options.upload_queue:  # with the queue, moto notified on the put
            self.deliver(event)
        return event

    def deliver(self, event: dict) -> None:
        """Delivers an S3 notification to summarize-document asynchronously, as S3 does
        (at least once, in any order: call it again or late to play that)."""
        resp = self.lambda_().invoke(FunctionName=function_arn("summarize-document"), InvocationType="Event",
                                     Payload=json.dumps(event).encode())
        assert resp["StatusCode"] == 202, resp

    def _create_upload_queue(self) -> None:
        """The upload queue and its dead-letter queue, as the template declares them."""
        opts = self.options
        sqs = self.sqs()
        self.dlq_url = sqs.create_queue(QueueName=UPLOAD_DLQ)["QueueUrl"]
        redrive = {"deadLetterTargetArn": f"arn:aws:sqs:{REGION}:{ACCOUNT}:{UPLOAD_DLQ}",
                   "maxReceiveCount": opts.max_receive_count}
        self.queue_url = sqs.create_queue(QueueName=UPLOAD_QUEUE, Attributes={
            "VisibilityTimeout": str(opts.visibility_timeout), "RedrivePolicy": json.dumps(redrive)})["QueueUrl"]

    def queue_depth(self, url: str) -> int:
        """Messages in the queue at ``url``, visible or in flight."""
        attrs = self.sqs().get_queue_attributes(QueueUrl=url, AttributeNames=[
            "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])["Attributes"]
        return sum(int(value) for value in attrs.values())

    def wait_queue_empty(self, timeout: float = 900) -> None:
        """Waits until the upload queue holds no message, visible or in flight (every
        message deleted or moved to the dead-letter queue)."""
        end = time.time() + timeout
        while self.queue_depth(self.queue_url) > 0:
            if time.time() > end:
                raise TimeoutError(f"{UPLOAD_QUEUE} still holds messages after {timeout} s")
            time.sleep(0.5)

    def upload_for_workflow(self, key: str, body: bytes) -> str:
        """Puts an object under ``workflow/`` and starts the state machine with the
        EventBridge ``Object Created`` event, as the EventBridge rule does."""
        return self.start_workflow(self.put_for_workflow(key, body))

    def put_for_workflow(self, key: str, body: bytes) -> dict:
        """Puts an object and returns the EventBridge ``Object Created`` event S3 would
        emit for it (version id when versioned, the next sequencer), unsent."""
        put = self.s3().put_object(Bucket=BUCKET, Key=key, Body=body)
        self._sequencer += 1
        return eventbridge_event(key, put["ETag"].strip('"'), len(body), put.get("VersionId"),
                                 f"{self._sequencer:018X}")

    def start_workflow(self, event: dict) -> str:
        """Starts the state machine with an EventBridge event, as the rule does."""
        key = event["detail"]["object"]["key"]
        name = re.sub(r"[^A-Za-z0-9_-]", "-", key)[-60:] + f"-{time.time_ns() % 10**12}"
        return self.sfn().start_execution(stateMachineArn=self.state_machine_arn, name=name,
                                          input=json.dumps(event))["executionArn"]

    def start_batch(self, prefix: str | None = None, manifest: str | None = None,
                    name: str | None = None) -> str:
        """Starts the batch workflow over the documents under ``prefix`` or named by the
        ``manifest`` object (CSV with a ``key`` column, or a JSON array of ``{"key"}``), as
        ``POST /batches`` or ``aws stepfunctions start-execution`` does; its report goes to
        ``reports/batches/<name>.json``."""
        if (prefix is None) == (manifest is None):
            raise ValueError("give a prefix or a manifest")
        source = {"prefix": prefix} if prefix is not None else {"manifest": manifest}
        name = name or f"batch-{time.time_ns()}"
        return self.sfn().start_execution(stateMachineArn=self.batch_state_machine_arn, name=name,
                                          input=json.dumps(source))["executionArn"]

    def wait_execution(self, arn: str, timeout: float = 900) -> dict:
        end = time.time() + timeout
        while time.time() < end:
            desc = self.sfn().describe_execution(executionArn=arn)
            if desc["status"] != "RUNNING":
                return desc
            time.sleep(0.5)
        raise TimeoutError(f"execution {arn} still running")

    def emulator_stats(self) -> dict:
        """The emulator's counters (``GET /_local/stats``)."""
        with urllib.request.urlopen(f"{self.bedrock_endpoint}/_local/stats", timeout=30) as resp:
            return json.loads(resp.read())

    def reset_emulator_stats(self) -> None:
        """Zeroes the emulator's counters and peaks (its quota window stays)."""
        req = urllib.request.Request(f"{self.bedrock_endpoint}/_local/stats/reset", method="POST")
        urllib.request.urlopen(req, timeout=30).read()

    def wait_model_calls_open(self, count: int, timeout: float = 120) -> None:
        """Waits until at least ``count`` model calls are open at the emulator."""
        end = time.time() + timeout
        while self.emulator_stats()["open_requests"] < count:
            if time.time() > end:
                raise TimeoutError(f"fewer than {count} model calls open after {timeout} s")
            time.sleep(0.1)

    def wait_object(self, keys: list[str], timeout: float = 900) -> str:
        """Waits until one of ``keys`` exists; returns it."""
        end = time.time() + timeout
        while time.time() < end:
            for key in keys:
                try:
                    self.s3().head_object(Bucket=BUCKET, Key=key)
                    return key
                except self.s3().exceptions.ClientError:
                    pass
            time.sleep(0.5)
        raise TimeoutError(f"none of {keys} appeared")

    def get_json(self, key: str) -> dict:
        return json.loads(self.s3().get_object(Bucket=BUCKET, Key=key)["Body"].read())

    def keys(self, prefix: str) -> list[str]:
        out = self.s3().list_objects_v2(Bucket=BUCKET, Prefix=prefix)
        return sorted(o["Key"] for o in out.get("Contents", []))

    def request(self, method: str, path: str, body: dict | None = None,
                headers: dict | None = None) -> tuple[int, dict, dict]:
        """An HTTP request to the API front: (status, response headers lower-cased, JSON body)."""
        data = None if body is None else json.dumps(body).encode()
        all_headers = {**({"content-type": "application/json"} if data is not None else {}), **(headers or {})}
        req = urllib.request.Request(f"{self.http_endpoint}{path}", data=data, method=method, headers=all_headers)
        try:
            with urllib.request.urlopen(req, timeout=900) as resp:
                return resp.status, {k.lower(): v for k, v in resp.headers.items()}, json.loads(resp.read())
        except urllib.error.HTTPError as err:
            return err.code, {k.lower(): v for k, v in err.headers.items()}, json.loads(err.read() or b"{}")

    def stream_url(self, name: str) -> str:
        """The function URL of a streaming function (``summarize-stream``, ``translate-stream``)."""
        return self.http_endpoint + STREAM_FUNCTIONS[name][1]

    def http(self, route: str, body: dict) -> tuple[int, dict]:
        method, path = route.split(" ", 1)
        req = urllib.request.Request(f"{self.http_endpoint}{path}", data=json.dumps(body).encode(), method=method,
                                     headers={"content-type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=900) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"{}")


def s3_event(key: str, etag: str, size: int, version_id: str | None = None,
             sequencer: str = "0000000000000001") -> dict:
    """An S3 ObjectCreated:Put notification as S3 sends it (key URL-encoded)."""
    encoded = urllib.parse.quote_plus(key, safe="/")
    obj = {"key": encoded, "size": size, "eTag": etag, "sequencer": sequencer}
    if version_id and version_id != "null":
        obj["versionId"] = version_id
    return {"Records": [{
        "eventVersion": "2.1", "eventSource": "aws:s3", "awsRegion": REGION,
        "eventTime": time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()), "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "AWS:LOCAL"}, "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {"x-amz-request-id": "LOCAL", "x-amz-id-2": "LOCAL"},
        "s3": {"s3SchemaVersion": "1.0", "configurationId": "summarize-uploads",
               "bucket": {"name": BUCKET, "ownerIdentity": {"principalId": "LOCAL"}, "arn": f"arn:aws:s3:::{BUCKET}"},
               "object": obj},
    }]}


def eventbridge_event(key: str, etag: str, size: int, version_id: str | None = None,
                      sequencer: str = "0000000000000001") -> dict:
    """The EventBridge ``Object Created`` event S3 emits (key not encoded)."""
    obj = {"key": key, "size": size, "etag": etag, "sequencer": sequencer}
    if version_id and version_id != "null":
        obj["version-id"] = version_id
    return {
        "version": "0", "id": f"local-{time.time_ns()}", "detail-type": "Object Created", "source": "aws.s3",
        "account": ACCOUNT, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "region": REGION,
        "resources": [f"arn:aws:s3:::{BUCKET}"],
        "detail": {"version": "0", "bucket": {"name": BUCKET},
                   "object": obj,
                   "request-id": "LOCAL", "requester": ACCOUNT, "source-ip-address": "127.0.0.1",
                   "reason": "PutObject"},
    }

