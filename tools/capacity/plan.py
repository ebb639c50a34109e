"""The capacity planner's command line: `python tools/capacity/plan.py --help`.

Prints the caps to deploy (and the `sam deploy --parameter-overrides` that makes the
template derive the same ones), documents per hour, the time to drain the backlog, the
reserved tokens/min and requests/min at full load against the quotas, and which limit
binds. `--json` prints the plan as JSON; `--emulator` plans for the local Bedrock
emulator (its window, generation slots and token budget) instead of Bedrock.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from planner import (  # noqa: E402  (the folder is not a package on sys.path otherwise)
    DEFAULT_LANE_SHARES, DEFAULT_SIZE_MIX, Model, PlanError, Profile, Quotas, parse_shares, parse_sizes, plan,
    sizes_of_files,
)

#: The planner's defaults, which the options' defaults are.
QUOTAS, MODEL, PROFILE = Quotas(), Model(), Profile()

#: The local emulator's defaults: SmolLM2-135M's 8,192-token window, about 100 generated
#: tokens/s per call and fast prefill on a small model, no requests-per-minute quota.
EMULATOR = {"context_window": 8192, "requests_per_minute": None, "prompt_tokens_per_s": 2000,
            "output_tokens_per_s": 100, "call_overhead_s": 0.05}


def arguments(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    q = p.add_argument_group("limits")
    q.add_argument("--tokens-per-minute", type=float, default=QUOTAS.tokens_per_minute, help="Bedrock token quota")
    q.add_argument("--requests-per-minute", type=float, default=None,
                   help=f"Bedrock request quota (default {QUOTAS.requests_per_minute:g}; none with --emulator)")
    q.add_argument("--http-share", type=float, default=round(QUOTAS.http_share * 100, 6),
                   help="percent kept for the HTTP routes")
    q.add_argument("--lambda-concurrency", type=int, default=QUOTAS.lambda_concurrency,
                   help="account concurrent executions")
    q.add_argument("--max-concurrent-calls", type=int, default=None,
                   help="calls the model serves at once (the emulator's generation slots)")
    d = p.add_argument_group("documents")
    d.add_argument("--count", type=int, default=PROFILE.count, help="documents in the backlog")
    d.add_argument("--sizes", default=DEFAULT_SIZE_MIX,
                   help="size classes as tokens:percent (tokens ~ bytes/4 for English-like text)")
    d.add_argument("--sample", nargs="+", metavar="PATH",
                   help="files or folders whose sizes make the profile (bytes/4 = tokens)")
    d.add_argument("--translate-share", type=float, default=round(PROFILE.translate_share * 100, 6),
                   help="percent of workflow documents needing translation")
    m = p.add_argument_group("model")
    m.add_argument("--context-window", type=int, default=None,
                   help=f"tokens (default {MODEL.context_window}; {EMULATOR['context_window']} with --emulator)")
    m.add_argument("--prompt-tokens-per-second", type=float, default=None,
                   help=f"prefill rate (default {MODEL.prompt_tokens_per_s:g})")
    m.add_argument("--output-tokens-per-second", type=float, default=None,
                   help=f"generation rate per call (default {MODEL.output_tokens_per_s:g})")
    m.add_argument("--call-overhead-ms", type=float, default=None,
                   help=f"per-call overhead (default {MODEL.call_overhead_s * 1000:g})")
    m.add_argument("--output-fill", type=float, default=MODEL.output_fill,
                   help="share of max_gen_len a summary generates")
    m.add_argument("--estimate-ratio", type=float, default=MODEL.estimate_ratio,
                   help="the code's estimated tokens per real token (English: 1.6)")
    m.add_argument("--summary-length", choices=["short", "medium", "long"], default=MODEL.summary_length)
    m.add_argument("--part-summary-tokens", type=int, default=MODEL.part_summary_tokens, help="PART_SUMMARY_TOKENS")
    lanes = p.add_argument_group("lanes")
    lanes.add_argument("--lanes", default=DEFAULT_LANE_SHARES, help="percent of the rest for uploads,batch,workflow")
    p.add_argument("--emulator", action="store_true", help="plan for the local Bedrock emulator")
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    return p.parse_args(argv)


def inputs(args: argparse.Namespace) -> tuple[Quotas, Profile, Model, Lanes]:
    """The planner's inputs from the command line."""
    preset = EMULATOR if args.emulator else {}
    rpm = args.requests_per_minute if args.requests_per_minute is not None else (
        None if args.emulator else QUOTAS.requests_per_minute)
    quotas = Quotas(tokens_per_minute=args.tokens_per_minute, requests_per_minute=rpm,
                    http_share=args.http_share / 100, lambda_concurrency=args.lambda_concurrency,
                    max_concurrent_calls=args.max_concurrent_calls)
    sizes = sizes_of_files(args.sample) if args.sample else parse_sizes(args.sizes)
    profile = Profile(sizes=sizes, count=args.count, translate_share=args.translate_share / 100)

    def pick(value, name, default):
        return value if value is not None else preset.get(name, default)

    overhead_ms = args.call_overhead_ms
    model = Model(
        context_window=pick(args.context_window, "context_window", MODEL.context_window),
        call_overhead_s=overhead_ms / 1000 if overhead_ms is not None else preset.get(
            "call_overhead_s", MODEL.call_overhead_s),
        prompt_tokens_per_s=pick(args.prompt_tokens_per_second, "prompt_tokens_per_s", MODEL.prompt_tokens_per_s),
        output_tokens_per_s=pick(args.output_tokens_per_second, "output_tokens_per_s", MODEL.output_tokens_per_s),
        output_fill=args.output_fill, estimate_ratio=args.estimate_ratio,
        summary_length=args.summary_length, part_summary_tokens=args.part_summary_tokens)
    return quotas, profile, model, parse_shares(args.lanes)


