"""CloudFormation custom resource `Custom::CapacityPlan`: derives the concurrency caps from
the quota parameters (CloudFormation has no arithmetic) with the planner.

Create and Update compute the plan from the resource properties and answer SUCCESS with
the attributes `UploadConsumers`, `PartConcurrency`, `HttpPartConcurrency`,
`WorkflowMapConcurrency`, `BatchConcurrency` (integers as strings) and the figures
(`DocumentsPerHour`, `TokensPerMinuteAtFullLoad`, `RequestsPerMinuteAtFullLoad`,
`BindingLimit`, `Warnings`: the plan's warnings in short, also appended to the Reason and
logged whole); bad properties answer FAILED with the reason. Delete always answers SUCCESS (nothing to
remove). The answer is PUT to the presigned `ResponseURL` with urllib: an unanswered
custom resource holds the stack for an hour, so every path answers.
"""

from __future__ import annotations

import json
import urllib.request

from planner import (
    DEFAULT_LANE_SHARES, DEFAULT_SIZE_MIX, Lanes, Model, PlanError, Profile, Quotas, parse_shares, parse_sizes, plan,
)

#: Property -> (default, parser): what the template passes (all strings in the event); the
#: optional ones default to the planner's own defaults.
PROPERTIES = {
    "TokensPerMinuteQuota": (None, float),
    "RequestsPerMinuteQuota": (None, float),
    "HttpQuotaSharePercent": (None, float),
    "LambdaConcurrencyQuota": (str(Quotas().lambda_concurrency), int),
    "ContextWindow": (str(Model().context_window), int),
    "DocumentSizeMix": (DEFAULT_SIZE_MIX, parse_sizes),
    "CapacityLaneShares": (DEFAULT_LANE_SHARES, parse_shares),
    "ModelPromptTokensPerSecond": (f"{Model().prompt_tokens_per_s:g}", float),
    "ModelOutputTokensPerSecond": (f"{Model().output_tokens_per_s:g}", float),
    "WorkflowTranslateSharePercent": (f"{Profile().translate_share * 100:g}", float),
}
#: Longest `Warnings` attribute and warning part of the Reason (CloudFormation shows both).
WARNINGS_CHARS = 600
#: Properties CloudFormation adds itself.
IGNORED = {"ServiceToken", "ServiceTimeout"}
#: Seconds to wait for the ResponseURL.
PUT_TIMEOUT_S = 20


def inputs(properties: dict) -> tuple[Quotas, Profile, Model, Lanes]:
    """The planner's inputs from the resource properties; PlanError names a bad one."""
    unknown = sorted(set(properties) - set(PROPERTIES) - IGNORED)
    if unknown:
        raise PlanError(f"unknown properties: {', '.join(unknown)}")
    values = {}
    for name, (default, parse) in PROPERTIES.items():
        raw = properties.get(name, default)
        if raw is None:
            raise PlanError(f"property {name} is required")
        try:
            values[name] = parse(str(raw).strip())
        except (ValueError, TypeError) as e:
            raise PlanError(f"property {name}={raw!r} is not valid: {e}") from None
    quotas = Quotas(
        tokens_per_minute=values["TokensPerMinuteQuota"],
        requests_per_minute=values["RequestsPerMinuteQuota"],
        http_share=values["HttpQuotaSharePercent"] / 100,
        lambda_concurrency=values["LambdaConcurrencyQuota"],
    )
    profile = Profile(sizes=values["DocumentSizeMix"], count=0,
                      translate_share=values["WorkflowTranslateSharePercent"] / 100)
    model = Model(context_window=values["ContextWindow"],
                  prompt_tokens_per_s=values["ModelPromptTokensPerSecond"],
                  output_tokens_per_s=values["ModelOutputTokensPerSecond"])
    return quotas, profile, model, values["CapacityLaneShares"]


def attributes(properties: dict) -> dict[str, str]:
    """The resource's attributes for `properties`; logs each of the plan's warnings whole
    (the `Warnings` attribute and the Reason carry a short form)."""
    result = plan(*inputs(properties))
    for warning in result.warnings:
        print(json.dumps({"level": "WARN", "warning": warning}))
    data = {name: str(value) for name, value in result.caps().items()}
    data.update(
        DocumentsPerHour=str(round(result.uploads.documents_per_hour)),
        TokensPerMinuteAtFullLoad=str(round(result.tokens_per_minute)),
        RequestsPerMinuteAtFullLoad=str(round(result.requests_per_minute)),
        BindingLimit=result.binding,
        Warnings=short_warnings(result.warnings),
    )
    return data


def short_warnings(warnings: tuple[str, ...]) -> str:
    """The plan's warnings in one line of at most WARNINGS_CHARS ("" without any)."""
    text = " | ".join(warnings)
    return text if len(text) <= WARNINGS_CHARS else text[:WARNINGS_CHARS - 3] + "..."


def answer(event: dict) -> dict:
    """The response body for `event` (never raises)."""
    kind = event.get("RequestType")
    status, reason, data = "SUCCESS", "", {}
    try:
        if kind in ("Create", "Update"):
            data = attributes(event.get("ResourceProperties") or {})
            reason = f"caps {data['UploadConsumers']}/{data['PartConcurrency']}/" \
                     f"{data['HttpPartConcurrency']}/{data['WorkflowMapConcurrency']}/{data['BatchConcurrency']}"
            if data["Warnings"]:
                reason += f"; warnings: {data['Warnings']}"
        elif kind != "Delete":
            status, reason = "FAILED", f"unknown RequestType {kind!r}"
    except PlanError as e:
        status, reason = "FAILED", str(e)
    except Exception as e:  # noqa: BLE001  (answer FAILED rather than leave the stack waiting)
        status, reason = "FAILED", f"{type(e).__name__}: {e}"
    return {
        "Status": status,
        "Reason": reason[:1000],
        # One plan per stack: an Update keeps the id, so no Delete of the old one follows.
        "PhysicalResourceId": event.get("PhysicalResourceId") or f"{event.get('LogicalResourceId', 'CapacityPlan')}-plan",
        "StackId": event.get("StackId", ""),
        "RequestId": event.get("RequestId", ""),
        "LogicalResourceId": event.get("LogicalResourceId", ""),
        "NoEcho": False,
        "Data": data,
    }


def send(url: str, body: dict) -> int:
    """PUTs `body` to the presigned `url`; returns the HTTP status."""
    payload = json.dumps(body).encode()
    request = urllib.request.Request(url, data=payload, method="PUT",
                                     headers={"Content-Type": "", "Content-Length": str(len(payload))})
    with urllib.request.urlopen(request, timeout=PUT_TIMEOUT_S) as response:
        return response.status


def handler(event: dict, context: object = None) -> dict:
    """Lambda entry point: answers CloudFormation at the event's ResponseURL."""
    body = answer(event)
    # The ResponseURL is a presigned URL: not logged.
    print(json.dumps({"request": event.get("RequestType"), "status": body["Status"],
                      "reason": body["Reason"], "data": body["Data"]}))
    url = event.get("ResponseURL")
    if url:
        try:
            print(json.dumps({"response_status": send(url, body)}))
        except OSError as e:
            print(json.dumps({"error": f"could not send the response: {e}"}))
            raise
    return body
