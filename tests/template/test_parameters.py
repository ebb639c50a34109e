"""Template parameters that reach IAM or a function's settings are bounded as the code expects.

- `FallbackModelResourceArns` goes into the fallback models' IAM statements as it is: its
  `AllowedPattern` (which CloudFormation matches against each value of the list) lets through
  only Bedrock foundation-model and inference-profile ARNs in a named Region, no wildcards.
- `ClassifyReviewBelowConfidence` is classify-ticket's `CLASSIFY_REVIEW_BELOW_CONFIDENCE`,
  with the code's default and range (functions/classify-ticket/src/config.rs).
"""

from __future__ import annotations

import re
import unittest

from test_permissions import ROOT, Stack, load_template

CLASSIFY_CONFIG = ROOT / "functions" / "classify-ticket" / "src" / "config.rs"

ACCEPTED = [
    "arn:aws:bedrock:us-east-1::foundation-model/meta.llama3-2-1b-instruct-v1:0",
    "arn:aws:bedrock:eu-central-1::foundation-model/meta.llama3-2-1b-instruct-v1:0",
    "arn:aws:bedrock:eu-west-1:123456789012:inference-profile/eu.meta.llama3-2-1b-instruct-v1:0",
    "arn:aws-us-gov:bedrock:us-gov-west-1::foundation-model/meta.llama3-8b-instruct-v1:0",
    "arn:aws-cn:bedrock:cn-north-1:123456789012:inference-profile/apac.meta.llama3-2-1b-instruct-v1:0",
]
REFUSED = [
    "*",
    "arn:aws:bedrock:*::foundation-model/meta.llama3-2-1b-instruct-v1:0",
    "arn:aws:bedrock:us-*::foundation-model/meta.llama3-2-1b-instruct-v1:0",
    "arn:aws:bedrock:::foundation-model/meta.llama3-2-1b-instruct-v1:0",
    "arn:aws:bedrock:us-east-1::foundation-model/*",
    "arn:aws:bedrock:us-east-1::foundation-model/meta.*",
    "arn:aws:bedrock:us-east-1::foundation-model/meta.llama3-2-1b-instruct-v1:?",
    "arn:aws:bedrock:us-east-1:*:inference-profile/us.meta.llama3-2-1b-instruct-v1:0",
    "arn:aws:bedrock:us-east-1:123456789012:inference-profile/*",
    "arn:aws:bedrock:us-east-1:123456789012:foundation-model/meta.llama3-2-1b-instruct-v1:0",
    "arn:aws:bedrock:us-east-1::inference-profile/us.meta.llama3-2-1b-instruct-v1:0",
    "arn:aws:bedrock:us-east-1:123456789012:guardrail/abc123",
    "arn:aws:bedrock:us-east-1:123456789012:*",
    "arn:aws:s3:::some-bucket/*",
    "arn:aws:iam::aws:policy/AdministratorAccess",
    "meta.llama3-2-1b-instruct-v1:0",
]


class FallbackModelResourceArnsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.template = load_template()
        cls.spec = cls.template["Parameters"]["FallbackModelResourceArns"]

    def test_the_list_and_its_pattern_are_checked_by_cloudformation(self):
        self.assertEqual(self.spec["Type"], "CommaDelimitedList")
        self.assertIn("AllowedPattern", self.spec)
        self.assertTrue(re.fullmatch(self.spec["AllowedPattern"], self.spec["Default"]))

    def test_foundation_model_and_inference_profile_arns_are_accepted(self):
        for arn in ACCEPTED:
            with self.subTest(arn=arn):
                self.assertTrue(re.fullmatch(self.spec["AllowedPattern"], arn))

    def test_wildcards_and_other_arns_are_refused(self):
        for arn in REFUSED:
            with self.subTest(arn=arn):
                self.assertIsNone(re.fullmatch(self.spec["AllowedPattern"], arn))

    def test_one_bad_arn_refuses_the_whole_list(self):
        good = ACCEPTED[0]
        for bad in REFUSED:
            with self.subTest(arn=bad), self.assertRaises(ValueError):
                Stack(self.template, "us-east-1", FallbackModelResourceArns=f"{good},{bad}")

    def test_accepted_arns_are_granted_as_given(self):
        stack = Stack(self.template, "us-east-1", FallbackModelResourceArns=",".join(ACCEPTED))
        grants = stack.grants("ClassifyTicketFunction")
        granted = {arn for action, arn in grants if action == "bedrock:InvokeModel"}
        self.assertLessEqual(set(ACCEPTED), granted)


class ClassifyReviewBelowConfidenceTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.template = load_template()
        cls.config = CLASSIFY_CONFIG.read_text()

    def test_the_parameter_has_the_codes_default_and_range(self):
        spec = self.template["Parameters"]["ClassifyReviewBelowConfidence"]
        default = re.search(r"DEFAULT_REVIEW_BELOW_CONFIDENCE: f64 = ([0-9.]+);", self.config)
        bounds = re.search(
            r'"CLASSIFY_REVIEW_BELOW_CONFIDENCE",\s*self\.classify_review_below_confidence,\s*'
            r"([0-9.]+),\s*([0-9.]+),?\s*\)",
            self.config,
        )
        self.assertIsNotNone(default, "no DEFAULT_REVIEW_BELOW_CONFIDENCE in config.rs")
        self.assertIsNotNone(bounds, "no in_range check of CLASSIFY_REVIEW_BELOW_CONFIDENCE in config.rs")
        self.assertEqual(spec["Type"], "Number")
        self.assertEqual(float(spec["Default"]), float(default.group(1)))
        self.assertEqual(
            (float(spec["MinValue"]), float(spec["MaxValue"])),
            (float(bounds.group(1)), float(bounds.group(2))),
        )

    def test_the_classify_function_gets_it(self):
        props = self.template["Resources"]["ClassifyTicketFunction"]["Properties"]
        self.assertEqual(
            props["Environment"]["Variables"].get("CLASSIFY_REVIEW_BELOW_CONFIDENCE"),
            {"Ref": "ClassifyReviewBelowConfidence"},
        )


if __name__ == "__main__":
    unittest.main()
