"""Reference (yardstick, not product code): ticket classification as a Python Lambda with boto3.

Written the way the common AWS samples write it: the boto3 client is created at module
load (once per cold start), the Llama 3 prompt is built as a string, ``invoke_model`` is
called once, and the JSON answer is parsed and checked against the categories. It does the
same job as ``functions/classify-ticket`` for the benchmarks in ``benches/`` (same taxonomy,
same answer shape, same prefill), minus what such samples usually leave out: no language
detection and no neutralization of Llama special tokens in the ticket.

Handler: ``classify_ticket.handler`` (API Gateway HTTP API payload 2.0, or a plain ticket
as Step Functions task input).
"""

import base64
import json
import os

import boto3
from botocore.exceptions import ClientError

MODEL_ID = os.environ.get("BEDROCK_MODEL_ID", "us.meta.llama3-2-3b-instruct-v1:0")
MAX_GEN_LEN = int(os.environ.get("CLASSIFY_MAX_GEN_LEN", "256"))
MAX_BODY_CHARS = int(os.environ.get("CLASSIFY_MAX_BODY_CHARS", "20000"))
MAX_SUBJECT_CHARS = int(os.environ.get("CLASSIFY_MAX_SUBJECT_CHARS", "500"))

bedrock = boto3.client("bedrock-runtime")

CATEGORIES = {
    "billing": "Charges, invoices, payments, refunds, subscriptions, plans and pricing.",
    "technical": "Errors, bugs, crashes, outages, slowness, integrations, setup and how-to "
                 "questions about using the product.",
    "account": "Signing in, passwords, two-factor authentication, profile or email changes, "
               "permissions, opening or closing an account.",
    "shipping": "Delivery status, delays, lost or damaged parcels, delivery addresses, returns "
                "and exchanges of physical goods.",
    "product_feedback": "Feature requests, suggestions, praise or criticism of the product "
                        "itself, with no problem to fix now.",
    "other": "Anything that fits none of the categories above.",
}
PRIORITIES = {
    "low": "No impact on the customer's work: questions, suggestions, feedback.",
    "medium": "An inconvenience, or a problem with a workaround.",
    "high": "The customer is blocked, or money is at stake (a wrong charge, a missing delivery).",
    "urgent": "An outage, a security problem or data loss, a legal threat, or many users "
              "affected: needs action now.",
}
QUEUES = {
    "billing": "billing-support",
    "technical": "tech-support",
    "account": "account-support",
    "shipping": "logistics-support",
    "product_feedback": "product-feedback",
    "other": "general-support",
}
SENTIMENTS = ("positive", "neutral", "negative")

SYSTEM_PROMPT = (
    "You are an assistant that sorts customer support tickets for a help desk.\n\n"
    "Categories:\n" + "".join(f"- {k}: {v}\n" for k, v in CATEGORIES.items())
    + "\nPriorities:\n" + "".join(f"- {k}: {v}\n" for k, v in PRIORITIES.items())
    + "\nReply with a JSON object only, like this:\n"
    '{"category": "...", "priority": "...", "sentiment": {"label": "positive|neutral|negative", '
    '"score": 0.0}, "confidence": 0.0, "rationale": "..."}'
)


def handler(event, context):
    """Lambda entry point."""
    if isinstance(event, dict) and "http" in event.get("requestContext", {}):
        return http_handler(event)
    return classify(event)


def http_handler(event):
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        body = base64.b64decode(body).decode("utf-8")
    try:
        ticket = json.loads(body)
    except ValueError:
        return response(400, {"error": {"type": "InvalidInput", "message": "body is not JSON"}})
    try:
        return response(200, classify(ticket))
    except ValueError as err:
        return response(400, {"error": {"type": "InvalidInput", "message": str(err)}})
    except ClientError as err:
        code = err.response["Error"]["Code"]
        status = 429 if code == "ThrottlingException" else 502
        return response(status, {"error": {"type": code, "message": str(err)}})


def response(status, body):
    return {"statusCode": status, "headers": {"content-type": "application/json"}, "body": json.dumps(body)}


def classify(ticket):
    if not isinstance(ticket, dict):
        raise ValueError("the ticket must be a JSON object")
    subject = ticket.get("subject") or ""
    body = ticket.get("body") or ""
    if not subject.strip() and not body.strip():
        raise ValueError("subject and body are empty")
    if len(subject) > MAX_SUBJECT_CHARS or len(body) > MAX_BODY_CHARS:
        raise ValueError("ticket too long")

    message = ""
    if ticket.get("channel"):
        message += f"Channel: {ticket['channel']}\n"
    if ticket.get("customer_tier"):
        message += f"Customer tier: {ticket['customer_tier']}\n"
    message += f"Subject: {subject}\n\nBody:\n{body}"
    prompt = (
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
        f"{SYSTEM_PROMPT}<|eot_id|><|start_header_id|>user<|end_header_id|>\n\n"
        f"{message}<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n{{"
    )
    result = bedrock.invoke_model(
        modelId=MODEL_ID,
        body=json.dumps({"prompt": prompt, "max_gen_len": MAX_GEN_LEN, "temperature": 0.1}),
    )
    answer = json.loads(result["body"].read())
    usage = {
        "prompt_tokens": answer.get("prompt_token_count", 0),
        "generation_tokens": answer.get("generation_token_count", 0),
        "model_calls": 1,
    }
    text = "{" + answer["generation"]
    try:
        parsed, _ = json.JSONDecoder().raw_decode(text)
    except ValueError:
        parsed = {}
    category = str(parsed.get("category", "")).strip().lower()
    priority = str(parsed.get("priority", "")).strip().lower()
    if category not in CATEGORIES or priority not in PRIORITIES:
        out = {"category": "unclassified", "priority": "medium", "sentiment": None, "queue": "triage",
               "confidence": 0.0, "rationale": "The model did not give a valid classification.",
               "needs_review": True}
    else:
        sentiment = parsed.get("sentiment") or {}
        out = {
            "category": category,
            "priority": priority,
            "sentiment": {"label": sentiment.get("label") if sentiment.get("label") in SENTIMENTS else "neutral",
                          "score": float(sentiment.get("score", 0.5))},
            "queue": QUEUES[category],
            "confidence": float(parsed.get("confidence", 0.5)),
            "rationale": str(parsed.get("rationale", ""))[:300],
            "needs_review": False,
        }
    out["model"] = MODEL_ID
    out["usage"] = usage
    if "metadata" in ticket:
        out["metadata"] = ticket["metadata"]
    print(json.dumps({"message": "ticket classified", "category": out["category"],
                      "priority": out["priority"], "queue": out["queue"]}))
    return out
