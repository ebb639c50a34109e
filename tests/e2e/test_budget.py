"""The synchronous routes keep the API time budget over the local stack: work estimated
to need longer is refused before any model call, and work that runs out of budget anyway
ends with 504 while no model call starts after the answer (counted in the emulator's log,
one line per request received).
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
#: The emulator answers after this long; the budgets below are shorter.
LATENCY_MS = 8000


def requests_received(stack: LocalStack) -> int:
    return (stack.options.log_dir / "bedrock-local.log").read_text().count("request received")


def options(name: str, budget_ms: int, **env: str) -> StackOptions:
    opts = StackOptions(scripted=RULES, context_window=2048, log_dir=ROOT / "target" / f"local-stack-{name}",
                        emulator_args=["--added-latency-ms", str(LATENCY_MS)],
                        function_env={"API_TIME_BUDGET_MS": str(budget_ms), **env})
    shutil.rmtree(opts.log_dir, ignore_errors=True)
    return opts


class SyncBudget(unittest.TestCase):
    def test_work_estimated_over_the_budget_is_refused_before_any_model_call(self):
        with LocalStack(options("budget-refused", 2000)) as stack:
            status, body = stack.http("POST /summaries", {"text": (SAMPLES / "en.txt").read_text()})
            self.assertEqual(status, 422, body)
            self.assertEqual(body["error"]["type"], "SyncBudgetExceeded")
            self.assertIn("Prefer: respond-async", body["error"]["message"])
            self.assertEqual(requests_received(stack), 0)

    def test_work_that_runs_out_of_budget_is_504_and_no_call_follows_the_answer(self):
        # Rates so high that the estimate lets the request through, and a budget in which an
        # attempt may start (the client starts none that has under 2 s); the model is slower.
        opts = options("budget-overrun", 5000, API_PROMPT_TOKENS_PER_SECOND="100000",
                       API_GENERATION_TOKENS_PER_SECOND="100000")
        with LocalStack(opts) as stack:
            status, body = stack.http("POST /summaries", {"text": (SAMPLES / "en.txt").read_text()})
            self.assertEqual(status, 504, body)
            at_answer = requests_received(stack)
            self.assertGreater(at_answer, 0)
            # Let any call that would still be running or retried show up, then count again.
            time.sleep(LATENCY_MS / 1000)
            self.assertEqual(requests_received(stack), at_answer, "a model call started after the 504")


if __name__ == "__main__":
    unittest.main(verbosity=2)
