"""The capacity planner (tools/capacity) and the CapacityPlan custom resource.

- At full load the planned lanes stay within both quotas (less the HTTP share) over a grid
  of quotas and document profiles, unless the plan warns that a cap sits at its minimum.
- The binding limit is reported right for constructed cases.
- HTTP requests get their own part concurrency, sized as a burst within the HTTP share.
- A backlog that outlasts the upload queue's retention (template.yaml's, checked) warns.
- The command line and the custom resource default to the planner's own defaults.
- The custom resource handler answers Create/Update/Delete with SUCCESS and the caps, and
  bad properties with FAILED and a reason, PUT to a local HTTP server (never silence:
  CloudFormation waits an hour for a custom resource that does not answer).
- template.yaml's CapacityPlan passes exactly properties the handler knows, every one it
  requires, and uses the attributes it returns.
"""

import contextlib
import http.server
import io
import json
import pathlib
import sys
import threading
import unittest

from cfnlint.decode import decode

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools" / "capacity"))

import custom_resource  # noqa: E402
import planner  # noqa: E402
from planner import Lanes, Model, Profile, Quotas, plan  # noqa: E402

PROFILES = [
    Profile(sizes=((1_000, 100),)),
    Profile(sizes=((2_000, 70), (20_000, 25), (200_000, 5))),
    Profile(sizes=((20_000, 100),), translate_share=0.3),
    Profile(sizes=((500, 90), (300_000, 10)), translate_share=1.0),
]


