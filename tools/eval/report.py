"""docs/quality.md: one section per model, re-rendered in place, and a comparison table.

Each model's section lies between ``<!-- model:SLUG:begin -->`` and ``<!-- model:SLUG:end -->``
and carries its headline figures as JSON in a ``<!-- headline: {...} -->`` comment; the
comparison table at the top is rebuilt from the headlines of every section in the file, so
runs of several models (on several machines) sit side by side, and a new run of a model
replaces only its own section. Standard library only.
"""

from __future__ import annotations

import json
import re

TITLE = "# Quality: the evaluation set through the real functions"

INTRO = """\
Measured by `make eval` (`scripts/eval.sh`, `tools/eval/eval.py`): the evaluation set in
[`eval/`](../eval/README.md) goes through the real functions (`POST /tickets/classify`,
`POST /translations`, and summarize-document through its S3 upload path, so a document longer
than the context window goes through map-reduce), on the local stack with a GGUF model
(`--model PATH`) or on a deployed stack (`--aws STACK`). The scores are computed by
`tools/eval/scoring.py` (tested in `tests/eval/test_scoring.py`):

- classification: accuracy and macro-F1 (over every label expected or predicted) per field;
  JSON valid = a valid answer on the first call or after the one repair call; `needs_review`
  as the function returns it;
- translation: corpus chrF (sacrebleu, default parameters) per direction; glossary adherence =
  share of the glossary's target terms present (case-insensitive); structure preserved = same
  number of headings, list items, links, code spans and code blocks as the source;
- summaries: key-fact recall = share of a document's key facts with any alternative present
  (case-insensitive, whitespace and digit-group separators normalised); forbidden = share of the
  document's forbidden statements present;
- right language: share of translations in the target language and of summaries in the
  document's language (Devanagari or Thai script, otherwise the most frequent function words;
  a text too short to tell counts as right);
- latency per item as the caller sees it (p50/p90), tokens and cost from the responses' `usage`.

Same set and same scoring whatever the backend: a prompt or model change shows up as a diff of
this file. A run with `--limit N` covers only the first N items of each task, one with
`--sample N` N items of each task spread over the set (tickets from every language, translations
through all 14 directions and every kind of segment, documents from shortest to the longest);
each says so.
"""

BEGIN = "<!-- model:{}:begin -->"
END = "<!-- model:{}:end -->"
_BLOCK = re.compile(r"<!-- model:(?P<slug>[A-Za-z0-9_.\-]+):begin -->\n.*?<!-- model:(?P=slug):end -->\n?",
                    re.DOTALL)
_HEADLINE = re.compile(r"<!-- headline: (\{.*?\}) -->")
COMPARISON_BEGIN = "<!-- comparison:begin -->"
COMPARISON_END = "<!-- comparison:end -->"
# Hand-written findings (the demo model's choice, prompt changes measured) kept across runs.
NOTES = re.compile(r"<!-- notes:begin -->.*?<!-- notes:end -->\n", re.S)

DIRECTIONS_ORDER = ("de", "fr", "it", "pt", "hi", "es", "th")


def slug(name: str) -> str:
    """A section name: letters, digits, ``.``, ``_`` and ``-``."""
    return re.sub(r"[^A-Za-z0-9_.\-]+", "-", name).strip("-") or "model"


def pct(value) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def num(value, digits: int = 1) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def usd(value) -> str:
    if value is None:
        return "–"
    if value == 0:
        return "0"
    return f"{value:.8f}".rstrip("0").rstrip(".")


def headline(results: dict) -> dict:
    """The figures of a run that the comparison table shows."""
    c = results.get("classify") or {}
    t = results.get("translate") or {}
    s = results.get("summarize") or {}
    fields = c.get("fields") or {}
    perf = results.get("perf") or {}
    return {
        "name": results["name"],
        "backend": results.get("backend"),
        "date": results.get("date"),
        "limit": results.get("limit"),
        "sample": results.get("sample"),
        "tickets": c.get("n"), "translations": t.get("n"), "documents": s.get("n"),
        "category_accuracy": (fields.get("category") or {}).get("accuracy"),
        "category_macro_f1": (fields.get("category") or {}).get("macro_f1"),
        "priority_accuracy": (fields.get("priority") or {}).get("accuracy"),
        "sentiment_accuracy": (fields.get("sentiment") or {}).get("accuracy"),
        "json_valid": (c.get("rates") or {}).get("json_valid"),
        "needs_review": (c.get("rates") or {}).get("needs_review"),
        "chrf_mean": t.get("chrf_mean"),
        "glossary_adherence": t.get("glossary_adherence"),
        "structure_preserved": t.get("structure_preserved"),
        "target_language": t.get("target_language"),
        "summary_in_language": s.get("in_language"),
        "key_fact_recall": s.get("key_fact_recall"),
        "forbidden_rate": s.get("forbidden_rate"),
        "p50_s": {task: (perf.get(task) or {}).get("p50_s") for task in ("classify", "translate", "summarize")},
    }


