"""The evaluation harness's scoring and report rendering on known inputs (no model, no stack).

Run: python -m unittest discover -s tests/eval   (from the repository root)
"""

from __future__ import annotations

import importlib.util
import json
import sys
import unittest
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tools" / "eval"))

import report  # noqa: E402
import scoring  # noqa: E402

# tools/eval/eval.py under another name (the repository's eval/ folder is a namespace package
# named eval); it imports the local stack only when run.
_spec = importlib.util.spec_from_file_location("eval_harness", ROOT / "tools" / "eval" / "eval.py")
harness = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(harness)

HAVE_SACREBLEU = importlib.util.find_spec("sacrebleu") is not None


class ClassificationTest(unittest.TestCase):
    def test_accuracy(self):
        self.assertEqual(scoring.accuracy(["a", "b", "c", "a"], ["a", "b", "a", "b"]), 0.5)
        self.assertIsNone(scoring.accuracy([], []))
        with self.assertRaises(ValueError):
            scoring.accuracy(["a"], [])

    def test_macro_f1_by_hand(self):
        # a: tp 1, fp 1, fn 1 -> 2/4 = 0.5; b: tp 1, fp 1, fn 0 -> 2/3; c: tp 0 -> 0.
        expected = ["a", "a", "b", "c"]
        predicted = ["a", "b", "b", "a"]
        self.assertAlmostEqual(scoring.macro_f1(expected, predicted), (0.5 + 2 / 3 + 0) / 3)

    def test_macro_f1_counts_invented_labels(self):
        # `unclassified` is never expected: F1 0 for it, and the missed labels lose recall.
        # billing: tp 1, fn 1 -> 2/3; unclassified: 0.
        self.assertAlmostEqual(scoring.macro_f1(["billing", "billing"], ["billing", "unclassified"]), (2 / 3) / 2)
        self.assertEqual(scoring.macro_f1(["x", "y"], ["x", "y"]), 1.0)

    def test_predicted_labels(self):
        response = {"category": "billing", "priority": "high", "sentiment": {"label": "negative", "score": 0.8}}
        self.assertEqual(scoring.predicted_labels(response),
                         {"category": "billing", "priority": "high", "sentiment": "negative"})
        self.assertEqual(scoring.predicted_labels({"category": "unclassified", "priority": "medium",
                                                   "sentiment": None})["sentiment"], None)
        self.assertEqual(scoring.predicted_labels(None), {"category": None, "priority": None, "sentiment": None})

    def test_field_scores_missing_prediction_is_none_label(self):
        expected = [{"category": "billing", "priority": "high", "sentiment": "negative"},
                    {"category": "technical", "priority": "low", "sentiment": "neutral"}]
        predicted = [{"category": "billing", "priority": "high", "sentiment": "negative"},
                     {"category": None, "priority": None, "sentiment": None}]
        scores = scoring.field_scores(expected, predicted)
        self.assertEqual(scores["category"]["accuracy"], 0.5)
        # billing 1.0, technical 0 (missed), "(none)" 0 (predicted, never expected).
        self.assertAlmostEqual(scores["category"]["macro_f1"], 1 / 3)
        self.assertEqual(scores["sentiment"]["n"], 2)

    def test_classify_outcome(self):
        ok = {"category": "billing", "usage": {"model_calls": 1}}
        self.assertEqual(scoring.classify_outcome(200, ok), "valid")
        self.assertEqual(scoring.classify_outcome(200, {"category": "billing", "usage": {"model_calls": 2}}),
                         "repaired")
        self.assertEqual(scoring.classify_outcome(200, {"category": "unclassified", "needs_review": True,
                                                        "usage": {"model_calls": 2}}), "invalid")
        self.assertEqual(scoring.classify_outcome(504, {"error": {"type": "ModelTimeout"}}), "error")
        self.assertEqual(scoring.classify_outcome(200, None), "error")

    def test_classify_rates(self):
        rates = scoring.classify_rates(["valid", "valid", "repaired", "invalid", "error"],
                                       [False, True, False, True, False])
        self.assertEqual(rates["json_valid"], 3 / 5)
        self.assertEqual(rates["first_try_valid"], 2 / 5)
        self.assertEqual(rates["repair"], 2 / 5)
        self.assertEqual(rates["repair_success"], 1 / 2)
        self.assertEqual(rates["invalid"], 1 / 5)
        self.assertEqual(rates["error"], 1 / 5)
        self.assertEqual(rates["needs_review"], 2 / 5)
        self.assertIsNone(scoring.classify_rates(["valid"], [False])["repair_success"])
        self.assertIsNone(scoring.classify_rates([], [])["json_valid"])


