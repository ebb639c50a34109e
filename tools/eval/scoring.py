"""Scores of the evaluation harness: pure functions of expected and produced outputs.

Standard library only, except chrF, which is sacrebleu's (`sacrebleu.metrics.CHRF`,
corpus-level, default parameters: character 6-grams, beta 2, no word n-grams), imported
when first used so that the rest works without it.

Every function here is deterministic and takes plain Python values, so the same outputs
give the same numbers whatever backend produced them (tests/eval/test_scoring.py).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterable, Sequence

# ----- classification ---------------------------------------------------------------------


def accuracy(expected: Sequence[str], predicted: Sequence[str]) -> float | None:
    """Share of items whose prediction equals the expected label (None for no items)."""
    _same_length(expected, predicted)
    if not expected:
        return None
    return sum(e == p for e, p in zip(expected, predicted)) / len(expected)


def macro_f1(expected: Sequence[str], predicted: Sequence[str]) -> float | None:
    """Unweighted mean of the per-label F1 over every label that is expected or predicted
    (scikit-learn's default label set: a label the model invents, such as ``unclassified``,
    counts with F1 0). A label with no true positive has F1 0. None for no items."""
    _same_length(expected, predicted)
    if not expected:
        return None
    labels = sorted(set(expected) | set(predicted))
    scores = []
    for label in labels:
        tp = sum(e == label and p == label for e, p in zip(expected, predicted))
        fp = sum(e != label and p == label for e, p in zip(expected, predicted))
        fn = sum(e == label and p != label for e, p in zip(expected, predicted))
        scores.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
    return sum(scores) / len(scores)


CLASSIFY_FIELDS = ("category", "priority", "sentiment")


def predicted_labels(response: dict | None) -> dict[str, str | None]:
    """The category, priority and sentiment label of a classify-ticket response (its
    ``sentiment`` is ``{"label", "score"}`` or null); None for a missing response."""
    if not isinstance(response, dict):
        return {field: None for field in CLASSIFY_FIELDS}
    sentiment = response.get("sentiment")
    return {
        "category": response.get("category"),
        "priority": response.get("priority"),
        "sentiment": sentiment.get("label") if isinstance(sentiment, dict) else sentiment,
    }


def field_scores(expected: Sequence[dict], predicted: Sequence[dict]) -> dict[str, dict]:
    """Accuracy and macro-F1 of each classification field; a missing prediction (an
    error, or a null sentiment) counts as the label ``"(none)"``."""
    _same_length(expected, predicted)
    out = {}
    for field in CLASSIFY_FIELDS:
        exp = [str(e[field]) for e in expected]
        pred = [str(p.get(field)) if p.get(field) is not None else "(none)" for p in predicted]
        out[field] = {"accuracy": accuracy(exp, pred), "macro_f1": macro_f1(exp, pred), "n": len(exp)}
    return out


def classify_outcome(status: int | None, response: dict | None) -> str:
    """What the function made of the model's JSON, from its response (functions/classify-ticket
    README, "How the model is asked"):

    * ``valid``: a valid answer on the first call (``usage.model_calls`` 1);
    * ``repaired``: invalid at first, valid after the one repair call (2 calls);
    * ``invalid``: still invalid after the repair (or the repair did not fit): the result is
      ``unclassified`` with ``needs_review``;
    * ``error``: no classification at all (HTTP error, model service error).
    """
    if status != 200 or not isinstance(response, dict) or "category" not in response:
        return "error"
    if response.get("category") == "unclassified":
        return "invalid"
    calls = (response.get("usage") or {}).get("model_calls") or 1
    return "repaired" if calls >= 2 else "valid"


def classify_rates(outcomes: Sequence[str], needs_review: Sequence[bool]) -> dict[str, float | None]:
    """Rates over all items: ``json_valid`` (valid or repaired), ``first_try_valid``,
    ``repair`` (a repair call was needed: repaired or invalid), ``repair_success`` (repaired
    among those needing a repair; None when none did), ``invalid``, ``error`` and
    ``needs_review``."""
    n = len(outcomes)
    if not n:
        return {k: None for k in ("json_valid", "first_try_valid", "repair", "repair_success", "invalid", "error",
                                  "needs_review")}
    count = {k: sum(o == k for o in outcomes) for k in ("valid", "repaired", "invalid", "error")}
    needing = count["repaired"] + count["invalid"]
    return {
        "json_valid": (count["valid"] + count["repaired"]) / n,
        "first_try_valid": count["valid"] / n,
        "repair": needing / n,
        "repair_success": count["repaired"] / needing if needing else None,
        "invalid": count["invalid"] / n,
        "error": count["error"] / n,
        "needs_review": sum(bool(r) for r in needs_review) / n,
    }


# ----- translation ------------------------------------------------------------------------


def chrf(hypotheses: Sequence[str], references: Sequence[str]) -> float | None:
    """Corpus-level chrF (0-100) of ``hypotheses`` against one reference each, with
    sacrebleu's defaults. None for no items."""
    _same_length(hypotheses, references)
    if not hypotheses:
        return None
    from sacrebleu.metrics import CHRF

    return CHRF().corpus_score(list(hypotheses), [list(references)]).score


