"""docs/openapi.yaml describes exactly the HTTP API that is deployed and served.

The same set of routes (method and path) must be in all four places:
- the OpenAPI description;
- template.yaml's API Gateway routes;
- the functions' route tables (`Route::post("/path", ..)` / `Route::get(..)` in functions/*/src);
- the local stack's HTTP front (`HTTP_ROUTES` in tools/local-stack/stack.py).

Every operation also documents its errors with the shared error body, and every error type
the description names is one the code has.
"""

from __future__ import annotations

import ast
import re
import unittest

import yaml

from test_permissions import ROOT, load_template

OPENAPI = ROOT / "docs" / "openapi.yaml"
METHODS = ("get", "post", "put", "patch", "delete")


def normalize(path: str) -> str:
    """`{key+}` (API Gateway's greedy parameter) and `{key}` name the same thing."""
    return re.sub(r"\{(\w+)\+\}", r"{\1}", path)


def template_routes() -> set[tuple[str, str]]:
    routes = set()
    for res in load_template()["Resources"].values():
        if res["Type"] == "AWS::ApiGatewayV2::Route":
            method, path = res["Properties"]["RouteKey"].split(" ", 1)
            routes.add((method, normalize(path)))
    return routes


def code_routes() -> set[tuple[str, str]]:
    routes = set()
    for source in sorted((ROOT / "functions").glob("*/src/**/*.rs")):
        text = source.read_text()
        for method, path in re.findall(r'Route::(get|post|put|patch|delete)\(\s*"([^"]+)"', text):
            routes.add((method.upper(), normalize(path)))
    return routes


def stack_routes() -> set[tuple[str, str]]:
    tree = ast.parse((ROOT / "tools" / "local-stack" / "stack.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "HTTP_ROUTES" for t in node.targets):
            keys = ast.literal_eval(node.value).keys()
            return {(k.split(" ", 1)[0], normalize(k.split(" ", 1)[1])) for k in keys}
    raise AssertionError("no HTTP_ROUTES in stack.py")


def error_types_in_code() -> set[str]:
    """Every error type name the code can emit (quoted CamelCase names in error modules)."""
    names = set()
    for source in [*ROOT.glob("shared/*/src/**/*.rs"), *ROOT.glob("functions/*/src/**/*.rs")]:
        names |= set(re.findall(r'"([A-Z][A-Za-z]+)"', source.read_text()))
    return names


class OpenApiTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.spec = yaml.safe_load(OPENAPI.read_text())

    def described(self) -> set[tuple[str, str]]:
        return {(m.upper(), normalize(p)) for p, item in self.spec["paths"].items() for m in item if m in METHODS}

    def test_the_description_lists_exactly_the_deployed_routes(self):
        self.assertEqual(self.described(), template_routes())

    def test_the_functions_serve_exactly_the_described_routes(self):
        self.assertEqual(self.described(), code_routes())

    def test_the_local_stack_serves_exactly_the_described_routes(self):
        self.assertEqual(self.described(), stack_routes())

    def test_every_operation_documents_its_errors_with_the_error_body(self):
        error_ref = "#/components/schemas/Error"
        self.assertIn("Error", self.spec["components"]["schemas"])
        error = self.spec["components"]["schemas"]["Error"]
        self.assertEqual(error["properties"]["error"]["required"], ["type", "message"])
        for path, item in self.spec["paths"].items():
            for method, op in item.items():
                if method not in METHODS:
                    continue
                errors = {code: r for code, r in op["responses"].items() if str(code)[0] in "45"}
                self.assertIn("400", map(str, errors), f"{method} {path}: no 400")
                for code, response in errors.items():
                    if "$ref" in response:
                        response = self.spec["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
                    schema = response["content"]["application/json"]["schema"]
                    self.assertEqual(schema.get("$ref"), error_ref, f"{method} {path} {code}")

    def test_error_types_named_in_the_description_exist_in_the_code(self):
        named = set(self.spec["components"]["schemas"]["Error"]["properties"]["error"]["properties"]["type"]["enum"])
        missing = named - error_types_in_code()
        self.assertEqual(missing, set(), "error types described but never emitted")


if __name__ == "__main__":
    unittest.main()
