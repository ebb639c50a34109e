"""Template parameters that reach IAM or a function's settings are bounded as the code expects.

- `FallbackModelResourceArns` goes into the fallback models' IAM statements as it is: its
  `AllowedPattern` (which CloudFormation matches against each value of the list) lets through
  only Bedrock foundation-model and inference-profile ARNs in a named Region, no wildcards.
- `ClassifyReviewBelowConfidence` is classify-ticket's `CLASSIFY_REVIEW_BELOW_CONFIDENCE`,
  with the code's default and range (functions/classify-ticket/src/config.rs).
- `ContextWindow`'s `MinValue` makes parts large enough that the document workflow's
  `MAX_PARTS` of them hold a text of `MaxTextBytes` (its default), with the part sizes
  summarize-document derives from the window (src/summarize.rs `Sizes::new`).
"""

from __future__ import annotations

import re
import unittest

from test_permissions import ROOT, Stack, load_template

CLASSIFY_CONFIG = ROOT / "functions" / "classify-ticket" / "src" / "config.rs"
SUMMARIZE_SRC = ROOT / "functions" / "summarize-document" / "src"

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


# Bytes of prose a token holds, the assumption in the MAX_PARTS documentation (English-like
# text: about 4; the capacity planner uses the same).
BYTES_PER_TOKEN = 4


def rust_const(path, name):
    """The integer value of `const NAME: <type> = N;` in `path`."""
    found = re.search(rf"const {name}: \w+ = ([0-9_]+);", path.read_text())
    if found is None:
        raise AssertionError(f"no const {name} in {path}")
    return int(found.group(1).replace("_", ""))


def rust_string_at(code, start):
    """The Rust string literal that opens at `code[start]` (a quote), unescaped."""
    out, i = [], start + 1
    while code[i] != '"':
        if code[i] == "\\":
            if code[i + 1] == "\n":  # a line continuation: the break and the indent go
                i += 2
                while code[i] in " \t":
                    i += 1
                continue
            out.append({"n": "\n", "t": "\t", '"': '"', "\\": "\\"}[code[i + 1]])
            i += 2
        else:
            out.append(code[i])
            i += 1
    return "".join(out)


def part_prompt_bytes():
    """An upper bound of the bytes of summarize-document's part prompt without its part:
    the system text of `prompt::part` (every `{...}` as 16 bytes: the numbers and the
    language names are shorter) in the Llama 3 chat format with a user turn and the
    assistant header. Its tokens are fewer: the estimate prices no ASCII byte above one."""
    code = (SUMMARIZE_SRC / "prompt.rs").read_text()
    facts = rust_string_at(code, code.index('"', code.index("const FACTS: &str =")))
    part = code.index("pub fn part(")
    system = rust_string_at(code, code.index('"', code.index("format!(", part)))
    system = re.sub(r"\{[^}]*\}", lambda m: facts if m.group(0) == "{FACTS}" else "x" * 16, system)
    header = "<|start_header_id|>{}<|end_header_id|>\n\n"
    framing = "<|begin_of_text|>" + "".join(header.format(r) for r in ("system", "user", "assistant"))
    return len(system.encode()) + len(framing) + 2 * len("<|eot_id|>")


class ContextWindowTest(unittest.TestCase):
    """Sizes::new: a part summary of `min(part_summary_tokens, window / 8)` (at least 16)
    tokens, parts of `window - part_len - (part prompt estimate + 16)` tokens (at least
    64); every part but the last is PART_FILL_PER_MILLE full and starts with up to
    overlap_per_mille of the part before it."""

    @classmethod
    def setUpClass(cls):
        cls.template = load_template()
        summarize = (SUMMARIZE_SRC / "summarize.rs").read_text()
        plan = summarize[summarize.index("impl Default for Plan") :]
        cls.part_summary_tokens = int(re.search(r"part_summary_tokens: (\d+)", plan).group(1))
        cls.overlap_per_mille = int(re.search(r"overlap_per_mille: (\d+)", plan).group(1))
        cls.fill_per_mille = rust_const(SUMMARIZE_SRC / "summarize.rs", "PART_FILL_PER_MILLE")
        cls.max_parts = rust_const(SUMMARIZE_SRC / "workflow.rs", "MAX_PARTS")
        cls.overhead = part_prompt_bytes() + 16

    def covered_tokens(self, window):
        """The fewest text tokens MAX_PARTS parts of `window`'s size hold (the last may be short)."""
        part_len = max(min(self.part_summary_tokens, window // 8), 16)
        part_tokens = max(window - part_len - self.overhead, 64)
        new_per_part = part_tokens * (self.fill_per_mille - self.overlap_per_mille) // 1000
        return (self.max_parts - 1) * new_per_part

    def test_the_smallest_window_fits_the_largest_text_in_max_parts(self):
        params = self.template["Parameters"]
        text_tokens = int(params["MaxTextBytes"]["Default"]) // BYTES_PER_TOKEN
        smallest = next(w for w in range(64, 1 << 20) if self.covered_tokens(w) >= text_tokens)
        window = int(params["ContextWindow"]["MinValue"])
        self.assertGreaterEqual(
            self.covered_tokens(window),
            text_tokens,
            f"{self.max_parts} parts of a {window}-token window hold less than "
            f"{text_tokens} tokens; the smallest window that fits is {smallest}",
        )
        self.assertLessEqual(smallest, window)

    def test_summarize_document_gets_both_parameters(self):
        variables = self.template["Globals"]["Function"]["Environment"]["Variables"]
        self.assertEqual(variables["BEDROCK_CONTEXT_WINDOW"], {"Ref": "ContextWindow"})
        props = self.template["Resources"]["SummarizeDocumentFunction"]["Properties"]
        self.assertEqual(props["Environment"]["Variables"]["MAX_TEXT_BYTES"], {"Ref": "MaxTextBytes"})

if __name__ == "__main__":
    unittest.main()
