"""The evaluation harness: runs the evaluation set (eval/) through the real functions and
writes docs/quality.md (one section per model, and a comparison table) plus the full
results as JSON under target/eval/.

Locally (the default) it starts the offline stack of tools/local-stack/stack.py with a GGUF
model (``--model PATH``, default the SmolLM2-135M that scripts/setup.sh fetches); with
``--aws STACK`` it runs against a deployed SAM stack, found as demo.py finds it (AWS
credentials from the usual chain). Run it through ``make eval`` (scripts/eval.sh installs
and builds first): ``make eval ARGS="--model x.gguf --limit 5"``.

What is called, per task:

* classify: ``POST /tickets/classify`` with each ticket's subject and body;
* translate: ``POST /translations`` for every segment from English into each other language
  and back (14 directions), with ``source_language`` given and the segment's glossary for
  that pair when it has one;
* summarize: each document uploaded under ``incoming/`` (the S3 notification path, as the
  demo does), its record read from ``summaries/`` (or ``failed/``); a document longer than
  the context window is split and summarized by map-reduce there, and no HTTP time limit
  applies.

Locally, classify and translate get the same JSON as a synchronous Lambda invocation of the
same functions (the Step Functions task shape) by default (``--via invoke``): the local HTTP
front answers 503 after 30 s as API Gateway does, and a CPU model often needs longer for one
call. ``--via http`` uses the routes; with ``--aws`` the routes are always used. Items run
one at a time, so each latency is the item's own.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import signal
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(ROOT / "tools" / "local-stack"))

import report  # noqa: E402
import scoring  # noqa: E402

DEFAULT_MODEL = ROOT / ".cache" / "models" / "SmolLM2-135M-Instruct.Q4_1.gguf"
LANGUAGES = ("en", "de", "fr", "it", "pt", "hi", "es", "th")
TASKS = ("classify", "translate", "summarize")
# The local model's settings: as the demo's (short outputs keep a CPU model's run to minutes;
# tiny models tend to write until the limit), with room for a valid classification.
# A CPU model may need minutes for one call: no attempt timeout below the function's own.
LOCAL_FUNCTION_ENV = {"SUMMARY_CONCURRENCY": "1", "PART_SUMMARY_TOKENS": "160", "SUMMARY_LENGTH": "short",
                      "TRANSLATE_MAX_GEN_LEN": "768", "CLASSIFY_MAX_GEN_LEN": "192",
                      "BEDROCK_ATTEMPT_TIMEOUT_MS": "600000", "API_TIME_BUDGET_MS": "900000"}
ROUTE_FUNCTIONS = {"POST /tickets/classify": "classify-ticket", "POST /translations": "translate"}


class Caller:
    """Calls a function with a request body: through its HTTP route, or (locally) as a
    synchronous Lambda invocation with the same JSON (the Step Functions task shape; a
    function error's ``errorType`` is the HTTP error's ``type``)."""

    def __init__(self, stack, via: str):
        self.stack, self.via = stack, via

    def __call__(self, route: str, body: dict) -> tuple[int, dict]:
        if self.via == "http":
            return self.stack.http(route, body)
        from stack import function_arn

        resp = self.stack.lambda_().invoke(FunctionName=function_arn(ROUTE_FUNCTIONS[route]),
                                           Payload=json.dumps(body).encode())
        payload = json.loads(resp["Payload"].read() or b"{}")
        if resp.get("FunctionError"):
            return 500, {"error": {"type": payload.get("errorType"), "message": payload.get("errorMessage")}}
        return 200, payload


def load_set(root: Path) -> dict:
    """The evaluation set: tickets, translation segments and documents (with their text)."""
    def jsonl(name: str) -> list[dict]:
        return [json.loads(line) for line in (root / name).read_text(encoding="utf-8").splitlines() if line.strip()]

    tickets, segments = jsonl("tickets.jsonl"), jsonl("translations.jsonl")
    documents = json.loads((root / "documents.json").read_text(encoding="utf-8"))
    for doc in documents:
        doc["text"] = (root / doc["file"]).read_text(encoding="utf-8")
    return {"tickets": tickets, "segments": segments, "documents": documents}


def translation_requests(segment: dict) -> list[dict]:
    """The 14 requests of a segment: English into each other language and back; each with
    the reference, and the glossary of that pair (terms both languages have)."""
    out = []
    texts = segment["texts"]
    for other in LANGUAGES[1:]:
        if other not in texts or "en" not in texts:
            continue
        for src, tgt in (("en", other), (other, "en")):
            glossary = [{"term": g[src], "translation": g[tgt]} for g in segment.get("glossary") or []
                        if g.get(src) and g.get(tgt)]
            out.append({"id": segment["id"], "kind": segment.get("kind", "plain"), "source_language": src,
                        "target_language": tgt, "source": texts[src], "reference": texts[tgt],
                        "glossary": glossary})
    return out


def run_classify(call: Caller, tickets: list[dict], log) -> list[dict]:
    items = []
    for i, ticket in enumerate(tickets, 1):
        t0 = time.monotonic()
        status, body = call("POST /tickets/classify", {"subject": ticket.get("subject"),
                                                            "body": ticket.get("body")})
        latency = time.monotonic() - t0
        predicted = scoring.predicted_labels(body if status == 200 else None)
        items.append({"id": ticket["id"], "language": ticket.get("language"), "tags": ticket.get("tags") or [],
                      "expected": ticket["expected"], "predicted": predicted, "status": status,
                      "outcome": scoring.classify_outcome(status, body),
                      "needs_review": bool(body.get("needs_review")) if status == 200 else False,
                      "reason": body.get("reason") if status == 200 else (body.get("error") or body),
                      "model": body.get("model"), "usage": body.get("usage"), "latency_s": latency})
        log(f"classify {i}/{len(tickets)} {ticket['id']}: {status} {predicted} ({latency:.1f}s)")
    return items


def select(data: dict, ids: str | None, limit: int | None, sample: int | None = None) -> dict:
    """The items to run: with ``ids``, each task that has any of them listed keeps only those;
    the translation segments become their requests; with ``limit``, the first N of each; with
    ``sample``, N of each spread over the set (see :func:`spread`)."""
    keep = {i.strip() for i in (ids or "").split(",") if i.strip()}
    out = {}
    for task, items in data.items():
        if keep & {item["id"] for item in items}:
            items = [item for item in items if item["id"] in keep]
        out[task] = items
    if sample:
        return spread(out, sample)
    out["requests"] = [r for s in out.pop("segments") for r in translation_requests(s)]
    if limit:
        out = {task: items[:limit] for task, items in out.items()}
    return out


def spread(data: dict, n: int) -> dict:
    """N items of each task that cover the set: tickets taken from each language in turn, each
    time of the category picked least so far;
    translations cycling through the 14 directions, each from the next segment (evenly spaced
    over the set when N is smaller, so plain, Markdown and glossary segments all come up);
    documents evenly spaced over the list, first and last (the longest) included."""
    by_language: dict[str, list[dict]] = {}
    for ticket in data["tickets"]:
        by_language.setdefault(ticket.get("language"), []).append(ticket)
    tickets: list[dict] = []
    per_category: dict[str, int] = {}
    while len(tickets) < n and any(by_language.values()):
        for queue in by_language.values():
            if queue and len(tickets) < n:
                # The language's next ticket is the first of its least-picked expected category.
                ticket = min(queue, key=lambda t: per_category.get(t["expected"]["category"], 0))
                queue.remove(ticket)
                tickets.append(ticket)
                category = ticket["expected"]["category"]
                per_category[category] = per_category.get(category, 0) + 1
    per_segment = [translation_requests(s) for s in data["segments"]]
    requests = []
    for i in range(min(n, sum(map(len, per_segment)))):
        # Segments evenly spaced when there are more than N (the set lists them by kind).
        at = evenly(i, n, len(per_segment)) if 1 < n < len(per_segment) else i % len(per_segment)
        options = per_segment[at]
        if options:
            requests.append(options[i % len(options)])
    docs = data["documents"]
    if n >= len(docs):
        picked = docs
    elif n == 1:
        picked = docs[-1:]
    else:
        picked = [docs[evenly(k, n, len(docs))] for k in range(n)]
    return {"tickets": tickets, "requests": requests, "documents": picked}


def evenly(k: int, n: int, length: int) -> int:
    """The k-th of n indices evenly spaced over ``length`` items, first and last included (n > 1)."""
    return round(k * (length - 1) / (n - 1))


def run_translate(call: Caller, requests: list[dict], log) -> list[dict]:
    items = []
    for i, req in enumerate(requests, 1):
        payload = {"text": req["source"], "source_language": req["source_language"],
                   "target_language": req["target_language"]}
        if req["glossary"]:
            payload["glossary"] = req["glossary"]
        t0 = time.monotonic()
        status, body = call("POST /translations", payload)
        latency = time.monotonic() - t0
        translation = body.get("translation") if status == 200 else None
        items.append({**req, "status": status, "translation": translation,
                      "error": None if status == 200 else (body.get("error") or body),
                      "glossary_violations": body.get("glossary_violations"), "model": body.get("model"),
                      "usage": body.get("usage"), "latency_s": latency})
        log(f"translate {i}/{len(requests)} {req['id']} {req['source_language']}->{req['target_language']}: "
            f"{status} ({latency:.1f}s)")
    return items


def run_summarize(stack, documents: list[dict], run_id: str, log) -> list[dict]:
    items = []
    for i, doc in enumerate(documents, 1):
        key = f"incoming/eval/{run_id}/{Path(doc['file']).name}"
        t0 = time.monotonic()
        stack.upload_for_summary(key, doc["text"].encode())
        where = stack.wait_object([f"summaries/{key}.json", f"failed/{key}.json"], timeout=1800)
        latency = time.monotonic() - t0
        record = stack.get_json(where)
        ok = where.startswith("summaries/")
        items.append({"id": doc["id"], "kind": doc.get("kind"), "language": doc.get("language"),
                      "chars": len(doc["text"]), "key_facts": doc.get("key_facts") or [],
                      "forbidden": doc.get("forbidden") or [], "status": "ok" if ok else "failed",
                      "summary": record.get("summary") if ok else None,
                      "error": None if ok else record.get("error"), "parts": record.get("parts"),
                      "model": record.get("model"), "usage": record.get("usage"), "latency_s": latency})
        log(f"summarize {i}/{len(documents)} {doc['id']}: {'ok' if ok else 'failed'}, parts {record.get('parts')} "
            f"({latency:.1f}s)")
    return items


def score_classify(items: list[dict]) -> dict:
    expected = [it["expected"] for it in items]
    predicted = [it["predicted"] for it in items]
    by_tag: dict[str, list[dict]] = {}
    for it in items:
        for tag in [f"language {it['language']}"] + [f"tag {t}" for t in it["tags"]]:
            by_tag.setdefault(tag, []).append(it)
    return {
        "n": len(items),
        "fields": scoring.field_scores(expected, predicted),
        "rates": scoring.classify_rates([it["outcome"] for it in items], [it["needs_review"] for it in items]),
        "by_tag": {tag: {"n": len(group), "category_accuracy": scoring.accuracy(
            [g["expected"]["category"] for g in group], [g["predicted"]["category"] for g in group])}
            for tag, group in by_tag.items()},
    }


def score_translate(items: list[dict]) -> dict:
    pairs: dict[str, list[dict]] = {}
    for it in items:
        pairs.setdefault(f"{it['source_language']}-{it['target_language']}", []).append(it)
    pair_scores = {}
    for pair, group in pairs.items():
        # A failed translation scores as an empty hypothesis: it counts against the pair.
        pair_scores[pair] = {"n": len(group), "errors": sum(g["status"] != 200 for g in group),
                             "chrf": scoring.chrf([g["translation"] or "" for g in group],
                                                  [g["reference"] for g in group])}
    chrfs = [s["chrf"] for s in pair_scores.values() if s["chrf"] is not None]
    glossary = [scoring.glossary_hits(it["translation"] or "", [g["translation"] for g in it["glossary"]])
                for it in items if it["glossary"]]
    markdown = [it for it in items if it["kind"] == "markdown"]
    return {
        "n": len(items),
        "pairs": pair_scores,
        "chrf_mean": scoring.mean(chrfs),
        "glossary_adherence": scoring.adherence(glossary),
        "glossary_terms": sum(total for _, total in glossary),
        "structure_preserved": (sum(scoring.structure_preserved(it["source"], it["translation"] or "")
                                    for it in markdown) / len(markdown)) if markdown else None,
        "structure_n": len(markdown),
        "target_language": scoring.language_rate((it["translation"], it["target_language"])
                                                 for it in items if it["translation"]),
    }


def score_summarize(items: list[dict]) -> dict:
    docs = []
    for it in items:
        summary = it["summary"] or ""
        found = scoring.key_facts_found(summary, it["key_facts"])
        hits = scoring.forbidden_found(summary, it["forbidden"])
        docs.append({"id": it["id"], "kind": it["kind"], "language": it["language"], "chars": it["chars"],
                     "parts": it["parts"], "status": it["status"], "facts": len(found), "facts_found": sum(found),
                     "recall": sum(found) / len(found) if found else None, "forbidden_hits": hits,
                     "summary_language": scoring.guess_language(summary) if it["summary"] else None,
                     "forbidden_rate": len(hits) / len(it["forbidden"]) if it["forbidden"] else None,
                     "latency_s": it["latency_s"]})
    return {"n": len(items), "documents": docs,
            "key_fact_recall": scoring.mean([d["recall"] for d in docs]),
            # The summaries' languages as guessed once above; a summary too short to tell counts as right.
            "in_language": scoring.mean([float(d["summary_language"] in (None, d["language"]))
                                         for it, d in zip(items, docs) if it["summary"] and it["language"]]),
            "forbidden_rate": scoring.mean([d["forbidden_rate"] for d in docs])}


def perf(items: list[dict]) -> dict:
    latencies = [it["latency_s"] for it in items]
    totals = scoring.usage_totals(it.get("usage") for it in items)
    n = len(items) or 1
    return {"n": len(items), "p50_s": scoring.percentile(latencies, 50), "p90_s": scoring.percentile(latencies, 90),
            "prompt_tokens": totals["prompt_tokens"] / n, "generation_tokens": totals["generation_tokens"] / n,
            "model_calls": totals["model_calls"] / n, "cost_usd": totals["cost_usd"] / n}


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPUs ({cpu})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="GGUF model for the local stack")
    parser.add_argument("--aws", metavar="STACK", help="run against this deployed CloudFormation stack")
    parser.add_argument("--name", help="the model's name in the report (default: the GGUF's file name, or "
                                       "aws-STACK)")
    parser.add_argument("--limit", type=int, help="only the first N items of each task: tickets, translations "
                                                  "(segment by segment: en->de, de->en, en->fr, ...) and documents")
    parser.add_argument("--sample", type=int, help="N items of each task spread over the set: tickets from "
                                                   "every language in turn, translations cycling through the "
                                                   "14 directions and the segments, documents evenly spaced "
                                                   "(the longest included)")
    parser.add_argument("--ids", help="comma-separated ids (e.g. t001,s003,d13): a task with any of them listed "
                                      "keeps only those; applied before --limit")
    parser.add_argument("--tasks", default=",".join(TASKS), help="comma-separated: classify,translate,summarize")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "quality.md")
    parser.add_argument("--results-dir", type=Path, default=ROOT / "target" / "eval")
    parser.add_argument("--set", type=Path, default=ROOT / "eval", help="the evaluation set's folder")
    parser.add_argument("--context-window", type=int, default=8192, help="the local model's window (default 8192)")
    parser.add_argument("--seed", type=int, default=42,
                        help="local only: the emulator's sampling seed, so that a rerun with the same prompts "
                             "gives the same answers and a diff shows what a change did (default 42)")
    parser.add_argument("--profile", default=os.environ.get("EVAL_PROFILE", "debug"),
                        help="cargo profile directory of the local binaries (debug or release)")
    parser.add_argument("--via", choices=("invoke", "http"), default="invoke",
                        help="local only: call classify and translate as Lambda invocations (default) or "
                             "through the HTTP routes (30 s limit, as API Gateway)")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    tasks = [t.strip() for t in args.tasks.split(",") if t.strip()]
    unknown = sorted(set(tasks) - set(TASKS))
    if unknown:
        parser.error(f"unknown tasks {unknown}; choose from {', '.join(TASKS)}")
    log = (lambda _msg: None) if args.quiet else (lambda msg: print(msg, flush=True))

    data = load_set(args.set)
    data = select(data, args.ids, args.limit, args.sample)
    name = args.name or (f"aws-{args.aws}" if args.aws else args.model.name.removesuffix(".gguf"))
    run_id = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    started = time.monotonic()
    settings = {}
    if args.aws:
        from remote import RemoteStack

        target = RemoteStack(args.aws)
        backend, detail = "aws", f"deployed stack `{args.aws}` (Amazon Bedrock)"
    else:
        from stack import LocalStack, StackOptions

        if not args.model.is_file():
            parser.error(f"no model file {args.model} (scripts/setup.sh fetches the default)")
        settings = dict(LOCAL_FUNCTION_ENV)
        options = StackOptions(model=args.model, context_window=args.context_window, profile=args.profile,
                               function_env=settings, log_dir=args.results_dir / "logs",
                               emulator_args=["--sample-seed", str(args.seed)])
        target = LocalStack(options)
        backend = "local"
        detail = (f"local stack (bedrock-local with `{display_path(args.model)}`, context window "
                  f"{args.context_window}, sampling seed {args.seed}, {args.profile} binaries)")
    via = "http" if args.aws else args.via
    detail += f"; classify and translate through {'the HTTP routes' if via == 'http' else 'Lambda invocations'}"
    # A stop by SIGTERM (a timeout, Ctrl-C in make) stops the stack's processes too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    items: dict[str, list[dict]] = {}
    with target as stack:
        call = Caller(stack, via)
        log(f"stack up in {time.monotonic() - started:.1f}s ({detail})")
        if "classify" in tasks:
            items["classify"] = run_classify(call, data["tickets"], log)
        if "translate" in tasks:
            items["translate"] = run_translate(call, data["requests"], log)
        if "summarize" in tasks:
            items["summarize"] = run_summarize(stack, data["documents"], run_id, log)

    results = {
        "name": name, "backend": backend, "backend_detail": detail,
        "model": str(args.aws or display_path(args.model)),
        "models_seen": sorted({str(it["model"]) for group in items.values() for it in group if it.get("model")}),
        "command": command_line(argv),
        "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(), "limit": args.limit, "sample": args.sample, "settings": settings,
        "wall_s": time.monotonic() - started,
    }
    scorers = {"classify": score_classify, "translate": score_translate, "summarize": score_summarize}
    for task, group in items.items():
        results[task] = scorers[task](group)
    results["perf"] = {task: perf(group) for task, group in items.items()}
    results["items"] = items

    args.results_dir.mkdir(parents=True, exist_ok=True)
    out_json = args.results_dir / f"{report.slug(name)}.json"
    if out_json.exists():
        keep_other_tasks(results, json.loads(out_json.read_text(encoding="utf-8")), log)
    out_json.write_text(json.dumps(results, indent=1, ensure_ascii=False), encoding="utf-8")
    existing = args.output.read_text(encoding="utf-8") if args.output.exists() else ""
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(report.update(existing, results), encoding="utf-8")
    print(f"wrote {display_path(args.output)} (section {report.slug(name)}) and {display_path(out_json)} "
          f"in {results['wall_s']:.0f}s")
    print(report.render_comparison([report.headline(results)]))
    return 0


def keep_other_tasks(results: dict, previous: dict, log) -> None:
    """A run of some tasks re-measures those and keeps the model's earlier figures for the
    others, when that run had the same selection (``--limit``/``--sample``) and backend: one
    prompt change re-runs one task. The section then lists both commands."""
    missing = [t for t in TASKS if t not in results and t in previous]
    same = all(previous.get(k) == results.get(k) for k in ("limit", "sample", "backend_detail"))
    if not missing or not same:
        return
    for task in missing:
        results[task] = previous[task]
        results["perf"][task] = previous["perf"][task]
        results["items"][task] = previous["items"][task]
    results["command"] = (f"{previous.get('command')} ({', '.join(missing)}, {previous.get('date')}), then "
                          f"{results['command']}")
    log(f"kept the earlier {', '.join(missing)} figures of {results['name']}")


def display_path(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def command_line(argv: list[str] | None) -> str:
    args = sys.argv[1:] if argv is None else argv
    return "make eval" + (f" ARGS={shlex.quote(shlex.join(args))}" if args else "")


if __name__ == "__main__":
    sys.exit(main())