class PlanTest(unittest.TestCase):
    def test_full_load_stays_within_the_quotas(self):
        for tpm in (600_000, 2_000_000, 6_000_000, 30_000_000):
            for rpm in (200, 1_600, 10_000):
                for share in (0.0, 0.2, 0.5):
                    for profile in PROFILES:
                        result = plan(Quotas(tpm, rpm, share), profile)
                        with self.subTest(tpm=tpm, rpm=rpm, share=share, sizes=profile.sizes):
                            at_minimum = [w for w in result.warnings if "below the minimum" in w]
                            lanes = (result.uploads, result.batch, result.workflow)
                            for lane in lanes:
                                if f"{lane.name}: its share allows" in " ".join(at_minimum):
                                    continue
                                usable = (1 - share) * lane.share
                                self.assertLessEqual(lane.tokens_per_minute, tpm * usable * 1.000001, lane)
                                self.assertLessEqual(lane.requests_per_minute, rpm * usable * 1.000001, lane)
                            if not at_minimum:
                                self.assertLessEqual(result.tokens_per_minute, result.token_budget * 1.000001)
                                self.assertLessEqual(result.requests_per_minute, result.request_budget * 1.000001)
                                self.assertLessEqual(result.lambdas, result.lambda_budget)

    def test_caps_are_within_their_ranges(self):
        for tpm in (1_000, 600_000, 1_000_000_000):
            result = plan(Quotas(tpm, 1_000_000))
            self.assertTrue(2 <= result.upload_consumers <= 1000)
            self.assertTrue(1 <= result.part_concurrency <= 32)
            self.assertTrue(1 <= result.http_part_concurrency <= 32)
            self.assertTrue(1 <= result.workflow_map_concurrency <= 40)
            self.assertTrue(1 <= result.batch_concurrency <= 10_000)

    def test_more_tokens_never_lower_a_cap(self):
        low, high = plan(Quotas(600_000)), plan(Quotas(6_000_000))
        for name, value in low.caps().items():
            self.assertLessEqual(value, high.caps()[name], name)

    def test_binding_limit_tokens(self):
        # Book-length documents: tokens run out long before requests or Lambda.
        result = plan(Quotas(6_000_000, 10_000), Profile(sizes=((100_000, 100),)))
        self.assertEqual(result.binding, planner.TOKENS)
        self.assertEqual(result.uploads.binding, planner.TOKENS)

    def test_binding_limit_requests(self):
        # Tiny documents and a huge token quota: one request each.
        result = plan(Quotas(1_000_000_000, 1_600), Profile(sizes=((50, 100),)))
        self.assertEqual(result.binding, planner.REQUESTS)
        self.assertEqual(result.batch.binding, planner.REQUESTS)

    def test_binding_limit_lambda_concurrency(self):
        result = plan(Quotas(1_000_000_000, 1_000_000, lambda_concurrency=50), Profile(sizes=((1_000, 100),)))
        self.assertEqual(result.binding, planner.LAMBDA)
        self.assertLessEqual(result.lambdas, result.lambda_budget)

    def test_model_slots_cap_calls_in_flight(self):
        # The emulator's generation slots: calls in flight stay within them.
        quotas = Quotas(1_000_000_000, None, 0.2, 1000, max_concurrent_calls=40)
        result = plan(quotas, Profile(sizes=((1_000, 100),)), Model(context_window=8192))
        self.assertEqual(result.uploads.binding, planner.MODEL_SLOTS)
        self.assertLessEqual(sum(l.peak_calls for l in (result.uploads, result.batch, result.workflow)), 32)

    def test_emulator_caps_never_ask_for_more_slots_than_it_has(self):
        for slots in (2, 4, 10, 32):
            for share in (0, 10, 50):
                caps = planner.emulator_caps(slots=slots, call_seconds=1.0, tokens_per_minute=50_000_000,
                                             requests_per_minute=None, http_share_percent=share,
                                             sizes=((600, 75), (3_000, 20), (16_000, 5)))
                with self.subTest(slots=slots, share=share):
                    self.assertEqual(caps["part_concurrency"], 1)
                    usable = max(2, int(slots * (100 - share) / 100))  # SQS's minimum is 2
                    self.assertEqual(caps["upload_consumers"], usable)
                    self.assertLessEqual(caps["batch_concurrency"], usable)
                    if usable > 2:
                        self.assertEqual(caps["binding"], planner.MODEL_SLOTS)

    def test_http_parts_start_together_within_the_http_share(self):
        full = planner.summary_call(Model(), planner.PROMPT_OVERHEAD_TOKENS + Model().part_tokens, Model().part_len)
        for tpm in (600_000, 2_000_000, 6_000_000, 30_000_000):
            for share in (0.1, 0.2, 0.5):
                result = plan(Quotas(tpm, 1_600, share))
                with self.subTest(tpm=tpm, share=share):
                    n = result.http_part_concurrency
                    if n > 1:  # 1 is the floor: one part at a time always runs
                        self.assertLessEqual(n * full.reserved, tpm * share)
                    if n < 32:
                        self.assertGreater((n + 1) * full.reserved, tpm * share)
        # At the default quota a full part reserves most of the HTTP share; raised, HTTP
        # requests run more parts at once than a background lane's document.
        self.assertEqual(plan().http_part_concurrency, 1)
        raised = plan(Quotas(6_000_000))
        self.assertGreater(raised.http_part_concurrency, raised.part_concurrency)
        self.assertEqual(plan(Quotas(http_share=0)).http_part_concurrency, 1)
        # The emulator's slots bound it too.
        self.assertEqual(plan(Quotas(1e9, None, 0.2, max_concurrent_calls=10),
                              model=Model(context_window=8192)).http_part_concurrency, 2)

    def test_a_backlog_longer_than_the_queue_retention_warns(self):
        per_hour = plan().uploads.documents_per_hour
        days = planner.UPLOAD_QUEUE_RETENTION_S / 86400
        inside = plan(profile=Profile(count=int(per_hour * 24 * days * 0.9)))
        self.assertFalse([w for w in inside.warnings if "retention" in w])
        beyond = plan(profile=Profile(count=int(per_hour * 24 * days * 1.1)))
        self.assertEqual(len([w for w in beyond.warnings if "retention of 10 days" in w]), 1)
        self.assertGreater(beyond.upload_drain_hours, 24 * days)

    def test_a_lane_without_share_gets_its_minimum_and_is_left_out(self):
        result = plan(lanes=Lanes(1, 0, 0))
        self.assertEqual((result.batch_concurrency, result.workflow.documents), (1, 1))
        self.assertAlmostEqual(result.tokens_per_minute, result.uploads.tokens_per_minute)
        self.assertFalse([w for w in result.warnings if w.startswith(("batch", "workflow"))])

    def test_one_long_document_counts_its_parts_and_combination(self):
        model = Model(context_window=8192)
        work = planner.summarize_workload(model, 20_000, width=4)
        parts = len(planner.split_parts(model, 20_000 * model.estimate_ratio))
        self.assertGreater(parts, 1)
        self.assertEqual(work.calls, parts + 1)  # the parts and the final call
        self.assertEqual(planner.summarize_workload(model, 500, width=4).calls, 1)

    def test_the_command_line_defaults_are_the_planners(self):
        import plan as command

        self.assertEqual(command.inputs(command.arguments([])), (Quotas(), Profile(), Model(), Lanes()))
        text = command.report(plan(), command.arguments([]))
        self.assertIn(f'"CapacityLaneShares={planner.DEFAULT_LANE_SHARES}"', text)

    def test_bad_inputs_are_plan_errors(self):
        for bad in (lambda: plan(Quotas(0)), lambda: plan(Quotas(http_share=1.5)),
                    lambda: plan(lanes=Lanes(0.5, 0.5, 0.5)), lambda: planner.parse_sizes("big"),
                    lambda: plan(profile=Profile(sizes=()))):
            with self.assertRaises(planner.PlanError):
                bad()


