#!/usr/bin/env python3
"""boto3 against lambda-local, the way moto's Step Functions executor calls it.

Run manually after `cargo build -p lambda-local`:

    .venv/bin/python tools/lambda-local/tests/boto3_invoke.py [TARGET_DIR]

It starts `lambda-local` serving the echo fixture, points boto3 at it through
AWS_ENDPOINT_URL_LAMBDA and checks what boto3 sees. Exits non-zero on the first failure.
"""

import json
import os
import subprocess
import sys
import tempfile
import time

import boto3
from botocore.config import Config

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
TARGET = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "target", "debug")
SERVER = os.path.join(TARGET, "lambda-local")
ECHO = os.path.join(TARGET, "lambda-local-echo-fn")

passed = 0


def check(name, condition, detail=""):
    global passed
    if not condition:
        print(f"FAIL {name}: {detail}")
        sys.exit(1)
    passed += 1
    print(f"ok   {name}")


def main():
    server = subprocess.Popen(
        [
            SERVER,
            "--listen", "127.0.0.1:0",
            "--function", f"echo={ECHO}",
            "--timeout", "echo=1",
            "--async-retry-delay-ms", "50",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        endpoint = server.stdout.readline().strip()
        os.environ.update(
            AWS_ENDPOINT_URL_LAMBDA=endpoint,
            AWS_ACCESS_KEY_ID="test",
            AWS_SECRET_ACCESS_KEY="test",
            AWS_DEFAULT_REGION="us-east-1",
        )
        client = boto3.client("lambda", config=Config(retries={"max_attempts": 1}))
        run_checks(client)
    finally:
        server.terminate()
        server.wait(timeout=10)
    check("server exits cleanly on SIGTERM", server.returncode == 0, server.returncode)
    print(f"{passed} passed, 0 failed")


def invoke(client, payload, **kwargs):
    response = client.invoke(FunctionName="echo", Payload=json.dumps(payload), **kwargs)
    body = response["Payload"].read()
    return response, json.loads(body) if body else None


def run_checks(client):
    response, body = invoke(client, {"hello": "boto3"})
    check("sync invoke: 200", response["StatusCode"] == 200, response)
    check("sync invoke: no FunctionError", "FunctionError" not in response, response)
    check("sync invoke: payload echoed", body["echo"] == {"hello": "boto3"}, body)
    check("sync invoke: ExecutedVersion", response["ExecutedVersion"] == "$LATEST", response)

    response, body = invoke(client, {"fail": "ModelThrottled"})
    check("function error: 200", response["StatusCode"] == 200, response)
    check("function error: FunctionError", response.get("FunctionError") == "Unhandled", response)
    check("function error: errorType", body["errorType"] == "ModelThrottled", body)

    response, body = invoke(client, {"sleep_ms": 5000})
    check("timeout: FunctionError", response.get("FunctionError") == "Unhandled", response)
    check("timeout: Sandbox.Timedout", body["errorType"] == "Sandbox.Timedout", body)
    response, body = invoke(client, {"after": "timeout"})
    check("timeout: recovers", body["echo"] == {"after": "timeout"}, body)

    response, body = invoke(client, {"exit": True})
    check("crash: Runtime.ExitError", body["errorType"] == "Runtime.ExitError", body)

    try:
        client.invoke(FunctionName="arn:aws:lambda:us-east-1:123456789012:function:nope")
        check("unknown function raises", False, "no exception")
    except client.exceptions.ResourceNotFoundException as error:
        check("unknown function: ResourceNotFoundException", True)
        check(
            "unknown function: message",
            "Function not found" in error.response["Error"]["Message"],
            error.response,
        )

    with tempfile.TemporaryDirectory() as tmp:
        marker = os.path.join(tmp, "marker")
        response = client.invoke(
            FunctionName="echo", InvocationType="Event", Payload=json.dumps({"marker": marker})
        )
        check("event: 202", response["StatusCode"] == 202, response)
        deadline = time.time() + 10
        while not os.path.exists(marker) and time.time() < deadline:
            time.sleep(0.05)
        check("event: ran in the background", os.path.exists(marker))

    arn = "arn:aws:lambda:us-east-1:123456789012:function:echo"
    response = client.invoke(FunctionName=arn, Payload=json.dumps({"by": "arn"}))
    body = json.loads(response["Payload"].read())
    check("invoke by ARN (as moto's Step Functions)", body["echo"] == {"by": "arn"}, body)

    for name, kwargs in [
        ("dry run", {"InvocationType": "DryRun"}),
        ("log tail", {"LogType": "Tail"}),
        ("qualifier", {"Qualifier": "$LATEST"}),
    ]:
        try:
            client.invoke(FunctionName="echo", **kwargs)
            check(f"{name} refused", False, "no exception")
        except client.exceptions.InvalidParameterValueException as error:
            message = error.response["Error"]["Message"]
            check(f"{name}: InvalidParameterValueException", message.startswith("Unsupported"), message)


if __name__ == "__main__":
    main()