class TranslationTest(unittest.TestCase):
    @unittest.skipUnless(HAVE_SACREBLEU, "sacrebleu is not installed (scripts/eval.sh installs it into .venv)")
    def test_chrf_perfect_and_partial(self):
        refs = ["Die Lieferung erfolgt innerhalb von drei Werktagen.", "Guten Morgen"]
        self.assertAlmostEqual(scoring.chrf(refs, refs), 100.0)
        from sacrebleu.metrics import CHRF

        hyps = ["Die Lieferung kommt in drei Tagen.", "Guten Abend"]
        expected = CHRF().corpus_score(hyps, [refs]).score
        got = scoring.chrf(hyps, refs)
        self.assertAlmostEqual(got, expected)
        self.assertTrue(0 < got < 100)
        self.assertEqual(scoring.chrf(["", ""], refs), 0.0)
        self.assertIsNone(scoring.chrf([], []))

    def test_glossary_hits_case_insensitive(self):
        text = "Acme  Cloud speichert den RECHNUNGSVERLAUF."
        self.assertEqual(scoring.glossary_hits(text, ["Acme Cloud", "Rechnungsverlauf", "Kundenkonto"]), (2, 3))
        self.assertEqual(scoring.glossary_hits(text, []), (0, 0))
        self.assertEqual(scoring.adherence([(2, 3), (1, 1), (0, 0)]), 3 / 4)
        self.assertIsNone(scoring.adherence([(0, 0)]))

    def test_markdown_structure(self):
        source = ("# Title\n\nIntro with a [link](https://example.com) and `code`.\n\n"
                  "## Steps\n\n- one\n- two `x` and `y`\n1. first\n2) second\n\n"
                  "```sh\n# not a heading\n- not an item\n```\n![img](a.png)\n")
        self.assertEqual(scoring.markdown_structure(source), {
            "headings": 2, "list_items": 4, "links": 2, "code_spans": 3, "code_blocks": 1})

    def test_structure_preserved(self):
        source = "# Titel\n\n- eins\n- zwei [Link](https://x.de)\n"
        self.assertTrue(scoring.structure_preserved(source, "# Title\n\n- one\n- two [link](https://x.de)\n"))
        self.assertFalse(scoring.structure_preserved(source, "Title\n\n- one\n- two [link](https://x.de)\n"))
        self.assertFalse(scoring.structure_preserved(source, "# Title\n\n- one two link https://x.de\n"))


class SummaryTest(unittest.TestCase):
    def test_normalize(self):
        self.assertEqual(scoring.normalize("  Total\n 1,200,000 EUR "), "total 1200000 eur")
        self.assertEqual(scoring.normalize("1.200 / 1 200 / 1\u202f200 / 1'200"), "1200 / 1200 / 1200 / 1200")
        self.assertEqual(scoring.normalize("3.5 and 12,50"), "3.5 and 12,50")  # not digit groups

    def test_key_facts(self):
        summary = "Revenue rose to 1.200 million euros in   Q3; the Berlin warehouse closes in March."
        facts = [["1,200 million", "1.2 billion"], ["berlin warehouse"], ["April"], ["Q3", "third quarter"]]
        self.assertEqual(scoring.key_facts_found(summary, facts), [True, True, False, True])
        self.assertEqual(scoring.key_fact_recall(summary, facts), 0.75)
        self.assertIsNone(scoring.key_fact_recall(summary, []))

    def test_digits_do_not_match_inside_numbers(self):
        self.assertFalse(scoring.contains("We shipped 120 crates.", "12"))
        self.assertTrue(scoring.contains("We shipped 12 crates.", "12"))
        self.assertTrue(scoring.contains("Shipments were late.", "shipment"))
        self.assertFalse(scoring.contains("anything", "   "))

    def test_forbidden(self):
        summary = "The report mentions COVID-19 cases and a 40% rise."
        forbidden = ["covid-19", "40%", "bankruptcy"]
        self.assertEqual(scoring.forbidden_found(summary, forbidden), ["covid-19", "40%"])
        self.assertAlmostEqual(scoring.forbidden_rate(summary, forbidden), 2 / 3)
        self.assertIsNone(scoring.forbidden_rate(summary, []))


