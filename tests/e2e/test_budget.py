"""The synchronous routes keep the API time budget over the local stack: work estimated
to need longer is refused before any model call (POST /summaries, /translations and
/tickets/classify), and work that runs out of budget anyway ends with our function's typed
504 inside the gateway's integration timeout, while no model call starts after the answer
(counted by the emulator's `/_local/stats`).

Run: cargo build -q --bins -p bedrock-local -p lambda-local -p summarize-document
     -p classify-ticket -p translate -p jobs
     .venv/bin/python -m unittest tests/e2e/test_budget.py
"""

from __future__ import annotations

import shutil
import sys
import time
import unittest
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools" / "local-stack"))

from stack import ROOT, LocalStack, StackOptions  # noqa: E402

RULES = Path(__file__).with_name("scripted-rules.json")
SAMPLES = ROOT / "shared" / "tokens" / "tests" / "data" / "languages"
TICKET = {"subject": "Charged twice for my subscription",
          "body": "Hello, I was billed two times this month for the same plan. Please refund one of the charges."}


def options(name: str, latency_ms: int, **env: str) -> StackOptions:
    """A stack whose emulator answers every call after ``latency_ms``, with ``env`` for every
    function."""
    opts = StackOptions(scripted=RULES, context_window=2048, log_dir=ROOT / "target" / f"local-stack-{name}",
                        emulator_args=["--added-latency-ms", str(latency_ms)], function_env=env)
    shutil.rmtree(opts.log_dir, ignore_errors=True)
    return opts


def model_calls(stack: LocalStack) -> int:
    """Model calls the emulator has received."""
    return stack.emulator_stats()["requests"]


class SyncBudget(unittest.TestCase):
    def test_work_estimated_over_the_budget_is_refused_before_any_model_call(self):
        # A 5 s budget and a slow model (20 generated tokens/s): a summary or a translation
        # of the sample, or any classification (one call counted at its max_gen_len, 256
        # tokens: 12.8 s), is estimated over it.
        opts = options("budget-refused", 8000, API_TIME_BUDGET_MS="5000", API_GENERATION_TOKENS_PER_SECOND="20")
        with LocalStack(opts) as stack:
            sample = (SAMPLES / "en.txt").read_text()
            for route, body in [
                ("POST /summaries", {"text": sample}),
                ("POST /translations", {"text": sample, "source_language": "en", "target_language": "de"}),
                ("POST /tickets/classify", TICKET),
            ]:
                with self.subTest(route=route):
                    status, answer = stack.http(route, body)
                    self.assertEqual(status, 422, answer)
                    self.assertEqual(answer["error"]["type"], "SyncBudgetExceeded")
                    self.assertIn("Prefer: respond-async", answer["error"]["message"])
            self.assertEqual(model_calls(stack), 0)
            # A short translation is estimated within the same budget: it reaches the model
            # (whose 8 s answer the budget then cuts short).
            status, answer = stack.http("POST /translations", {"text": "Good morning.", "source_language": "en",
                                                               "target_language": "de"})
            self.assertEqual((status, answer["error"]["type"]), (504, "DeadlineExceeded"), answer)
            self.assertEqual(model_calls(stack), 1)

    def test_work_that_runs_out_of_the_default_budget_is_our_504_and_no_call_follows_it(self):
        # The default budget (28 s) and rates so high that the estimate lets the request
        # through; the model answers after 40 s. The HTTP front stops waiting at 30 s, as
        # API Gateway does, and then answers 503 {"message": "Service Unavailable"} itself:
        # our function's typed 504 proves that it answered first.
        opts = options("budget-overrun", 40000, API_PROMPT_TOKENS_PER_SECOND="100000",
                       API_GENERATION_TOKENS_PER_SECOND="100000")
        with LocalStack(opts) as stack:
            status, headers, answer = stack.request("POST", "/summaries", {"text": (SAMPLES / "en.txt").read_text()})
            self.assertEqual(status, 504, answer)
            self.assertEqual(headers["content-type"], "application/json")
            self.assertNotIn("message", answer, "the HTTP front's own answer, not the function's")
            self.assertEqual(answer["error"]["type"], "DeadlineExceeded", answer)
            self.assertIn("message", answer["error"])
            self.assertLessEqual(set(answer), {"error", "usage"}, answer)
            at_answer = model_calls(stack)
            self.assertGreater(at_answer, 0)
            # Any call still running or retried would show up at once; give it a moment.
            time.sleep(3)
            self.assertEqual(model_calls(stack), at_answer, "a model call started after the 504")


if __name__ == "__main__":
    unittest.main(verbosity=2)
