"""The stack's data and entry points are protected as documented.

- The jobs table (every function's `JOBS_TABLE`): on-demand capacity, encrypted at rest, the
  TTL on the attribute lambda-kit writes (`expires_at`), point-in-time recovery.
- Function URLs: exactly the streaming functions (`RESPONSE_STREAMING=true`) have one, signed
  with SigV4 (`AWS_IAM`) and streaming (`RESPONSE_STREAM`).
- The HTTP API: every route is on `HttpApi` and uses the authorizer `ApiAuthorization`
  chooses (IAM, or the JWT authorizer), and no other API or function event makes routes.
"""

from __future__ import annotations

import re
import unittest

from test_permissions import ROOT, Stack, is_streaming, load_template

JOBS_CODE = ROOT / "shared" / "lambda-kit" / "src" / "jobs.rs"
JWT = {"ApiAuthorization": "JWT", "JwtIssuer": "https://issuer.example.com", "JwtAudience": "app"}


def of_type(template, kind):
    return {n: r for n, r in template["Resources"].items() if r["Type"] == kind}


class JobsTableTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.template = load_template()
        functions = of_type(cls.template, "AWS::Serverless::Function").values()
        env = [f["Properties"].get("Environment", {}).get("Variables", {}) for f in functions]
        refs = [e.get("JOBS_TABLE") for e in env]
        cls.names = {r["Ref"] for r in refs if isinstance(r, dict) and "Ref" in r}

    def table(self):
        (name,) = self.names
        return self.template["Resources"][name]

    def test_the_functions_share_one_dynamodb_table(self):
        self.assertEqual(len(self.names), 1, self.names)
        self.assertEqual(self.table()["Type"], "AWS::DynamoDB::Table")

    def test_it_is_on_demand_encrypted_expiring_and_recoverable(self):
        props = self.table()["Properties"]
        self.assertEqual(props.get("BillingMode"), "PAY_PER_REQUEST")
        self.assertIs(props.get("SSESpecification", {}).get("SSEEnabled"), True)
        self.assertEqual(
            props.get("TimeToLiveSpecification"), {"AttributeName": "expires_at", "Enabled": True}
        )
        self.assertIs(
            props.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled"), True
        )

    def test_the_ttl_attribute_is_the_epoch_seconds_number_the_code_writes(self):
        attribute = self.table()["Properties"]["TimeToLiveSpecification"]["AttributeName"]
        code = JOBS_CODE.read_text()
        self.assertRegex(code, rf'"{re.escape(attribute)}"\.into\(\),\s*AttributeValue::N\(')


class FunctionUrlTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.template = load_template()
        cls.functions = of_type(cls.template, "AWS::Serverless::Function")

    def test_exactly_the_streaming_functions_have_a_url(self):
        streaming = {n for n in self.functions if is_streaming(self.template, n)}
        with_url = {n for n, f in self.functions.items() if "FunctionUrlConfig" in f["Properties"]}
        self.assertEqual(sorted(streaming), ["SummarizeStreamFunction", "TranslateStreamFunction"])
        self.assertEqual(with_url, streaming)
        self.assertEqual(of_type(self.template, "AWS::Lambda::Url"), {})

    def test_streaming_urls_are_signed_and_stream(self):
        for name, function in self.functions.items():
            if not is_streaming(self.template, name):
                continue
            config = function["Properties"]["FunctionUrlConfig"]
            with self.subTest(function=name):
                self.assertEqual(config.get("AuthType"), "AWS_IAM")
                self.assertEqual(config.get("InvokeMode"), "RESPONSE_STREAM")


class ApiAuthorizationTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.template = load_template()
        cls.routes = of_type(cls.template, "AWS::ApiGatewayV2::Route")

    def routes_in(self, stack):
        return {n: stack.eval(r["Properties"]) for n, r in self.routes.items()}

    def test_the_routes_are_on_the_one_http_api(self):
        self.assertTrue(self.routes)
        self.assertEqual(list(of_type(self.template, "AWS::ApiGatewayV2::Api")), ["HttpApi"])
        for name, route in self.routes.items():
            with self.subTest(route=name):
                self.assertEqual(route["Properties"]["ApiId"], {"Ref": "HttpApi"})

    def test_with_iam_every_route_needs_a_signed_request(self):
        for route in self.routes_in(Stack(self.template, "us-east-1")).values():
            with self.subTest(route=route["RouteKey"]):
                self.assertEqual(route.get("AuthorizationType"), "AWS_IAM")
                self.assertNotIn("AuthorizerId", route)

    def test_with_jwt_every_route_uses_the_jwt_authorizer(self):
        stack = Stack(self.template, "us-east-1", **JWT)
        authorizers = of_type(self.template, "AWS::ApiGatewayV2::Authorizer")
        self.assertEqual(list(authorizers), ["JwtAuthorizer"])
        authorizer = authorizers["JwtAuthorizer"]
        self.assertTrue(stack.condition(authorizer["Condition"]))
        props = stack.eval(authorizer["Properties"])
        self.assertEqual(props["AuthorizerType"], "JWT")
        self.assertEqual(props["ApiId"], stack.ref("HttpApi"))
        self.assertEqual(props["JwtConfiguration"]["Issuer"], JWT["JwtIssuer"])
        for route in self.routes_in(stack).values():
            with self.subTest(route=route["RouteKey"]):
                self.assertEqual(route.get("AuthorizationType"), "JWT")
                self.assertEqual(route.get("AuthorizerId"), stack.ref("JwtAuthorizer"))

    def test_the_jwt_authorizer_exists_only_with_jwt(self):
        condition = self.template["Resources"]["JwtAuthorizer"]["Condition"]
        self.assertFalse(Stack(self.template, "us-east-1").condition(condition))

    def test_no_other_api_or_function_event_makes_routes(self):
        for kind in ("AWS::Serverless::Api", "AWS::Serverless::HttpApi", "AWS::ApiGateway::RestApi"):
            self.assertEqual(of_type(self.template, kind), {}, kind)
        for name, function in of_type(self.template, "AWS::Serverless::Function").items():
            events = function["Properties"].get("Events", {}).values()
            with self.subTest(function=name):
                self.assertEqual([e["Type"] for e in events if e["Type"] in ("Api", "HttpApi")], [])


if __name__ == "__main__":
    unittest.main()