def render_comparison(headlines: list[dict]) -> str:
    """The comparison table, one row per model section."""
    lines = [
        "## Comparison",
        "",
        "| model | backend | date | items (tickets / translations / documents) | category acc. | category "
        "macro-F1 | priority acc. | sentiment acc. | JSON valid | needs_review | chrF (mean of 14 directions) | "
        "glossary | structure kept | key-fact recall | forbidden | right language (translations / summaries) | "
        "p50 s (classify / translate / summarize) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for h in headlines:
        p50 = h.get("p50_s") or {}
        items = " / ".join("–" if h.get(k) is None else str(h[k]) for k in ("tickets", "translations", "documents"))
        if h.get("sample"):
            items += f" (sample {h['sample']})"
        elif h.get("limit"):
            items += f" (limit {h['limit']})"
        lines.append(
            f"| [{h['name']}](#{anchor(h['name'])}) | {h.get('backend') or '–'} | {(h.get('date') or '–')[:10]} | "
            f"{items} | {pct(h.get('category_accuracy'))} | {num(h.get('category_macro_f1'), 3)} | "
            f"{pct(h.get('priority_accuracy'))} | {pct(h.get('sentiment_accuracy'))} | {pct(h.get('json_valid'))} | "
            f"{pct(h.get('needs_review'))} | {num(h.get('chrf_mean'))} | {pct(h.get('glossary_adherence'))} | "
            f"{pct(h.get('structure_preserved'))} | {pct(h.get('key_fact_recall'))} | "
            f"{pct(h.get('forbidden_rate'))} | {pct(h.get('target_language'))} / {pct(h.get('summary_in_language'))} | "
            + " / ".join(num(p50.get(t)) for t in ("classify", "translate", "summarize")) + " |")
    if not headlines:
        lines.append("| (no run yet) | | | | | | | | | | | | | | | | |")
    return "\n".join(lines) + "\n"


def anchor(name: str) -> str:
    """GitHub's heading anchor of the model section's heading (``## Model: NAME``)."""
    text = f"model: {name}".lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def render_section(results: dict) -> str:
    """A model's section, markers and headline included."""
    name = results["name"]
    out = [BEGIN.format(slug(name)), f"## Model: {name}", "",
           f"<!-- headline: {json.dumps(headline(results), sort_keys=True)} -->", ""]
    limit = results.get("limit")
    out += [
        f"- command: `{results.get('command', '')}`",
        f"- backend: {results.get('backend_detail') or results.get('backend')}",
        "- model id the functions called (locally the emulator answers it with the GGUF): "
        + (", ".join(results.get("models_seen") or []) or "–"),
        f"- date: {results.get('date', '–')}; machine: {results.get('machine', '–')}; "
        f"wall time {num(results.get('wall_s'), 0)} s",
    ]
    if results.get("settings"):
        out.append("- function settings: " + ", ".join(f"`{k}={v}`" for k, v in sorted(results["settings"].items())))
    sample = results.get("sample")
    if sample:
        out.append(f"- **partial run**: `--sample {sample}` ({sample} items of each task spread over the set: "
                   "tickets from every language in turn, translations through the 14 directions and the segments, "
                   "documents evenly spaced, the longest included)")
    elif limit:
        out.append(f"- **partial run**: `--limit {limit}` (the first {limit} items of each task)")
    out.append("")

    c = results.get("classify")
    if c:
        out += [f"### Classification ({c['n']} tickets)", "", "| field | accuracy | macro-F1 |", "|---|---|---|"]
        for field, s in c["fields"].items():
            out.append(f"| {field} | {pct(s['accuracy'])} | {num(s['macro_f1'], 3)} |")
        r = c["rates"]
        out += ["", "| JSON valid | valid on the first call | repair needed | repaired | invalid after repair "
                "(`unclassified`) | errors | `needs_review` |", "|---|---|---|---|---|---|---|",
                f"| {pct(r['json_valid'])} | {pct(r['first_try_valid'])} | {pct(r['repair'])} | "
                f"{pct(r['repair_success'])} of those | {pct(r['invalid'])} | {pct(r['error'])} | "
                f"{pct(r['needs_review'])} |", ""]
        if c.get("by_tag"):
            out += ["| tickets | n | category accuracy |", "|---|---|---|"]
            for tag, s in sorted(c["by_tag"].items()):
                out.append(f"| {tag} | {s['n']} | {pct(s['category_accuracy'])} |")
            out.append("")
    t = results.get("translate")
    if t:
        out += [f"### Translation ({t['n']} translations)", "",
                "| direction | n | chrF | errors |", "|---|---|---|---|"]
        for pair in ordered_pairs(t["pairs"]):
            s = t["pairs"][pair]
            out.append(f"| {pair.replace('-', ' → ')} | {s['n']} | {num(s['chrf'])} | {s['errors']} |")
        out += ["", f"- chrF, mean of the directions: {num(t.get('chrf_mean'))}",
                f"- glossary adherence: {pct(t.get('glossary_adherence'))} of {t.get('glossary_terms', 0)} required "
                f"target terms",
                f"- Markdown structure preserved: {pct(t.get('structure_preserved'))} of "
                f"{t.get('structure_n', 0)} Markdown translations",
                f"- in the target language: {pct(t.get('target_language'))} of the translations returned", ""]
    s = results.get("summarize")
    if s:
        out += [f"### Summaries ({s['n']} documents)", "",
                "| document | kind | language | summary language | characters | parts | key facts found | recall "
                "| forbidden present | latency s | status |", "|---|---|---|---|---|---|---|---|---|---|---|"]
        for d in s["documents"]:
            hits = ", ".join(f"“{h}”" for h in d.get("forbidden_hits") or []) or "none"
            out.append(
                f"| {d['id']} | {d.get('kind', '')} | {d.get('language', '')} | {d.get('summary_language') or '–'} | "
                f"{d.get('chars', '–')} | "
                f"{d.get('parts') if d.get('parts') is not None else '–'} | "
                f"{d.get('facts_found', 0)} / {d.get('facts', 0)} | {pct(d.get('recall'))} | "
                f"{hits} ({pct(d.get('forbidden_rate'))}) | {num(d.get('latency_s'))} | {d.get('status', '')} |")
        out += ["", f"- key-fact recall, mean over documents: {pct(s.get('key_fact_recall'))}",
                f"- forbidden statements, mean share present: {pct(s.get('forbidden_rate'))}",
                f"- summaries in the document's language: {pct(s.get('in_language'))}", ""]
    perf = results.get("perf")
    if perf:
        out += ["### Latency, tokens and cost per item", "",
                "| task | items | p50 s | p90 s | prompt tokens | generation tokens | model calls | cost USD |",
                "|---|---|---|---|---|---|---|---|"]
        for task, p in perf.items():
            out.append(f"| {task} | {p['n']} | {num(p['p50_s'])} | {num(p['p90_s'])} | "
                       f"{num(p['prompt_tokens'], 0)} | {num(p['generation_tokens'], 0)} | "
                       f"{num(p['model_calls'], 2)} | {usd(p['cost_usd'])} |")
        out.append("")
    out.append(END.format(slug(name)))
    return "\n".join(out) + "\n"


def ordered_pairs(pairs: dict) -> list[str]:
    """en → xx first, then xx → en, each in the set's language order; others after."""
    order = [f"en-{x}" for x in DIRECTIONS_ORDER] + [f"{x}-en" for x in DIRECTIONS_ORDER]
    return [p for p in order if p in pairs] + sorted(p for p in pairs if p not in order)


def sections(text: str) -> dict[str, str]:
    """The model sections in ``text``, by slug, in file order."""
    return {m.group("slug"): m.group(0) for m in _BLOCK.finditer(text)}


def section_headline(section: str) -> dict | None:
    m = _HEADLINE.search(section)
    return json.loads(m.group(1)) if m else None


def update(text: str, results: dict) -> str:
    """``text`` (the current docs/quality.md, or "") with the run's section replaced or
    added, the comparison rebuilt from every section, and the notes block kept."""
    blocks = sections(text)
    blocks[slug(results["name"])] = render_section(results)
    headlines = [h for h in (section_headline(b) for b in blocks.values()) if h]
    parts = [TITLE, "", INTRO, COMPARISON_BEGIN, render_comparison(headlines) + COMPARISON_END, ""]
    notes = NOTES.search(text)
    if notes:
        parts += [notes.group(0)]
    for block in blocks.values():
        parts += [block.rstrip("\n"), ""]
    return "\n".join(parts)
