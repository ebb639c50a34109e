"""The same workload against a deployed stack in AWS (``demo.py --aws STACK``).

Reads the CloudFormation outputs of the SAM stack and offers the interface of
``stack.LocalStack`` with the real services: uploads trigger summarize-document and the
workflow through S3 and EventBridge themselves, and HTTP calls are SigV4-signed for the
API's IAM authorization. No code of the functions changes; only endpoints do.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request

import boto3
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest


class RemoteStack:
    """A deployed stack, found by its CloudFormation name."""

    def __init__(self, stack_name: str):
        self.session = boto3.Session()
        outputs = self.session.client("cloudformation").describe_stacks(StackName=stack_name)["Stacks"][0]["Outputs"]
        by_key = {o["OutputKey"]: o["OutputValue"] for o in outputs}
        self.bucket = next(v for k, v in by_key.items() if "Bucket" in k)
        self.state_machine_arn = next(v for k, v in by_key.items() if "Workflow" in k and v.startswith("arn:"))
        self.http_endpoint = next(v for k, v in by_key.items() if "Api" in k and v.startswith("https://")).rstrip("/")
        self.aws_endpoint = "AWS"
        self.lambda_endpoint = "AWS"
        self.bedrock_endpoint = "Amazon Bedrock"

    def __enter__(self) -> "RemoteStack":
        return self

    def __exit__(self, *exc) -> None:
        return None

    def s3(self):
        return self.session.client("s3")

    def sfn(self):
        return self.session.client("stepfunctions")

    def upload_for_summary(self, key: str, body: bytes) -> None:
        """S3 itself notifies summarize-document."""
        self.s3().put_object(Bucket=self.bucket, Key=key, Body=body)

    def upload_for_workflow(self, key: str, body: bytes) -> str:
        """EventBridge itself starts the workflow; this finds that execution."""
        started = time.time()
        self.s3().put_object(Bucket=self.bucket, Key=key, Body=body)
        while time.time() - started < 120:
            for execution in self.sfn().list_executions(stateMachineArn=self.state_machine_arn,
                                                        maxResults=50)["executions"]:
                if execution["startDate"].timestamp() < started - 5:
                    continue
                desc = self.sfn().describe_execution(executionArn=execution["executionArn"])
                if json.loads(desc.get("input") or "{}").get("detail", {}).get("object", {}).get("key") == key:
                    return execution["executionArn"]
            time.sleep(2)
        raise TimeoutError(f"no workflow execution started for {key}")

    def wait_execution(self, arn: str, timeout: float = 900) -> dict:
        end = time.time() + timeout
        while time.time() < end:
            desc = self.sfn().describe_execution(executionArn=arn)
            if desc["status"] != "RUNNING":
                return desc
            time.sleep(2)
        raise TimeoutError(arn)

    def wait_object(self, keys: list[str], timeout: float = 900) -> str:
        end = time.time() + timeout
        while time.time() < end:
            for key in keys:
                try:
                    self.s3().head_object(Bucket=self.bucket, Key=key)
                    return key
                except self.s3().exceptions.ClientError:
                    pass
            time.sleep(2)
        raise TimeoutError(f"none of {keys} appeared")

    def get_json(self, key: str) -> dict:
        return json.loads(self.s3().get_object(Bucket=self.bucket, Key=key)["Body"].read())

    def keys(self, prefix: str) -> list[str]:
        out = self.s3().list_objects_v2(Bucket=self.bucket, Prefix=prefix)
        return sorted(o["Key"] for o in out.get("Contents", []))

    def http(self, route: str, body: dict) -> tuple[int, dict]:
        """Calls the HTTP API, signed with SigV4 for its IAM authorization."""
        method, path = route.split(" ", 1)
        data = json.dumps(body).encode()
        request = AWSRequest(method=method, url=f"{self.http_endpoint}{path}", data=data,
                             headers={"content-type": "application/json"})
        SigV4Auth(self.session.get_credentials(), "execute-api", self.session.region_name).add_auth(request)
        req = urllib.request.Request(request.url, data=data, method=method, headers=dict(request.headers))
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"{}")