class Receiver(http.server.BaseHTTPRequestHandler):
    """Records the PUT bodies the handler sends."""

    bodies = []

    def do_PUT(self):
        length = int(self.headers["Content-Length"])
        Receiver.bodies.append(json.loads(self.rfile.read(length)))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


class CustomResourceTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = http.server.HTTPServer(("127.0.0.1", 0), Receiver)
        threading.Thread(target=cls.server.serve_forever, daemon=True).start()
        cls.url = f"http://127.0.0.1:{cls.server.server_port}/response?sig=x"

    @classmethod
    def tearDownClass(cls):
        cls.server.shutdown()
        cls.server.server_close()

    def event(self, kind, **properties):
        props = {"ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:x",
                 "TokensPerMinuteQuota": "600000", "RequestsPerMinuteQuota": "1600",
                 "HttpQuotaSharePercent": "20"}
        props.update(properties)
        return {"RequestType": kind, "ResponseURL": self.url, "StackId": "stack-id",
                "RequestId": f"req-{kind}", "LogicalResourceId": "CapacityPlan",
                "ResourceType": "Custom::CapacityPlan", "ResourceProperties": props}

    def send(self, event):
        Receiver.bodies.clear()
        with contextlib.redirect_stdout(io.StringIO()):  # the handler's log lines
            custom_resource.handler(event, None)
        self.assertEqual(len(Receiver.bodies), 1)
        return Receiver.bodies[0]

    def test_create_update_delete_succeed_with_the_caps(self):
        expected = plan(Quotas(600_000, 1_600, 0.2)).caps()
        for kind in ("Create", "Update"):
            body = self.send(self.event(kind))
            self.assertEqual(body["Status"], "SUCCESS", body)
            self.assertEqual((body["RequestId"], body["StackId"], body["LogicalResourceId"]),
                             (f"req-{kind}", "stack-id", "CapacityPlan"))
            self.assertTrue(body["PhysicalResourceId"])
            for name, value in expected.items():
                self.assertEqual(body["Data"][name], str(value))
            self.assertIn(body["Data"]["BindingLimit"], (planner.TOKENS, planner.REQUESTS, planner.LAMBDA))
        body = self.send(self.event("Delete", TokensPerMinuteQuota="nonsense"))
        self.assertEqual(body["Status"], "SUCCESS")

    def test_defaults_are_the_planners(self):
        quotas, profile, model, lanes = custom_resource.inputs(self.event("Create")["ResourceProperties"])
        self.assertEqual((quotas, model, lanes), (Quotas(), Model(), Lanes()))
        self.assertEqual(profile, Profile(count=0))

    def test_warnings_are_logged_and_given_in_short(self):
        warned = plan(Quotas(600_000, 1_600, 0.2), Profile(count=0)).warnings
        self.assertTrue(warned)
        Receiver.bodies.clear()
        log = io.StringIO()
        with contextlib.redirect_stdout(log):
            custom_resource.handler(self.event("Create"), None)
        body = Receiver.bodies[0]
        self.assertEqual(body["Status"], "SUCCESS")
        lines = [json.loads(line) for line in log.getvalue().splitlines()]
        self.assertEqual([l["warning"] for l in lines if l.get("level") == "WARN"], list(warned))
        self.assertTrue(warned[0].startswith(body["Data"]["Warnings"][:40]))
        self.assertLessEqual(len(body["Data"]["Warnings"]), custom_resource.WARNINGS_CHARS)
        self.assertIn("; warnings: ", body["Reason"])
        # A plan without warnings says nothing more.
        quiet = self.send(self.event("Create", TokensPerMinuteQuota="60000000", RequestsPerMinuteQuota="100000",
                                     DocumentSizeMix="1000:100"))
        self.assertEqual(quiet["Data"]["Warnings"], "")
        self.assertNotIn("warnings", quiet["Reason"])

    def test_more_tokens_give_more_consumers(self):
        low = self.send(self.event("Create"))["Data"]
        high = self.send(self.event("Create", TokensPerMinuteQuota="60000000"))["Data"]
        self.assertGreater(int(high["UploadConsumers"]), int(low["UploadConsumers"]))

    def test_bad_properties_fail_with_a_reason(self):
        cases = {
            "TokensPerMinuteQuota": ("lots", "TokensPerMinuteQuota"),
            "HttpQuotaSharePercent": ("95", "HTTP share"),
            "DocumentSizeMix": ("big", "size class"),
            "CapacityLaneShares": ("50,50", "lane shares"),
            "Surprise": ("1", "unknown properties: Surprise"),
        }
        for name, (value, reason) in cases.items():
            with self.subTest(name=name):
                body = self.send(self.event("Create", **{name: value}))
                self.assertEqual(body["Status"], "FAILED")
                self.assertIn(reason, body["Reason"])
                self.assertEqual(body["Data"], {})
        event = self.event("Update")
        del event["ResourceProperties"]["RequestsPerMinuteQuota"]
        body = self.send(event)
        self.assertEqual((body["Status"], body["Reason"]), ("FAILED", "property RequestsPerMinuteQuota is required"))
        body = self.send(dict(self.event("Create"), RequestType="Rotate"))
        self.assertEqual(body["Status"], "FAILED")


class TemplateTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.template, problems = decode(str(ROOT / "template.yaml"))
        assert not problems, problems

    def test_properties_match_the_handler(self):
        resource = self.template["Resources"]["CapacityPlan"]
        self.assertEqual(resource["Type"], "Custom::CapacityPlan")
        props = set(resource["Properties"]) - custom_resource.IGNORED
        self.assertEqual(sorted(props - set(custom_resource.PROPERTIES)), [])
        required = {n for n, (default, _) in custom_resource.PROPERTIES.items() if default is None}
        self.assertEqual(sorted(required - props), [])
        # Properties named after a parameter take that parameter.
        for name in props:
            if name in self.template["Parameters"]:
                self.assertEqual(resource["Properties"][name], {"Ref": name}, name)

    def test_parameter_defaults_are_the_planners(self):
        # The template, the handler and the command line plan the same documents by default.
        params = self.template["Parameters"]
        self.assertEqual(params["DocumentSizeMix"]["Default"], planner.DEFAULT_SIZE_MIX)
        self.assertEqual(custom_resource.PROPERTIES["DocumentSizeMix"][0], planner.DEFAULT_SIZE_MIX)
        self.assertEqual(planner.parse_sizes(planner.DEFAULT_SIZE_MIX), planner.Profile().sizes)
        self.assertEqual(params["CapacityLaneShares"]["Default"], planner.DEFAULT_LANE_SHARES)
        self.assertEqual(planner.parse_shares(planner.DEFAULT_LANE_SHARES), Lanes())

    def test_the_upload_queue_keeps_messages_as_long_as_the_planner_assumes(self):
        queue = self.template["Resources"]["UploadsQueue"]["Properties"]
        self.assertEqual(int(queue["MessageRetentionPeriod"]), planner.UPLOAD_QUEUE_RETENTION_S)

    def test_cap_parameters_override_the_plan_and_default_to_it(self):
        params, resources = self.template["Parameters"], self.template["Resources"]
        conditions = self.template["Conditions"]

        def derived(condition, parameter, attribute):
            # 0 (the default) derives the cap; any other value is the cap, as before the plan.
            self.assertEqual(params[parameter]["Default"], 0)
            self.assertEqual(params[parameter]["MinValue"], 0)
            self.assertEqual(conditions[condition], {"Fn::Equals": [{"Ref": parameter}, "0"]})
            return {"Fn::If": [condition, {"Fn::GetAtt": ["CapacityPlan", attribute]}, {"Ref": parameter}]}

        background = derived("DeriveSummaryConcurrency", "SummaryConcurrency", "PartConcurrency")
        http = derived("DeriveSummaryConcurrency", "SummaryConcurrency", "HttpPartConcurrency")
        buffered = resources["SummarizeDocumentFunction"]["Properties"]["Environment"]["Variables"]
        self.assertEqual(buffered["SUMMARY_CONCURRENCY"], background)
        self.assertEqual(buffered["HTTP_SUMMARY_CONCURRENCY"], http)
        # The streaming function serves HTTP requests only.
        stream = resources["SummarizeStreamFunction"]["Properties"]["Environment"]["Variables"]
        self.assertEqual(stream["HTTP_SUMMARY_CONCURRENCY"], http)
        self.assertNotIn("SUMMARY_CONCURRENCY", stream)
        workflow = resources["DocumentWorkflow"]["Properties"]["DefinitionSubstitutions"]
        self.assertEqual(workflow["MapMaxConcurrency"],
                         derived("DeriveWorkflowMaxConcurrency", "WorkflowMaxConcurrency", "WorkflowMapConcurrency"))

    def test_the_function_runs_the_handler_with_logs_only(self):
        function = self.template["Resources"]["CapacityPlanFunction"]["Properties"]
        self.assertEqual((function["Runtime"], function["Handler"]), ("python3.12", "custom_resource.handler"))
        self.assertEqual(pathlib.PurePath(function["CodeUri"]), pathlib.PurePath("tools/capacity"))
        self.assertNotIn("Policies", function)
        self.assertEqual(function.get("Tracing"), "PassThrough")

    def test_attributes_used_are_ones_the_handler_returns(self):
        with contextlib.redirect_stdout(io.StringIO()):  # the plan's warnings
            returned = set(custom_resource.attributes({"TokensPerMinuteQuota": "1", "RequestsPerMinuteQuota": "1",
                                                       "HttpQuotaSharePercent": "0"}))
        used = set()

        def walk(node):
            if isinstance(node, dict):
                for key, value in node.items():
                    if key == "Fn::GetAtt" and value[0] == "CapacityPlan":
                        used.add(value[1])
                    walk(value)
            elif isinstance(node, list):
                for value in node:
                    walk(value)

        walk(self.template["Resources"])
        self.assertIn("PartConcurrency", used)
        self.assertIn("HttpPartConcurrency", used)
        self.assertIn("WorkflowMapConcurrency", used)
        self.assertEqual(sorted(used - returned), [])


if __name__ == "__main__":
    unittest.main()