def overrides(args: argparse.Namespace) -> str:
    """The `sam deploy` parameters that make the template's CapacityPlan derive this plan."""
    sizes = args.sizes if not args.sample else ",".join(
        f"{t}:{w:g}" for t, w in sizes_of_files(args.sample))
    pairs = [("TokensPerMinuteQuota", f"{args.tokens_per_minute:.0f}"),
             ("RequestsPerMinuteQuota", f"{args.requests_per_minute or QUOTAS.requests_per_minute:.0f}"),
             ("HttpQuotaSharePercent", f"{args.http_share:g}"),
             ("LambdaConcurrencyQuota", str(args.lambda_concurrency)),
             ("DocumentSizeMix", sizes),
             ("CapacityLaneShares", args.lanes)]
    if args.prompt_tokens_per_second is not None:
        pairs.append(("ModelPromptTokensPerSecond", f"{args.prompt_tokens_per_second:.0f}"))
    if args.output_tokens_per_second is not None:
        pairs.append(("ModelOutputTokensPerSecond", f"{args.output_tokens_per_second:.0f}"))
    if args.context_window is not None:
        pairs.append(("ContextWindow", str(args.context_window)))
    return "sam deploy --parameter-overrides " + " ".join(f'"{k}={v}"' for k, v in pairs)


def hours(value: float) -> str:
    if math.isinf(value):
        return "never"
    return f"{value * 60:.0f} min" if value < 1 else f"{value:.1f} h"


def report(result, args: argparse.Namespace) -> str:
    """The plan as text."""
    lines = ["Settings to deploy:"]
    for name, value in result.caps().items():
        lines.append(f"  {name:<24}{value}")
    if not args.emulator:
        lines.append(f"  {overrides(args)}")
    lines.append("")
    lines.append(f"{'lane':<10}{'docs at once':>13}{'calls at once':>14}{'docs/hour':>11}"
                 f"{'s/doc':>8}{'tokens/min':>12}{'requests/min':>14}  binds")
    for lane in (result.uploads, result.batch, result.workflow):
        lines.append(f"{lane.name:<10}{lane.documents:>13}{lane.peak_calls:>14}"
                     f"{lane.documents_per_hour:>11,.0f}{lane.seconds_per_document:>8.1f}"
                     f"{lane.tokens_per_minute:>12,.0f}{lane.requests_per_minute:>14,.1f}  {lane.binding}")
    budget = f"{result.request_budget:,.0f}" if result.request_budget is not None else "no limit"
    lines += [
        "",
        f"All lanes at full load: {result.tokens_per_minute:,.0f} tokens/min reserved of "
        f"{result.token_budget:,.0f} ({result.tokens_per_minute / result.token_budget:.0%}), "
        f"{result.requests_per_minute:,.0f} requests/min of {budget}, "
        f"{result.lambdas} Lambda invocations of {result.lambda_budget:,.0f} "
        f"(the quotas less {args.http_share:g}% for HTTP).",
        f"Binding limit: {result.binding}.",
        f"Backlog of {args.count:,} documents: {hours(result.upload_drain_hours)} through the upload "
        f"queue, {hours(result.batch_drain_hours)} through the batch workflow.",
    ]
    lines += [f"Warning: {w}" for w in result.warnings]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = arguments(argv)
    try:
        result = plan(*inputs(args))
    except (PlanError, OSError) as e:
        print(f"plan: {e}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps(result.to_dict(), indent=2, default=str))
    else:
        print(report(result, args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
