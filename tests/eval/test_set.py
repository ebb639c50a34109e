"""Checks of the hand-written evaluation set under eval/ (format: eval/README.md).

Standard library only; reads files, runs no model. Run from the repository root:
    python -m unittest discover -s tests/eval -v
"""

import json
import re
import unittest
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EVAL = ROOT / "eval"

LANGUAGES = ("en", "de", "fr", "it", "pt", "hi", "es", "th")

# The default taxonomy of classify-ticket, copied from the Rust crate:
# categories and priorities from functions/classify-ticket/taxonomy.default.json (compiled in
# as DEFAULT_TAXONOMY_JSON in functions/classify-ticket/src/taxonomy.rs), sentiment labels
# from SentimentLabel::NAMES in functions/classify-ticket/src/answer.rs.
CATEGORIES = ("billing", "technical", "account", "shipping", "product_feedback", "other")
PRIORITIES = ("low", "medium", "high", "urgent")
SENTIMENTS = ("positive", "neutral", "negative")

TICKET_TAGS = {"ambiguous", "adversarial"}
SEGMENT_KINDS = ("plain", "markdown", "glossary")

DEVANAGARI = re.compile(r"[\u0900-\u097F]")
THAI = re.compile(r"[\u0E00-\u0E7F]")

HEADING = re.compile(r"(?m)^#{1,6} ")
LIST_ITEM = re.compile(r"(?m)^\s*(?:[-*+]|\d+\.) ")
LINK = re.compile(r"\[[^\]\n]+\]\(([^)\s]+)\)")
CODE_SPAN = re.compile(r"`([^`\n]+)`")
BOLD = re.compile(r"\*\*[^*\n]+\*\*")
FENCED_BLOCK = re.compile(r"(?ms)^(```|~~~)[^\n]*\n.*?^\1[ \t]*$")


def split_fences(text):
    """(the text without its fenced code blocks, the list of fenced blocks)."""
    return FENCED_BLOCK.sub("", text), [m.group(0) for m in FENCED_BLOCK.finditer(text)]


def norm(text):
    """Lower case, whitespace runs (any Unicode space) collapsed to one space."""
    return " ".join(text.split()).lower()


