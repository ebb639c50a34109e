"""Checks of the local model catalog (tools/local-stack/models.json) that scripts/models.sh
fetches from and `make demo` picks its model from. Standard library only; downloads nothing."""

import json
import re
import unittest
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CATALOG = ROOT / "tools" / "local-stack" / "models.json"
REQUIRED = {"name", "package", "parts", "join", "file", "sha256", "size_bytes", "licence", "chat_template_ok",
            "notes", "measured"}


class CatalogTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.entries = json.loads(CATALOG.read_text(encoding="utf-8"))

    def test_entries_are_complete_and_fetchable(self):
        names = [e["name"] for e in self.entries]
        self.assertEqual(len(names), len(set(names)), "names are unique")
        for e in self.entries:
            with self.subTest(e["name"]):
                self.assertLessEqual(REQUIRED, set(e), f"missing {REQUIRED - set(e)}")
                self.assertRegex(e["sha256"], r"^[0-9a-f]{64}$")
                self.assertGreater(e["size_bytes"], 0)
                self.assertTrue(e["file"].endswith(".gguf"))
                self.assertNotRegex(e["file"], r"[/\\]|^\.", "a plain file name inside .cache/models")
                self.assertTrue(e["parts"], "at least one wheel")
                for part in e["parts"]:
                    self.assertRegex(part["package"], r"^[A-Za-z0-9_.-]+==[0-9][0-9A-Za-z.]*$", "pinned version")
                    self.assertFalse(part["path_in_package"].startswith("/"))
                self.assertTrue(re.search(r"Apache|MIT|Llama|Gemma", e["licence"]), "licence stated")

    def test_one_demo_model_that_works_with_the_emulator(self):
        demo = [e for e in self.entries if e.get("demo")]
        self.assertEqual(len(demo), 1, "scripts/models.sh --demo and demo.py need exactly one")
        self.assertTrue(demo[0]["chat_template_ok"], "the emulator's chat template handling works for it")
        self.assertIn("quality.md", demo[0]["notes"], "the choice points to the measurement")


if __name__ == "__main__":
    unittest.main()