class PerfTest(unittest.TestCase):
    def test_guess_language(self):
        cases = {
            "The refund was approved and will appear on your statement within five days.": "en",
            "Die Erstattung wurde genehmigt und ist in fünf Tagen auf dem Konto, wenn die Bank mitspielt.": "de",
            "Le remboursement est approuvé et sera visible sur votre relevé dans les cinq jours.": "fr",
            "Il rimborso è stato approvato e sarà visibile sull'estratto conto entro cinque giorni per la carta.":
                "it",
            "O reembolso foi aprovado e aparecerá no seu extrato em até cinco dias para o cartão da conta.": "pt",
            "El reembolso fue aprobado y aparecerá en su extracto en cinco días para la tarjeta de la cuenta.": "es",
            "रिफ़ंड स्वीकृत हो गया है और पाँच दिनों में आपके स्टेटमेंट में दिखेगा।": "hi",
            "การคืนเงินได้รับการอนุมัติแล้ว และจะปรากฏในใบแจ้งยอดภายในห้าวัน": "th",
        }
        for text, lang in cases.items():
            self.assertEqual(scoring.guess_language(text), lang, text)
        self.assertIsNone(scoring.guess_language("OK 42"))  # too few clues
        self.assertIsNone(scoring.guess_language(""))
        # Thai with a few Latin product names is still Thai.
        self.assertEqual(scoring.guess_language("เรียกใช้ flowctl install ในเทอร์มินัลก่อนดำเนินการต่อ"), "th")

    def test_language_rate(self):
        outputs = [("The order was shipped on Monday and will arrive with the courier.", "en"),
                   ("Die Lieferung ist unterwegs und kommt mit dem Kurier, nicht mit der Post.", "en"),
                   ("OK", "de")]
        self.assertAlmostEqual(scoring.language_rate(outputs), 2 / 3)
        self.assertIsNone(scoring.language_rate([]))

    def test_percentile(self):
        self.assertEqual(scoring.percentile([4, 1, 3, 2], 50), 2.5)
        self.assertAlmostEqual(scoring.percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 90), 9.1)
        self.assertEqual(scoring.percentile([7], 90), 7)
        self.assertIsNone(scoring.percentile([], 50))

    def test_usage_totals(self):
        totals = scoring.usage_totals([
            {"prompt_tokens": 100, "generation_tokens": 10, "model_calls": 1, "cost_usd": "0.000015"},
            None,
            {"prompt_tokens": 50, "generation_tokens": 5, "model_calls": 2, "cost_usd": 0.000005},
        ])
        self.assertEqual(totals["prompt_tokens"], 150)
        self.assertEqual(totals["generation_tokens"], 15)
        self.assertEqual(totals["model_calls"], 3)
        self.assertAlmostEqual(totals["cost_usd"], 0.00002)


def fake_results(name: str, accuracy: float = 0.5) -> dict:
    return {
        "name": name, "backend": "local", "backend_detail": "local stack (test)", "models_seen": ["m"],
        "command": "make eval ARGS='--limit 2'", "date": "2026-11-30 12:00 UTC", "machine": "test box",
        "limit": 2, "settings": {"SUMMARY_LENGTH": "short"}, "wall_s": 12.0,
        "classify": {"n": 2, "fields": {
            "category": {"accuracy": accuracy, "macro_f1": 0.25, "n": 2},
            "priority": {"accuracy": 1.0, "macro_f1": 1.0, "n": 2},
            "sentiment": {"accuracy": 0.0, "macro_f1": 0.0, "n": 2}},
            "rates": {"json_valid": 0.5, "first_try_valid": 0.5, "repair": 0.5, "repair_success": 0.0,
                      "invalid": 0.5, "error": 0.0, "needs_review": 0.5},
            "by_tag": {"tag adversarial": {"n": 1, "category_accuracy": 0.0}}},
        "translate": {"n": 2, "pairs": {"de-en": {"n": 1, "chrf": 40.0, "errors": 0},
                                        "en-de": {"n": 1, "chrf": 60.0, "errors": 0}},
                      "chrf_mean": 50.0, "glossary_adherence": 0.75, "glossary_terms": 4,
                      "structure_preserved": 1.0, "structure_n": 1, "target_language": 0.5},
        "summarize": {"n": 1, "documents": [{"id": "d01", "kind": "report", "language": "en", "chars": 900,
                                             "parts": 3, "status": "ok", "facts": 4, "facts_found": 1,
                                             "recall": 0.25, "forbidden_hits": ["COVID-19"],
                                             "forbidden_rate": 0.5, "latency_s": 30.0,
                                             "summary_language": "de"}],
                      "key_fact_recall": 0.25, "forbidden_rate": 0.5, "in_language": 0.0},
        "perf": {"classify": {"n": 2, "p50_s": 1.5, "p90_s": 2.0, "prompt_tokens": 500, "generation_tokens": 40,
                              "model_calls": 1.5, "cost_usd": 0.0}},
    }


