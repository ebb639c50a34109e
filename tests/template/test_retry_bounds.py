"""Every retry layer is bounded, and the worst case docs/reliability.md states is the one
the template and the state machine give.

- SQS event sources (uploads): the queue redrives to a dead-letter queue after the same
  number of receives the function is told (``UPLOAD_MAX_RECEIVES``), its visibility timeout
  is at least 6 x the function timeout, failures are reported per message, and the function
  knows the queue (``UPLOAD_QUEUE_URL``) to bring its failed messages back after a backoff.
- Asynchronous invocations (S3 notifications, EventBridge rules): the function has an
  ``EventInvokeConfig`` with ``MaximumRetryAttempts`` and an on-failure destination;
  every EventBridge target has a ``RetryPolicy`` and a dead-letter queue.
- Step Functions: every ``Retry`` entry has ``MaxAttempts`` (1 to 6) and, when it waits more than once, a capped delay;
  the most runs of one task (1 + the sum of its retriers' attempts) is what the document
  says, and so are the Lambda retries.
"""

from __future__ import annotations

import json
import re
import unittest

from test_permissions import ROOT, load_template

DOC = ROOT / "docs" / "reliability.md"


def states(definition: dict):
    """Every state of a definition, nested ones (Map, Parallel) included."""
    for name, state in definition.get("States", {}).items():
        yield name, state
        for inner in [state.get("ItemProcessor") or state.get("Iterator") or {}, *state.get("Branches", [])]:
            yield from states(inner)


def tasks_with_retries():
    for path in sorted((ROOT / "statemachines").glob("*.asl.json")):
        definition = json.loads(path.read_text())
        for name, state in states(definition):
            if state.get("Type") == "Task":
                yield f"{path.name}/{name}", state.get("Retry", [])


class RetryBoundsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.template = load_template()
        cls.doc = DOC.read_text()

    def resources(self, kind):
        return {n: r for n, r in self.template["Resources"].items() if r["Type"] == kind}

    def test_asynchronously_invoked_functions_retry_a_bounded_number_of_times(self):
        rules = self.resources("AWS::Events::Rule")
        targets = {t["Arn"]["Fn::GetAtt"][0] for r in rules.values() for t in r["Properties"]["Targets"]
                   if isinstance(t.get("Arn"), dict) and "Fn::GetAtt" in t["Arn"]}
        for name, fn in self.resources("AWS::Serverless::Function").items():
            events = fn["Properties"].get("Events", {}).values()
            if name not in targets and not any(e["Type"] in ("S3", "EventBridgeRule") for e in events):
                continue
            config = fn["Properties"].get("EventInvokeConfig")
            self.assertIsNotNone(config, f"{name} is invoked asynchronously without EventInvokeConfig")
            self.assertIn(config["MaximumRetryAttempts"], (0, 1, 2), name)
            self.assertIn("OnFailure", config["DestinationConfig"], name)
            documented = re.search(r"1 \+ (\d) Lambda async retries", self.doc)
            self.assertIsNotNone(documented, "docs/reliability.md states the Lambda retries")
            self.assertEqual(config["MaximumRetryAttempts"], int(documented.group(1)), name)

    def test_queue_consumers_have_bounded_receives_and_partial_batch_failures(self):
        functions = self.resources("AWS::Serverless::Function")
        mappings = self.resources("AWS::Lambda::EventSourceMapping")
        self.assertTrue(mappings)
        for name, mapping in mappings.items():
            props = mapping["Properties"]
            queue_id = props["EventSourceArn"]["Fn::GetAtt"][0]
            queue = self.template["Resources"][queue_id]["Properties"]
            fn = functions[props["FunctionName"]["Ref"]]["Properties"]
            self.assertEqual(props["FunctionResponseTypes"], ["ReportBatchItemFailures"], name)
            self.assertGreaterEqual(queue["VisibilityTimeout"], 6 * fn["Timeout"], name)
            redrive = queue["RedrivePolicy"]
            self.assertIn("deadLetterTargetArn", redrive, name)
            told = fn["Environment"]["Variables"]["UPLOAD_MAX_RECEIVES"]
            self.assertEqual(redrive["maxReceiveCount"], told, f"{name}: the function's limit is the queue's")
            # Its failed messages come back after a backoff it sets on that same queue.
            self.assertEqual(fn["Environment"]["Variables"].get("UPLOAD_QUEUE_URL"), {"Ref": queue_id}, name)
            self.assertIn("MaximumConcurrency", props["ScalingConfig"], name)

    def test_event_bridge_targets_have_a_retry_policy_and_a_dead_letter_queue(self):
        found = 0
        for name, rule in self.resources("AWS::Events::Rule").items():
            for target in rule["Properties"]["Targets"]:
                found += 1
                self.assertGreater(target["RetryPolicy"]["MaximumRetryAttempts"], 0, name)
                self.assertIn("Arn", target["DeadLetterConfig"], name)
        for name, fn in self.resources("AWS::Serverless::Function").items():
            for event_name, event in fn["Properties"].get("Events", {}).items():
                if event["Type"] == "EventBridgeRule":
                    found += 1
                    self.assertIn("RetryPolicy", event["Properties"], f"{name}/{event_name}")
                    self.assertIn("DeadLetterConfig", event["Properties"], f"{name}/{event_name}")
        self.assertGreater(found, 0)

    def test_every_state_machine_retry_is_bounded_and_the_worst_case_is_documented(self):
        most = 0
        for task, retriers in tasks_with_retries():
            for retrier in retriers:
                self.assertIn(retrier.get("MaxAttempts"), range(1, 7), f"{task}: {retrier}")
                backoff = retrier.get("BackoffRate", 2.0)
                if backoff > 1 and retrier["MaxAttempts"] > 1:
                    self.assertIn("MaxDelaySeconds", retrier, f"{task}: an unbounded backoff")
            most = max(most, 1 + sum(r["MaxAttempts"] for r in retriers))
        documented = re.search(r"\*\*Runs:\*\* at most (\d+)", self.doc)
        self.assertIsNotNone(documented, "docs/reliability.md states the most runs of a workflow step")
        self.assertEqual(most, int(documented.group(1)))


if __name__ == "__main__":
    unittest.main()