def glossary_hits(translation: str, terms: Iterable[str]) -> tuple[int, int]:
    """(required target terms present in ``translation``, terms required), case-insensitive
    after whitespace normalisation."""
    text = normalize(translation, digits=False)
    terms = [t for t in terms if t and t.strip()]
    return sum(normalize(t, digits=False) in text for t in terms), len(terms)


def adherence(hits: Iterable[tuple[int, int]]) -> float | None:
    """Share of required terms present over several translations (None when none required)."""
    found = total = 0
    for f, t in hits:
        found += f
        total += t
    return found / total if total else None


_FENCE = re.compile(r"^\s{0,3}(```|~~~)")
_HEADING = re.compile(r"^\s{0,3}#{1,6}(\s|$)")
_LIST_ITEM = re.compile(r"^\s*(?:[-*+]|\d{1,9}[.)])\s+\S")
_LINK = re.compile(r"!?\[[^\]\n]*\]\([^)\s]+(?:\s+\"[^\"\n]*\")?\)")
_CODE_SPAN = re.compile(r"(`+)(?!`)(.+?)(?<!`)\1(?!`)")


def markdown_structure(text: str) -> dict[str, int]:
    """Counts of the Markdown structure that a translation must keep: ``headings`` (ATX
    ``#`` lines), ``list_items`` (``-``/``*``/``+``/``1.``/``1)`` items), ``links`` (inline
    ``[text](url)`` and images), ``code_spans`` (inline backtick spans) and ``code_blocks``
    (fenced). Lines inside fenced code blocks count only as their block."""
    counts = {"headings": 0, "list_items": 0, "links": 0, "code_spans": 0, "code_blocks": 0}
    in_fence = None
    for line in text.splitlines():
        fence = _FENCE.match(line)
        if in_fence:
            if fence and fence.group(1) == in_fence:
                in_fence = None
            continue
        if fence:
            in_fence = fence.group(1)
            counts["code_blocks"] += 1
            continue
        if _HEADING.match(line):
            counts["headings"] += 1
        elif _LIST_ITEM.match(line):
            counts["list_items"] += 1
        counts["links"] += len(_LINK.findall(line))
        counts["code_spans"] += len(_CODE_SPAN.findall(line))
    return counts


def structure_preserved(source: str, translation: str) -> bool:
    """Whether the translation has the same number of headings, list items, links, code
    spans and code blocks as its source."""
    return markdown_structure(source) == markdown_structure(translation)


# ----- summaries --------------------------------------------------------------------------

# A digit-group separator between digits, followed by exactly three digits: 1,200 / 1.200 /
# 1 200 (also no-break and narrow no-break spaces, and the apostrophe of 1'200).
_GROUP_SEPARATOR = re.compile(r"(?<=\d)[,.\u00a0\u202f\u2009 '’](?=\d{3}(?!\d))")
_SPACES = re.compile(r"\s+")