class ReportTest(unittest.TestCase):
    def test_section_tables(self):
        text = report.render_section(fake_results("SmolLM2-135M-Instruct.Q4_1"))
        self.assertTrue(text.startswith("<!-- model:SmolLM2-135M-Instruct.Q4_1:begin -->\n"))
        self.assertTrue(text.endswith("<!-- model:SmolLM2-135M-Instruct.Q4_1:end -->\n"))
        for line in [
            "| category | 50.0% | 0.250 |",
            "| sentiment | 0.0% | 0.000 |",
            "| 50.0% | 50.0% | 50.0% | 0.0% of those | 50.0% | 0.0% | 50.0% |",
            "| tag adversarial | 1 | 0.0% |",
            "| en → de | 1 | 60.0 | 0 |",
            "| de → en | 1 | 40.0 | 0 |",
            "- glossary adherence: 75.0% of 4 required target terms",
            "| d01 | report | en | de | 900 | 3 | 1 / 4 | 25.0% | “COVID-19” (50.0%) | 30.0 | ok |",
            "- in the target language: 50.0% of the translations returned",
            "- summaries in the document's language: 0.0%",
            "| classify | 2 | 1.5 | 2.0 | 500 | 40 | 1.50 | 0 |",
            "- **partial run**: `--limit 2` (the first 2 items of each task)",
        ]:
            self.assertIn(line, text.splitlines())
        # en -> xx directions come before xx -> en.
        self.assertLess(text.index("| en → de"), text.index("| de → en"))

    def test_update_replaces_in_place_and_compares(self):
        first = report.update("", fake_results("model-a", 0.5))
        both = report.update(first, fake_results("model-b", 0.75))
        again = report.update(both, fake_results("model-a", 1.0))
        self.assertEqual(again.count("<!-- model:model-a:begin -->"), 1)
        self.assertEqual(again.count("<!-- model:model-b:begin -->"), 1)
        # Section order is kept; the comparison has one row per model with its latest figures.
        self.assertLess(again.index("<!-- model:model-a:begin -->"), again.index("<!-- model:model-b:begin -->"))
        comparison = again[again.index(report.COMPARISON_BEGIN):again.index(report.COMPARISON_END)]
        rows = [line for line in comparison.splitlines() if line.startswith("| [")]
        self.assertEqual(len(rows), 2)
        self.assertIn("| [model-a](#model-model-a) | local | 2026-11-30 | 2 / 2 / 1 (limit 2) | 100.0% | 0.250 |",
                      rows[0])
        self.assertIn("| 75.0% |", rows[1])
        self.assertTrue(rows[0].endswith("| 1.5 / – / – |"))
        self.assertEqual(report.update(again, fake_results("model-a", 1.0)), again)  # stable

    def test_update_keeps_the_notes(self):
        notes = "<!-- notes:begin -->\n## Findings\n\nThe 1.5B wins.\n<!-- notes:end -->\n"
        first = report.update("", fake_results("model-a", 0.5))
        with_notes = first.replace(report.COMPARISON_END + "\n", report.COMPARISON_END + "\n\n" + notes, 1)
        updated = report.update(with_notes, fake_results("model-b", 0.75))
        self.assertEqual(updated.count(notes), 1)
        self.assertLess(updated.index(report.COMPARISON_END), updated.index(notes))
        self.assertLess(updated.index(notes), updated.index("<!-- model:model-a:begin -->"))
        self.assertEqual(report.update(updated, fake_results("model-b", 0.75)), updated)

    def test_headline_round_trips(self):
        section = report.render_section(fake_results("x"))
        self.assertEqual(report.section_headline(section), json.loads(json.dumps(report.headline(fake_results("x")))))


