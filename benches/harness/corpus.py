"""Deterministic benchmark inputs: a ~2 KB support ticket and English business documents of
any size (synthetic prose in paragraphs, seeded, so every run sees the same text)."""

import random

_SUBJECTS = ["the quarterly review", "the northern warehouse", "the billing platform", "the new onboarding flow",
             "the Lisbon office", "the supplier contract", "the mobile app release", "the data migration",
             "the customer council", "the security audit", "the pricing committee", "the logistics partner"]
_VERBS = ["reported", "confirmed", "postponed", "approved", "questioned", "reviewed", "completed", "proposed",
          "rejected", "summarized", "extended", "announced"]
_OBJECTS = ["a revenue increase of {n} percent", "a budget of {n} thousand euros", "a delay of {n} days",
            "{n} new enterprise customers", "a churn rate of {n} percent", "{n} open help desk cases",
            "a backlog of {n} orders", "savings of {n} thousand dollars", "{n} hires for the next quarter",
            "an uptime of 99.{n} percent", "{n} critical findings", "a shipping cost of {n} cents per parcel"]
_CLAUSES = ["after a long discussion with the finance team", "because the previous estimate was too optimistic",
            "while the board asked for a detailed plan by the end of the month",
            "although several regional managers disagreed with the method",
            "and the committee will revisit the decision in the spring",
            "so that the roll-out can start before the holiday season",
            "which matches the trend of the last three reporting periods",
            "as requested by the largest customers in the retail segment"]
_NAMES = ["Maria Keller", "Jonas Weber", "Aisha Rahman", "Luca Bianchi", "Sofia Pereira", "Tom Becker",
          "Priya Nair", "Carlos Ortega"]


def _sentence(rng: random.Random) -> str:
    subject = rng.choice(_SUBJECTS)
    obj = rng.choice(_OBJECTS).format(n=rng.randint(2, 97))
    text = f"{rng.choice(_NAMES)} said that {subject} {rng.choice(_VERBS)} {obj}"
    if rng.random() < 0.6:
        text += f", {rng.choice(_CLAUSES)}"
    return text[0].upper() + text[1:] + "."


def document(words: int, seed: int = 7) -> str:
    """English prose of at least ``words`` whitespace-separated words, in paragraphs of
    4-9 sentences (paragraph breaks are blank lines)."""
    rng = random.Random(seed)
    paragraphs, count = [], 0
    while count < words:
        para = " ".join(_sentence(rng) for _ in range(rng.randint(4, 9)))
        paragraphs.append(para)
        count += len(para.split())
    return "\n\n".join(paragraphs) + "\n"


def document_bytes(size: int, seed: int = 11) -> str:
    """English prose of about ``size`` bytes (whole paragraphs, at least ``size``)."""
    rng = random.Random(seed)
    paragraphs, length = [], 0
    while length < size:
        para = " ".join(_sentence(rng) for _ in range(rng.randint(4, 9)))
        paragraphs.append(para)
        length += len(para) + 2
    return "\n\n".join(paragraphs) + "\n"


def ticket(size: int = 2048) -> dict:
    """A support ticket whose JSON is about ``size`` bytes."""
    body = ("Hello, I was charged twice for my March invoice INV-2291 and the second charge of 49.90 EUR "
            "still shows on my card statement. ")
    rng = random.Random(3)
    filler = ["I contacted you last week by phone and was promised a refund within five days.",
              "Our accounting team needs the corrected invoice before the month-end close.",
              "The duplicate payment was taken from the company card that we use for all subscriptions.",
              "Please also check whether the April renewal will be charged correctly.",
              "We have been customers for six years and this has never happened before."]
    out = {"subject": "Charged twice for my March invoice", "body": body, "channel": "email",
           "customer_tier": "premium", "metadata": {"ticket_id": "T-48213"}}
    import json
    while len(json.dumps(out)) + 30 < size:
        out["body"] += rng.choice(filler) + " "
    out["body"] = out["body"].strip() + " Thank you, Maria Keller"
    return out
