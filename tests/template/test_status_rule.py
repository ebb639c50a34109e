"""The EventBridge rule that gives unfinished document workflow executions their failure
record (summarize-document's src/stopped.rs): it matches exactly the statuses the code
records (FAILED, TIMED_OUT, ABORTED) of the document workflow's executions, and delivers
them to summarize-document with retries and a dead-letter queue EventBridge may write to.
"""

from __future__ import annotations

import json
import re
import unittest

from test_permissions import ROOT, load_template

STOPPED = ROOT / "functions" / "summarize-document" / "src" / "stopped.rs"
SAMPLE = ROOT / "events" / "summarize-document-execution-status.json"
WORKFLOW_DEFINITION = "statemachines/document-workflow.asl.json"
FUNCTION = "SummarizeDocumentFunction"
UNFINISHED = {"FAILED", "TIMED_OUT", "ABORTED"}


def of_type(template, kind):
    return {n: r for n, r in template["Resources"].items() if r["Type"] == kind}


def matches(pattern, event):
    """EventBridge's matching for patterns of value lists and nested objects."""
    for field, wanted in pattern.items():
        value = event.get(field) if isinstance(event, dict) else None
        if isinstance(wanted, dict):
            if not matches(wanted, value):
                return False
        elif value not in wanted:
            return False
    return True


class StatusRuleTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.template = load_template()
        cls.resources = cls.template["Resources"]
        code = STOPPED.read_text()
        cls.detail_type = re.search(r'const STATUS_CHANGE: &str = "([^"]+)";', code).group(1)
        unfinished = re.search(r"const UNFINISHED: \[&str; \d+\] = \[([^\]]*)\];", code).group(1)
        cls.code_statuses = re.findall(r'"([A-Z_]+)"', unfinished)
        rules = {
            name: rule
            for name, rule in of_type(cls.template, "AWS::Events::Rule").items()
            if rule["Properties"].get("EventPattern", {}).get("detail-type") == [cls.detail_type]
        }
        assert len(rules) == 1, f"expected one execution status rule, found {sorted(rules)}"
        ((cls.name, cls.rule),) = rules.items()
        cls.pattern = cls.rule["Properties"]["EventPattern"]
        (cls.workflow,) = [
            name
            for name, machine in of_type(cls.template, "AWS::Serverless::StateMachine").items()
            if machine["Properties"].get("DefinitionUri") == WORKFLOW_DEFINITION
        ]

    def test_it_matches_exactly_the_statuses_the_code_records(self):
        statuses = self.pattern["detail"]["status"]
        self.assertEqual(sorted(statuses), sorted(UNFINISHED))
        self.assertEqual(sorted(statuses), sorted(self.code_statuses))

    def test_it_matches_only_the_document_workflows_executions(self):
        self.assertEqual(self.pattern["source"], ["aws.states"])
        # Ref of an AWS::Serverless::StateMachine is its ARN.
        self.assertEqual(self.pattern["detail"]["stateMachineArn"], [{"Ref": self.workflow}])
        self.assertEqual(set(self.pattern), {"source", "detail-type", "detail"})
        self.assertEqual(set(self.pattern["detail"]), {"status", "stateMachineArn"})

    def test_it_matches_the_sample_event_and_no_other_status_or_machine(self):
        event = json.loads(SAMPLE.read_text())
        arn = event["detail"]["stateMachineArn"]
        pattern = json.loads(json.dumps(self.pattern).replace(json.dumps({"Ref": self.workflow}), json.dumps(arn)))
        for status in ["FAILED", "TIMED_OUT", "ABORTED", "SUCCEEDED", "RUNNING", "PENDING_REDRIVE"]:
            event["detail"]["status"] = status
            with self.subTest(status=status):
                self.assertEqual(matches(pattern, event), status in UNFINISHED)
        event["detail"]["status"] = "FAILED"
        event["detail"]["stateMachineArn"] = arn.replace("DocumentWorkflow", "DocumentBatch")
        self.assertFalse(matches(pattern, event))

    def test_it_delivers_to_summarize_document_with_retries_and_a_dead_letter_queue(self):
        (target,) = self.rule["Properties"]["Targets"]
        self.assertEqual(target["Arn"], {"Fn::GetAtt": [FUNCTION, "Arn"]})
        retry = target.get("RetryPolicy", {})
        self.assertGreaterEqual(int(retry.get("MaximumRetryAttempts", 0)), 1, target)
        self.assertGreaterEqual(int(retry.get("MaximumEventAgeInSeconds", 0)), 60, target)
        queue_arn = target.get("DeadLetterConfig", {}).get("Arn")
        self.assertIsInstance(queue_arn, dict, target)
        queue, attribute = queue_arn["Fn::GetAtt"]
        self.assertEqual((self.resources[queue]["Type"], attribute), ("AWS::SQS::Queue", "Arn"))
        # EventBridge may send this rule's undeliverable events to the queue.
        allowed = [
            statement
            for policy in of_type(self.template, "AWS::SQS::QueuePolicy").values()
            if {"Ref": queue} in policy["Properties"]["Queues"]
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]
            if statement["Effect"] == "Allow"
            and statement.get("Principal") == {"Service": "events.amazonaws.com"}
            and statement["Action"] in ("sqs:SendMessage", ["sqs:SendMessage"])
            and {"Fn::GetAtt": [self.name, "Arn"]}
            in statement.get("Condition", {}).get("ArnEquals", {}).get("aws:SourceArn", [])
        ]
        self.assertTrue(allowed, f"no queue policy lets {self.name} send to {queue}")

    def test_eventbridge_may_invoke_the_function_for_this_rule(self):
        permissions = [
            p["Properties"]
            for p in of_type(self.template, "AWS::Lambda::Permission").values()
            if p["Properties"].get("SourceArn") == {"Fn::GetAtt": [self.name, "Arn"]}
        ]
        self.assertEqual(len(permissions), 1, permissions)
        (permission,) = permissions
        self.assertEqual(permission["Action"], "lambda:InvokeFunction")
        self.assertEqual(permission["Principal"], "events.amazonaws.com")
        self.assertEqual(permission["FunctionName"], {"Ref": FUNCTION})


if __name__ == "__main__":
    unittest.main()