def normalize(text: str, digits: bool = True) -> str:
    """Case-folded NFKC text with runs of whitespace as one space, trimmed; with ``digits``,
    digit-group separators are dropped (``1,200``, ``1.200``, ``1 200`` -> ``1200``)."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = _SPACES.sub(" ", text).strip()
    if digits:
        # One pass drops every separator of ``1,200,000``: the lookarounds consume nothing.
        text = _GROUP_SEPARATOR.sub("", text)
    return text


def contains(summary: str, phrase: str) -> bool:
    """Whether ``phrase`` appears in ``summary`` after normalisation of both. A phrase
    starting or ending with a digit must not touch another digit there (``12`` is not
    found in ``120``); letters may continue (``shipment`` is found in ``shipments``)."""
    needle = normalize(phrase)
    if not needle:
        return False
    haystack = normalize(summary)
    start = 0
    while (at := haystack.find(needle, start)) >= 0:
        end = at + len(needle)
        before_ok = not (needle[0].isdigit() and at > 0 and haystack[at - 1].isdigit())
        after_ok = not (needle[-1].isdigit() and end < len(haystack) and haystack[end].isdigit())
        if before_ok and after_ok:
            return True
        start = at + 1
    return False


def key_facts_found(summary: str, key_facts: Sequence[Sequence[str]]) -> list[bool]:
    """For each key fact (a list of alternatives), whether any alternative is in the summary."""
    return [any(contains(summary, alt) for alt in alternatives) for alternatives in key_facts]


def key_fact_recall(summary: str, key_facts: Sequence[Sequence[str]]) -> float | None:
    """Share of the key facts present in the summary (None for a document without any)."""
    found = key_facts_found(summary, key_facts)
    return sum(found) / len(found) if found else None


def forbidden_found(summary: str, forbidden: Sequence[str]) -> list[str]:
    """The forbidden statements present in the summary."""
    return [f for f in forbidden if contains(summary, f)]


def forbidden_rate(summary: str, forbidden: Sequence[str]) -> float | None:
    """Share of a document's forbidden statements that the summary makes (None when the
    document lists none)."""
    return len(forbidden_found(summary, forbidden)) / len(forbidden) if forbidden else None


# ----- latency, tokens, cost --------------------------------------------------------------


# ----- output language ----------------------------------------------------------------------

# Frequent function words of the six Latin-script languages (a word may belong to several).
_STOPWORDS = {
    "en": set("the and of to is are was were with for that this on be by have has will not from".split()),
    "de": set("der die das und ist sind nicht mit für ein eine auf den dem des zu von wird werden sie".split()),
    "fr": set("le la les et est sont des une un pour dans que qui pas sur avec au du ne".split()),
    "it": set("il lo la gli le e è sono di una un per che non con del della nel alla".split()),
    "pt": set("o a os as e é são de do da uma um para que não com no na em dos".split()),
    "es": set("el la los las y es son de del una un para que no con en por se al".split()),
}
_WORD = re.compile(r"[^\W\d_]+")


def guess_language(text: str) -> str | None:
    """The language of ``text`` among the eight (en, de, fr, it, pt, hi, es, th), or None when
    it has too few clues: Devanagari or Thai letters decide hi or th; otherwise the language
    whose function words occur most often (at least 3 occurrences)."""
    letters = [c for c in text if c.isalpha()]
    if not letters:
        return None
    devanagari = sum("\u0900" <= c <= "\u097f" for c in letters)
    thai = sum("\u0e00" <= c <= "\u0e7f" for c in letters)
    if max(devanagari, thai) * 2 > len(letters):
        return "hi" if devanagari > thai else "th"
    words = [w.lower() for w in _WORD.findall(text)]
    counts = {lang: sum(w in stop for w in words) for lang, stop in _STOPWORDS.items()}
    best = max(counts, key=counts.get)
    return best if counts[best] >= 3 else None


def language_rate(outputs: Sequence[tuple[str, str]]) -> float | None:
    """Share of (text, expected language) pairs whose text is in that language; texts too short
    to tell count as right."""
    outputs = list(outputs)
    if not outputs:
        return None
    return sum(guess_language(text) in (None, lang) for text, lang in outputs) / len(outputs)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0-100) with linear interpolation between closest ranks
    (numpy's default); None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def mean(values: Sequence[float]) -> float | None:
    values = [v for v in values if v is not None]
    return sum(values) / len(values) if values else None


def usage_totals(usages: Iterable[dict | None]) -> dict[str, float]:
    """Sums of ``prompt_tokens``, ``generation_tokens``, ``model_calls`` and ``cost_usd`` (a
    decimal string or number in the functions' ``usage``) over several responses."""
    out = {"prompt_tokens": 0, "generation_tokens": 0, "model_calls": 0, "cost_usd": 0.0}
    for usage in usages:
        usage = usage or {}
        for key in ("prompt_tokens", "generation_tokens", "model_calls"):
            out[key] += int(usage.get(key) or 0)
        out["cost_usd"] += float(usage.get("cost_usd") or 0)
    return out


def _same_length(a: Sequence, b: Sequence) -> None:
    if len(a) != len(b):
        raise ValueError(f"{len(a)} expected items but {len(b)} predicted")