class SelectionTest(unittest.TestCase):
    SEGMENT = {"id": "s001", "kind": "glossary",
               "texts": {lang: f"text-{lang}" for lang in ("en", "de", "fr", "it", "pt", "hi", "es", "th")},
               "glossary": [{"en": "order", "de": "Bestellung", "fr": "commande"}, {"en": "Acme", "de": "Acme"}]}

    def test_fourteen_directions_with_pair_glossaries(self):
        requests = harness.translation_requests(self.SEGMENT)
        self.assertEqual(len(requests), 14)
        self.assertEqual([(r["source_language"], r["target_language"]) for r in requests[:4]],
                         [("en", "de"), ("de", "en"), ("en", "fr"), ("fr", "en")])
        self.assertEqual(requests[0]["glossary"], [{"term": "order", "translation": "Bestellung"},
                                                   {"term": "Acme", "translation": "Acme"}])
        self.assertEqual(requests[1]["glossary"][0], {"term": "Bestellung", "translation": "order"})
        self.assertEqual(requests[2]["glossary"], [{"term": "order", "translation": "commande"}])
        self.assertEqual(requests[4]["glossary"], [])  # en -> it: no Italian terms
        self.assertEqual((requests[0]["source"], requests[0]["reference"]), ("text-en", "text-de"))

    def test_ids_and_limit(self):
        data = {"tickets": [{"id": f"t00{i}"} for i in range(1, 5)], "segments": [self.SEGMENT],
                "documents": [{"id": "d01"}, {"id": "d02"}, {"id": "d13"}]}
        picked = harness.select(data, "d13,t004", 2)
        self.assertEqual([t["id"] for t in picked["tickets"]], ["t004"])
        self.assertEqual([d["id"] for d in picked["documents"]], ["d13"])
        self.assertEqual(len(picked["requests"]), 2)  # no segment listed: all, then the limit
        self.assertEqual(len(harness.select(data, None, None)["requests"]), 14)

    def test_a_run_of_one_task_keeps_the_others(self):
        base = {"name": "m", "limit": None, "sample": 16, "backend_detail": "local", "date": "d1",
                "command": "make eval ARGS='--sample 16'"}
        previous = dict(base, classify={"n": 16}, translate={"n": 16}, perf={"classify": 1, "translate": 2},
                        items={"classify": ["c"], "translate": ["old"]})
        results = dict(base, command="make eval ARGS='--sample 16 --tasks translate'", translate={"n": 16, "new": 1},
                       perf={"translate": 3}, items={"translate": ["new"]})
        harness.keep_other_tasks(results, previous, lambda _m: None)
        self.assertEqual(results["classify"], {"n": 16})
        self.assertEqual(results["translate"], {"n": 16, "new": 1})
        self.assertEqual(results["perf"], {"classify": 1, "translate": 3})
        self.assertEqual(results["items"], {"classify": ["c"], "translate": ["new"]})
        self.assertIn("(classify, d1), then make eval ARGS='--sample 16 --tasks translate'", results["command"])
        other = dict(base, sample=8, perf={}, items={})
        harness.keep_other_tasks(other, previous, lambda _m: None)
        self.assertNotIn("classify", other, "another selection is not mixed in")

    def test_sample_spreads_over_languages_directions_and_documents(self):
        tickets = [{"id": f"{lang}{i}", "language": lang, "expected": {"category": category}}
                   for lang in ("en", "de", "th") for i, category in enumerate(("billing", "technical", "other"))]
        segments = [dict(self.SEGMENT, id=f"s00{i}") for i in range(1, 4)]
        documents = [{"id": f"d0{i}"} for i in range(1, 6)]
        picked = harness.select({"tickets": tickets, "segments": segments, "documents": documents}, None, None, 4)
        # Each language in turn, each time the category picked least so far.
        self.assertEqual([t["id"] for t in picked["tickets"]], ["en0", "de1", "th2", "en1"])
        self.assertEqual(len(tickets), 9, "the set itself is left as it was")
        self.assertEqual([(r["id"], r["source_language"], r["target_language"]) for r in picked["requests"]],
                         [("s001", "en", "de"), ("s002", "de", "en"), ("s003", "en", "fr"), ("s001", "fr", "en")])
        self.assertEqual([d["id"] for d in picked["documents"]], ["d01", "d02", "d04", "d05"])
        one = harness.select({"tickets": tickets, "segments": segments, "documents": documents}, None, None, 1)
        self.assertEqual([d["id"] for d in one["documents"]], ["d05"])  # the last (longest) one


if __name__ == "__main__":
    unittest.main()