def read_jsonl(path):
    rows = []
    with path.open(encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if line.strip():
                try:
                    rows.append(json.loads(line))
                except json.JSONDecodeError as e:  # pragma: no cover - reported as failure
                    raise AssertionError(f"{path.name} line {number}: {e}") from e
    return rows


def nonempty_str(value):
    return isinstance(value, str) and value.strip() != ""


def script_ok(language, text):
    """Hindi must be in Devanagari and Thai in Thai script."""
    if language == "hi":
        return bool(DEVANAGARI.search(text))
    if language == "th":
        return bool(THAI.search(text))
    return True


class TaxonomyCopy(unittest.TestCase):
    """The copied label constants still match the Rust source they come from."""

    def test_categories_and_priorities_match_default_json(self):
        path = ROOT / "functions/classify-ticket/taxonomy.default.json"
        if not path.exists():
            self.skipTest("classify-ticket taxonomy not in this checkout")
        taxonomy = json.loads(path.read_text(encoding="utf-8"))
        self.assertEqual(tuple(c["name"] for c in taxonomy["categories"]), CATEGORIES)
        self.assertEqual(tuple(p["name"] for p in taxonomy["priorities"]), PRIORITIES)

    def test_sentiments_match_answer_rs(self):
        path = ROOT / "functions/classify-ticket/src/answer.rs"
        if not path.exists():
            self.skipTest("classify-ticket source not in this checkout")
        m = re.search(r"NAMES: \[&'static str; \d+\] = \[([^\]]*)\]", path.read_text(encoding="utf-8"))
        self.assertIsNotNone(m, "SentimentLabel::NAMES not found in answer.rs")
        self.assertEqual(tuple(re.findall(r'"([^"]+)"', m.group(1))), SENTIMENTS)


class Tickets(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.rows = read_jsonl(EVAL / "tickets.jsonl")

    def test_schema(self):
        for r in self.rows:
            with self.subTest(id=r.get("id")):
                self.assertLessEqual({"id", "language", "subject", "body", "expected", "tags"}, set(r))
                self.assertLessEqual(set(r), {"id", "language", "subject", "body", "expected", "tags", "note"})
                self.assertRegex(r["id"], r"^t\d{3}$")
                self.assertIn(r["language"], LANGUAGES)
                self.assertTrue(nonempty_str(r["subject"]))
                self.assertTrue(nonempty_str(r["body"]))
                self.assertGreaterEqual(len(r["body"]), 80, "body should be a few sentences")
                self.assertEqual(set(r["expected"]), {"category", "priority", "sentiment"})
                self.assertIsInstance(r["tags"], list)
                self.assertLessEqual(set(r["tags"]), TICKET_TAGS)
                self.assertEqual(len(r["tags"]), len(set(r["tags"])))
                if "note" in r:
                    self.assertTrue(nonempty_str(r["note"]))

    def test_ids_unique(self):
        ids = [r["id"] for r in self.rows]
        self.assertEqual(len(ids), len(set(ids)), [i for i, n in Counter(ids).items() if n > 1])

    def test_counts_per_language(self):
        self.assertGreaterEqual(len(self.rows), 88)
        counts = Counter(r["language"] for r in self.rows)
        for language in LANGUAGES:
            self.assertGreaterEqual(counts[language], 11, language)

    def test_script(self):
        for r in self.rows:
            with self.subTest(id=r["id"]):
                self.assertTrue(script_ok(r["language"], r["subject"]), "subject script")
                self.assertTrue(script_ok(r["language"], r["body"]), "body script")

    def test_labels_only_from_taxonomy(self):
        for r in self.rows:
            with self.subTest(id=r["id"]):
                self.assertIn(r["expected"]["category"], CATEGORIES)
                self.assertIn(r["expected"]["priority"], PRIORITIES)
                self.assertIn(r["expected"]["sentiment"], SENTIMENTS)

    def test_every_label_present(self):
        for field, labels in (("category", CATEGORIES), ("priority", PRIORITIES), ("sentiment", SENTIMENTS)):
            seen = {r["expected"][field] for r in self.rows}
            self.assertEqual(seen, set(labels), field)

    def test_ambiguous_and_adversarial(self):
        ambiguous = [r for r in self.rows if "ambiguous" in r["tags"]]
        adversarial = [r for r in self.rows if "adversarial" in r["tags"]]
        self.assertGreaterEqual(len(ambiguous), 10)
        self.assertGreaterEqual(len(adversarial), 8)
        for r in ambiguous:
            with self.subTest(id=r["id"]):
                self.assertIn("note", r, "an ambiguous ticket says why its label is the better one")


class Translations(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.rows = read_jsonl(EVAL / "translations.jsonl")

    def test_schema(self):
        for r in self.rows:
            with self.subTest(id=r.get("id")):
                self.assertRegex(r["id"], r"^s\d{3}$")
                self.assertIn(r["kind"], SEGMENT_KINDS)
                if r["kind"] == "glossary":
                    self.assertEqual(set(r), {"id", "kind", "texts", "glossary"})
                else:
                    self.assertEqual(set(r), {"id", "kind", "texts"})
                self.assertEqual(set(r["texts"]), set(LANGUAGES))
                for language, text in r["texts"].items():
                    self.assertTrue(nonempty_str(text), language)
                    self.assertTrue(script_ok(language, text), language)

    def test_ids_unique(self):
        ids = [r["id"] for r in self.rows]
        self.assertEqual(len(ids), len(set(ids)))

    def test_counts(self):
        kinds = Counter(r["kind"] for r in self.rows)
        self.assertGreaterEqual(len(self.rows), 24)
        self.assertGreaterEqual(kinds["plain"], 12)
        self.assertGreaterEqual(kinds["markdown"], 6)
        self.assertGreaterEqual(kinds["glossary"], 6)
        fenced = [r["id"] for r in self.rows if r["kind"] == "markdown" and split_fences(r["texts"]["en"])[1]]
        self.assertTrue(fenced, "at least one markdown segment with a fenced code block")

    def test_glossary_terms_in_every_language(self):
        for r in (r for r in self.rows if r["kind"] == "glossary"):
            with self.subTest(id=r["id"]):
                self.assertTrue(1 <= len(r["glossary"]) <= 3)
                for entry in r["glossary"]:
                    self.assertEqual(set(entry), set(LANGUAGES))
                    for language in LANGUAGES:
                        term = entry[language]
                        self.assertTrue(nonempty_str(term))
                        # Case-sensitive, as translate checks glossary terms.
                        self.assertIn(term, r["texts"][language], f"{language}: {term!r}")

    def test_markdown_structure_same_in_every_language(self):
        for r in (r for r in self.rows if r["kind"] == "markdown"):
            texts = {}
            blocks = {}
            for language, text in r["texts"].items():
                texts[language], blocks[language] = split_fences(text)
            en = texts["en"]
            shape = {
                "headings": len(HEADING.findall(en)),
                "list items": len(LIST_ITEM.findall(en)),
                "links": len(LINK.findall(en)),
                "code spans": len(CODE_SPAN.findall(en)),
                "bold": len(BOLD.findall(en)),
            }
            with self.subTest(id=r["id"], language="en"):
                for name, count in shape.items():
                    self.assertGreater(count, 0, f"markdown segment without {name}")
            for language in LANGUAGES:
                t = texts[language]
                with self.subTest(id=r["id"], language=language):
                    self.assertEqual(len(HEADING.findall(t)), shape["headings"], "headings")
                    self.assertEqual(len(LIST_ITEM.findall(t)), shape["list items"], "list items")
                    self.assertEqual(len(LINK.findall(t)), shape["links"], "links")
                    self.assertEqual(len(CODE_SPAN.findall(t)), shape["code spans"], "code spans")
                    self.assertEqual(len(BOLD.findall(t)), shape["bold"], "bold")
                    # Code and URLs are not translated.
                    self.assertEqual(CODE_SPAN.findall(t), CODE_SPAN.findall(en), "code spans changed")
                    self.assertEqual(LINK.findall(t), LINK.findall(en), "link targets changed")
                    self.assertEqual(blocks[language], blocks["en"], "fenced code blocks changed")

    def test_plain_segments_have_no_markup(self):
        for r in (r for r in self.rows if r["kind"] != "markdown"):
            for language, t in r["texts"].items():
                with self.subTest(id=r["id"], language=language):
                    self.assertFalse(HEADING.search(t) or LINK.search(t) or CODE_SPAN.search(t) or BOLD.search(t))


class Documents(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.docs = json.loads((EVAL / "documents.json").read_text(encoding="utf-8"))
        cls.texts = {}
        for d in cls.docs:
            path = EVAL / d["file"]
            cls.texts[d["id"]] = path.read_text(encoding="utf-8") if path.is_file() else ""

    def test_schema(self):
        self.assertIsInstance(self.docs, list)
        for d in self.docs:
            with self.subTest(id=d.get("id")):
                self.assertEqual(set(d), {"id", "file", "language", "kind", "key_facts", "forbidden"})
                self.assertRegex(d["id"], r"^d\d{2}$")
                self.assertRegex(d["file"], r"^documents/" + re.escape(d["id"]) + r"-[a-z0-9-]+\.(md|txt)$")
                self.assertIn(d["language"], LANGUAGES)
                self.assertTrue(nonempty_str(d["kind"]))
                self.assertTrue(3 <= len(d["key_facts"]) <= 8)
                for fact in d["key_facts"]:
                    self.assertIsInstance(fact, list)
                    self.assertTrue(fact and all(nonempty_str(a) for a in fact))
                self.assertTrue(2 <= len(d["forbidden"]) <= 5)
                self.assertTrue(all(nonempty_str(f) for f in d["forbidden"]))

    def test_ids_and_files_unique(self):
        self.assertEqual(len({d["id"] for d in self.docs}), len(self.docs))
        self.assertEqual(len({d["file"] for d in self.docs}), len(self.docs))

    def test_coverage(self):
        self.assertGreaterEqual(len(self.docs), 12)
        self.assertGreaterEqual(len({d["kind"] for d in self.docs}), 12)
        self.assertGreaterEqual(sum(d["language"] != "en" for d in self.docs), 2)

    def test_files_exist_and_are_not_empty(self):
        for d in self.docs:
            with self.subTest(id=d["id"]):
                self.assertTrue((EVAL / d["file"]).is_file(), d["file"])
                self.assertTrue(self.texts[d["id"]].strip())

    def test_lengths(self):
        lengths = sorted(len(t.split()) for t in self.texts.values())
        self.assertLessEqual(lengths[0], 250, "a short document of about 150 words")
        self.assertGreater(max(len(t) for t in self.texts.values()), 30_000,
                           "one document longer than the local model's 8,192-token window")

    def test_key_facts_in_document(self):
        for d in self.docs:
            text = norm(self.texts[d["id"]])
            for fact in d["key_facts"]:
                with self.subTest(id=d["id"], fact=fact[0]):
                    self.assertTrue(any(norm(a) in text for a in fact), fact)

    def test_forbidden_not_in_document(self):
        for d in self.docs:
            text = norm(self.texts[d["id"]])
            for forbidden in d["forbidden"]:
                with self.subTest(id=d["id"], forbidden=forbidden):
                    self.assertNotIn(norm(forbidden), text)

    def test_no_unused_document_files(self):
        listed = {d["file"] for d in self.docs}
        present = {f"documents/{p.name}" for p in (EVAL / "documents").iterdir() if p.is_file()}
        self.assertEqual(present - listed, set())


if __name__ == "__main__":
    unittest.main()
