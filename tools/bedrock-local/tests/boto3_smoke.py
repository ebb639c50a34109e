"""boto3 against bedrock-local: InvokeModel, InvokeModelWithResponseStream and typed errors.

Needs a running server started with tests/boto3_rules.json; its URL comes from the
BEDROCK_ENDPOINT environment variable. Run by tests/run_boto3.sh.
"""

import json
import os
import unittest

import boto3
from botocore.config import Config
from botocore.exceptions import EventStreamError

MODEL = "us.meta.llama3-2-3b-instruct-v1:0"
PROMPT = (
    "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n"
    "Say hello<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n"
)


def client():
    return boto3.client(
        "bedrock-runtime",
        region_name="us-east-1",
        endpoint_url=os.environ["BEDROCK_ENDPOINT"],
        aws_access_key_id="test",
        aws_secret_access_key="test",
        config=Config(retries={"total_max_attempts": 1, "mode": "standard"}),
    )


def body(prompt, **params):
    return json.dumps({"prompt": prompt, "max_gen_len": 64, "temperature": 0, **params})


class Boto3Smoke(unittest.TestCase):
    def setUp(self):
        self.client = client()
        self.addCleanup(self.client.close)

    def test_invoke_model(self):
        response = self.client.invoke_model(modelId=MODEL, body=body(PROMPT))
        reply = json.loads(response["body"].read())
        self.assertEqual(reply["generation"], "Hello from bedrock-local")
        self.assertEqual(reply["stop_reason"], "stop")
        self.assertGreater(reply["prompt_token_count"], 0)
        self.assertEqual(reply["generation_token_count"], 3)
        self.assertEqual(response["contentType"], "application/json")

    def test_invoke_model_arn(self):
        arn = "arn:aws:bedrock:us-east-1:123456789012:inference-profile/" + MODEL
        reply = json.loads(self.client.invoke_model(modelId=arn, body=body(PROMPT))["body"].read())
        self.assertEqual(reply["generation"], "Hello from bedrock-local")

    def test_invoke_model_with_response_stream(self):
        response = self.client.invoke_model_with_response_stream(modelId=MODEL, body=body(PROMPT))
        self.addCleanup(response["body"].close)
        chunks = [json.loads(event["chunk"]["bytes"]) for event in response["body"]]
        self.assertGreaterEqual(len(chunks), 2)
        self.assertEqual("".join(c["generation"] for c in chunks), "Hello from bedrock-local")
        self.assertIsNotNone(chunks[0]["prompt_token_count"])
        last = chunks[-1]
        self.assertEqual(last["stop_reason"], "stop")
        self.assertEqual(last["amazon-bedrock-invocationMetrics"]["outputTokenCount"], 3)

    def test_validation_exception(self):
        with self.assertRaises(self.client.exceptions.ValidationException) as caught:
            self.client.invoke_model(modelId=MODEL, body=body(PROMPT, temperature=3))
        self.assertIn("temperature", caught.exception.response["Error"]["Message"])

    def test_resource_not_found(self):
        with self.assertRaises(self.client.exceptions.ResourceNotFoundException):
            self.client.invoke_model(modelId="no.such-model-v1:0", body=body(PROMPT))

    def test_throttling_exception(self):
        with self.assertRaises(self.client.exceptions.ThrottlingException):
            self.client.invoke_model(modelId=MODEL, body=body("please throttle me"))

    def test_mid_stream_exception(self):
        response = self.client.invoke_model_with_response_stream(
            modelId=MODEL, body=body("please fail mid-stream")
        )
        self.addCleanup(response["body"].close)
        received = []
        # boto3 raises exceptions inside a stream as EventStreamError carrying the error code.
        with self.assertRaises(EventStreamError) as caught:
            for event in response["body"]:
                received.append(json.loads(event["chunk"]["bytes"]))
        self.assertEqual(caught.exception.response["Error"]["Code"], "modelStreamErrorException")
        self.assertEqual([c["generation"] for c in received], ["one"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
