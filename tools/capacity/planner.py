"""Capacity planner: concurrency caps that keep the system within its Bedrock quotas.

Pure functions and dataclasses, no dependencies beyond the standard library: the same
module runs as the CLI (`plan.py`), inside the CloudFormation custom resource that sets
the deployed caps (`custom_resource.py`), and in the local stack and load bench.

The model (docs/capacity.md explains it with figures):

- **What a call costs.** Bedrock reserves `prompt tokens + max_gen_len` of the
  tokens-per-minute quota when a call starts (it hands back the unused part when the call
  ends, but admission is decided on the reservation) and counts one request of the
  requests-per-minute quota. The planner charges every call its full reservation, so the
  figures are an upper bound of what Bedrock counts.
- **How long a call takes.** `overhead + prompt / prompt rate + generated / output rate`,
  with the generated tokens a fraction (`output_fill`) of `max_gen_len` for summaries.
- **Calls per document** follow functions/summarize-document/src/summarize.rs: one call
  when the text fits the window with its final summary; else parts of the usable window
  (summarized `part_concurrency` at a time, `PART_SUMMARY_TOKENS` each), combination
  rounds while the part summaries do not fit one call, and the final call. Sizes are
  computed in the code's *estimated* tokens (shared/tokens over-counts English by about
  64%, `estimate_ratio`), prompts are charged in real tokens.
- **Little's law.** A lane with `N` documents in flight, each taking `D` seconds, finishes
  `N / D` documents a second; its token and request rates follow from the per-document
  means over the size profile.
- **Lanes.** The HTTP routes keep `http_share` of every limit. The rest is split between
  the upload queue's consumers, the batch workflow's Distributed Map and the document
  workflow (`LaneShares`): each lane's cap keeps the lane within its share of both quotas,
  of the Lambda concurrency and (locally) of the emulator's generation slots, so all lanes
  at full load together stay within `1 - http_share` of every limit.
"""

from __future__ import annotations

import math
from dataclasses import asdict, astuple, dataclass, field

# ---------------------------------------------------------------- the code's numbers

#: Largest `max_gen_len` Bedrock accepts for Llama 3.2 (shared/bedrock/src/params.rs).
MAX_GEN_LEN_LIMIT = 2048
#: Final summary `max_gen_len` per length (functions/summarize-document/src/options.rs).
SUMMARY_MAX_GEN_LEN = {"short": 192, "medium": 512, "long": 1024}
#: Estimated tokens of a summary prompt's instructions and chat template (system prompts
#: of about 60-80 words plus the Llama 3 header tokens, as the code's estimator prices them).
PROMPT_OVERHEAD_TOKENS = 120
#: Tokens `Sizes::new` keeps free beside a part's instructions.
PART_MARGIN_TOKENS = 16
#: Estimated tokens per part summary in a combination prompt beyond the summary itself
#: (`summarize::workload` counts `part_len + 8`).
SUMMARY_SEPARATOR_TOKENS = 8
#: Translation: source tokens per chunk are at most `max_gen_len` / the target's expansion,
#: in hundredths (functions/translate/src/expansion.rs: 135 into the working language's
#: Latin script, 200 into Hindi or Thai), and each call reserves `max_gen_len`.
TRANSLATE_EXPANSION_PERCENT = 135
#: Estimated tokens of the translation instructions (no glossary).
TRANSLATE_OVERHEAD_TOKENS = 200
#: Real tokens a translation generates per real source token (Latin-script targets;
#: Hindi and Thai take up to twice the source's).
TRANSLATE_OUTPUT_RATIO = 1.25
#: Chunks translated at once (TRANSLATE_CONCURRENCY's default).
TRANSLATE_CONCURRENCY = 4
#: Classification: prompt (taxonomy and instructions) and answer, in real tokens; the
#: answer is a JSON object with a rationale of at most 300 characters.
CLASSIFY_PROMPT_TOKENS = 700
CLASSIFY_ANSWER_TOKENS = 130

#: Bounds of each cap: SUMMARY_CONCURRENCY (the template allowed 1-32), the workflow Map
#: (MaxConcurrency 1-40 as before), SQS ScalingConfig.MaximumConcurrency (2-1000) and the
#: Distributed Map (MaxConcurrency up to 10,000 child executions).
PART_CONCURRENCY_RANGE = (1, 32)
#: The upload queue's MessageRetentionPeriod in template.yaml (10 days; a test checks that
#: they match): a backlog that takes longer to drain loses its oldest notifications.
UPLOAD_QUEUE_RETENTION_S = 10 * 24 * 3600
WORKFLOW_MAP_RANGE = (1, 40)
UPLOAD_CONSUMERS_RANGE = (2, 1000)
BATCH_CONCURRENCY_RANGE = (1, 10_000)

#: Names of the limits a lane can be bound by.
TOKENS, REQUESTS, LAMBDA, MODEL_SLOTS, MINIMUM, MAXIMUM = (
    "tokens/min",
    "requests/min",
    "Lambda concurrency",
    "model concurrency",
    "cap minimum",
    "cap maximum",
)


class PlanError(ValueError):
    """Inputs the planner cannot work with (the message says which and why)."""


# ---------------------------------------------------------------- inputs


@dataclass(frozen=True)
class Quotas:
    """The account's limits and the share kept for the HTTP routes."""

    #: Bedrock tokens per minute (Llama 3.2 3B cross-region default: 600,000, adjustable).
    tokens_per_minute: float = 600_000
    #: Bedrock requests per minute (default 1,600, not adjustable); None: no such limit.
    requests_per_minute: float | None = 1_600
    #: Share of every limit kept for the HTTP routes (0-0.9).
    http_share: float = 0.20
    #: Lambda concurrent executions of the account (default 1,000).
    lambda_concurrency: int = 1_000
    #: Calls the model serves at once (the local emulator's generation slots); None on
    #: Bedrock, whose limits are the per-minute quotas.
    max_concurrent_calls: int | None = None

    def check(self) -> None:
        """Raises PlanError on values that cannot be planned with."""
        positive("tokens per minute", self.tokens_per_minute)
        if self.requests_per_minute is not None:
            positive("requests per minute", self.requests_per_minute)
        if not 0 <= self.http_share <= 0.9:
            raise PlanError(f"HTTP share must be 0-90%, got {self.http_share * 100:g}%")
        positive("Lambda concurrency", self.lambda_concurrency)
        if self.max_concurrent_calls is not None:
            positive("max concurrent calls", self.max_concurrent_calls)


@dataclass(frozen=True)
class Model:
    """The model's window and speed, and the code's token sizes."""

    #: Context window (BEDROCK_CONTEXT_WINDOW; Llama 3.2 on Bedrock: 131,072).
    context_window: int = 131_072
    #: Seconds a call takes besides prompt and generation (request, queueing, first token).
    call_overhead_s: float = 0.3
    #: Prompt tokens processed per second (the template's API_PROMPT_TOKENS_PER_SECOND).
    prompt_tokens_per_s: float = 10_000
    #: Tokens generated per second per call (API_GENERATION_TOKENS_PER_SECOND).
    output_tokens_per_s: float = 100
    #: Share of `max_gen_len` a summary call generates (the prompts ask for about half).
    output_fill: float = 0.6
    #: The code's estimated tokens per real token (shared/tokens: English +64%).
    estimate_ratio: float = 1.6
    #: PART_SUMMARY_TOKENS.
    part_summary_tokens: int = 384
    #: CHUNK_OVERLAP_PER_MILLE.
    overlap_per_mille: int = 10
    #: SUMMARY_LENGTH of the upload path and the workflow.
    summary_length: str = "medium"
    #: CLASSIFY_MAX_GEN_LEN.
    classify_max_gen_len: int = 256
    #: TRANSLATE_MAX_GEN_LEN.
    translate_max_gen_len: int = MAX_GEN_LEN_LIMIT

    def check(self) -> None:
        """Raises PlanError on values that cannot be planned with."""
        if self.context_window < 4096:
            raise PlanError(f"context window must be at least 4096, got {self.context_window}")
        for name in ("call_overhead_s",):
            if getattr(self, name) < 0:
                raise PlanError(f"{name} must not be negative")
        positive("prompt tokens per second", self.prompt_tokens_per_s)
        positive("output tokens per second", self.output_tokens_per_s)
        if not 0 < self.output_fill <= 1:
            raise PlanError(f"output fill must be in (0, 1], got {self.output_fill}")
        if not 0.5 <= self.estimate_ratio <= 4:
            raise PlanError(f"estimate ratio must be 0.5-4, got {self.estimate_ratio}")
        if self.summary_length not in SUMMARY_MAX_GEN_LEN:
            raise PlanError(f"summary length must be one of {', '.join(SUMMARY_MAX_GEN_LEN)}")
        for name in ("part_summary_tokens", "classify_max_gen_len", "translate_max_gen_len"):
            value = getattr(self, name)
            if not 16 <= value <= MAX_GEN_LEN_LIMIT:
                raise PlanError(f"{name} must be 16-{MAX_GEN_LEN_LIMIT}, got {value}")

    @property
    def final_len(self) -> int:
        """`max_gen_len` of the final summary call (`Sizes::new`)."""
        return min(SUMMARY_MAX_GEN_LEN[self.summary_length], self.context_window // 4)

    @property
    def part_len(self) -> int:
        """`max_gen_len` of a part summary and a combination round."""
        return max(16, min(self.part_summary_tokens, self.context_window // 8))

    @property
    def part_tokens(self) -> int:
        """Most estimated document tokens in one part."""
        return max(64, self.context_window - self.part_len - PROMPT_OVERHEAD_TOKENS - PART_MARGIN_TOKENS)


@dataclass(frozen=True)
class Profile:
    """The documents: how many, their sizes, how many need translation (workflow)."""

    #: (real tokens, weight) per size class; weights need not add up to 100.
    sizes: tuple[tuple[int, float], ...] = ((1_500, 70), (8_000, 25), (40_000, 5))
    #: Documents in the backlog.
    count: int = 10_000
    #: Share of workflow documents in another language than the working one (0-1).
    translate_share: float = 0.0

    def check(self) -> None:
        """Raises PlanError on values that cannot be planned with."""
        if not self.sizes:
            raise PlanError("the size profile is empty")
        for tokens, weight in self.sizes:
            if tokens < 1 or weight < 0:
                raise PlanError(f"bad size class {tokens}:{weight}")
        if sum(w for _, w in self.sizes) <= 0:
            raise PlanError("the size profile's weights add up to 0")
        if self.count < 0:
            raise PlanError("the document count must not be negative")
        if not 0 <= self.translate_share <= 1:
            raise PlanError("the translation share must be 0-100%")

    def classes(self) -> list[tuple[int, float]]:
        """(tokens, probability) per size class."""
        total = sum(w for _, w in self.sizes)
        return [(t, w / total) for t, w in self.sizes if w > 0]


@dataclass(frozen=True)
class Lanes:
    """How the non-HTTP share of every limit is split. Uploads are the common path, so
    they get most of it: a backlog drains through one lane at a time, and the other lanes'
    shares sit unused meanwhile (docs/capacity.md)."""

    uploads: float = 0.70
    batch: float = 0.20
    #: A lane with share 0 is planned as off: its cap is its minimum, left out of the totals
    #: (e.g. a load test of the upload queue alone: 1, 0, 0).
    workflow: float = 0.10

    def check(self) -> None:
        """Raises PlanError on values that cannot be planned with."""
        shares = (self.uploads, self.batch, self.workflow)
        if min(shares) < 0 or not math.isclose(sum(shares), 1.0, abs_tol=1e-6):
            raise PlanError(f"lane shares must be non-negative and add up to 100%, got {shares}")


def positive(name: str, value: float) -> None:
    """Raises PlanError unless `value` is a finite number above 0."""
    if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise PlanError(f"{name} must be above 0, got {value!r}")


# ---------------------------------------------------------------- calls and documents


@dataclass(frozen=True)
class Call:
    """One model call: real prompt tokens, its `max_gen_len`, tokens it generates."""

    prompt_tokens: float
    max_gen_len: int
    generated: float

    @property
    def reserved(self) -> float:
        """Tokens the quota reserves when the call starts."""
        return self.prompt_tokens + self.max_gen_len

    def seconds(self, model: Model) -> float:
        """How long the call takes."""
        return (
            model.call_overhead_s
            + self.prompt_tokens / model.prompt_tokens_per_s
            + self.generated / model.output_tokens_per_s
        )


@dataclass(frozen=True)
class Stage:
    """Calls that run `width` at a time (a Map of parts) or one after the other (1)."""

    calls: tuple[Call, ...]
    width: int = 1

    def seconds(self, model: Model) -> float:
        """A lower bound of the stage's time: the longest call, or all calls spread
        evenly over `width` slots (a lower bound keeps the rates an upper bound)."""
        times = [c.seconds(model) for c in self.calls]
        return max(max(times), sum(times) / max(1, self.width)) if times else 0.0


@dataclass(frozen=True)
class Workload:
    """The model calls of one document, stage after stage."""

    stages: tuple[Stage, ...]

    @property
    def calls(self) -> int:
        return sum(len(s.calls) for s in self.stages)

    @property
    def reserved(self) -> float:
        return sum(c.reserved for s in self.stages for c in s.calls)

    @property
    def peak_calls(self) -> int:
        """Most calls in flight at once."""
        return max((min(s.width, len(s.calls)) for s in self.stages), default=0)

    def seconds(self, model: Model) -> float:
        return sum(s.seconds(model) for s in self.stages)


def summary_call(model: Model, prompt_estimate: float, max_gen_len: int) -> Call:
    """A summary call whose prompt the code estimates at `prompt_estimate` tokens."""
    return Call(prompt_estimate / model.estimate_ratio, max_gen_len, model.output_fill * max_gen_len)


def split_parts(model: Model, estimate: float) -> list[float]:
    """Estimated tokens of each part `text::split` makes of a text of `estimate` tokens."""
    size, overlap = model.part_tokens, model.part_tokens * model.overlap_per_mille // 1000
    parts, start = [], 0.0
    while True:
        end = min(estimate, start + size)
        parts.append(end - start)
        if end >= estimate:
            return parts
        start = end - overlap


def map_reduce(model: Model, estimate: float, width: int) -> list[Stage]:
    """The stages of summarizing `estimate` tokens in parts (as `summarize::workload`)."""
    parts = split_parts(model, estimate)
    stages = [
        Stage(
            tuple(summary_call(model, PROMPT_OVERHEAD_TOKENS + p, model.part_len) for p in parts),
            width,
        )
    ]
    summaries = len(parts)
    if summaries == 1:
        return stages
    window, per_summary = model.context_window, model.part_len + SUMMARY_SEPARATOR_TOKENS
    while True:
        prompt = PROMPT_OVERHEAD_TOKENS + per_summary * summaries
        if prompt + model.final_len <= window:
            real = PROMPT_OVERHEAD_TOKENS + summaries * model.part_len * model.output_fill
            final = summary_call(model, real * model.estimate_ratio, model.final_len)
            return stages + [Stage((final,))]
        per_group = max(2, (window - PROMPT_OVERHEAD_TOKENS - model.part_len) // per_summary)
        groups = math.ceil(summaries / per_group)
        if groups >= summaries:
            return stages  # the code refuses before a call (ContextOverflow)
        real = PROMPT_OVERHEAD_TOKENS + per_group * model.part_len * model.output_fill
        group = summary_call(model, real * model.estimate_ratio, model.part_len)
        stages.append(Stage((group,) * groups, width))
        summaries = groups


def summarize_workload(model: Model, tokens: float, width: int) -> Workload:
    """The calls summarize-document makes for a document of `tokens` real tokens
    (upload queue and batch workflow), `width` parts at a time."""
    estimate = tokens * model.estimate_ratio
    if estimate + PROMPT_OVERHEAD_TOKENS + model.final_len <= model.context_window:
        return Workload((Stage((summary_call(model, estimate + PROMPT_OVERHEAD_TOKENS, model.final_len),)),))
    return Workload(tuple(map_reduce(model, estimate, width)))


def translate_stage(model: Model, tokens: float) -> Stage:
    """The translation of `tokens` real tokens into the working language."""
    chunk = model.translate_max_gen_len * 100 // TRANSLATE_EXPANSION_PERCENT  # estimated tokens
    estimate = tokens * model.estimate_ratio
    calls = []
    for i in range(max(1, math.ceil(estimate / chunk))):
        source = min(chunk, estimate - i * chunk) / model.estimate_ratio
        prompt = source + TRANSLATE_OVERHEAD_TOKENS / model.estimate_ratio
        calls.append(Call(prompt, model.translate_max_gen_len, source * TRANSLATE_OUTPUT_RATIO))
    return Stage(tuple(calls), TRANSLATE_CONCURRENCY)


def classify_call(model: Model) -> Call:
    """The workflow's classification of the summary."""
    summary = model.final_len * model.output_fill
    return Call(CLASSIFY_PROMPT_TOKENS + summary, model.classify_max_gen_len, CLASSIFY_ANSWER_TOKENS)


def workflow_workload(model: Model, tokens: float, translate: bool, width: int) -> Workload:
    """The calls of one document workflow execution: the translation when needed, a Map
    of parts (one part for a short text; one part's summary needs no combination), the
    combination and the classification."""
    stages = [translate_stage(model, tokens)] if translate else []
    stages += map_reduce(model, tokens * model.estimate_ratio, width)
    return Workload(tuple(stages + [Stage((classify_call(model),))]))


@dataclass(frozen=True)
class Mix:
    """Per-document means over a size profile (Little's law works on means)."""

    calls: float
    reserved: float
    seconds: float
    #: The most calls one document has in flight at once.
    peak_calls: int
    #: Reserved tokens per second of the most token-hungry class (every document in
    #: flight of that class: the lane's worst case).
    worst_tokens_per_s: float

    @staticmethod
    def of(items: list[tuple[Workload, float]], model: Model) -> "Mix":
        return Mix(
            calls=sum(w.calls * p for w, p in items),
            reserved=sum(w.reserved * p for w, p in items),
            seconds=sum(w.seconds(model) * p for w, p in items),
            peak_calls=max(w.peak_calls for w, _ in items),
            worst_tokens_per_s=max(w.reserved / w.seconds(model) for w, _ in items),
        )


# ---------------------------------------------------------------- the plan


@dataclass(frozen=True)
class LanePlan:
    """One lane at full load."""

    name: str
    #: Share of the non-HTTP limits.
    share: float
    #: Documents in flight (queue consumers, Map concurrency, workflow executions).
    documents: int
    #: Most model calls in flight (documents times the in-document concurrency).
    peak_calls: int
    #: Lambda invocations in flight.
    lambdas: int
    documents_per_hour: float
    #: Reserved tokens and requests per minute at full load.
    tokens_per_minute: float
    requests_per_minute: float
    #: Reserved tokens per minute if every document in flight were of the most
    #: token-hungry class of the profile.
    worst_tokens_per_minute: float
    #: Mean seconds per document and model calls per document.
    seconds_per_document: float
    calls_per_document: float
    #: The limit that set the cap.
    binding: str


@dataclass(frozen=True)
class Plan:
    """The caps to deploy and what they give."""

    #: SQS event source ScalingConfig.MaximumConcurrency of the upload queue.
    upload_consumers: int
    #: SUMMARY_CONCURRENCY: parts of one document summarized at once (upload queue,
    #: batch workflow).
    part_concurrency: int
    #: HTTP_SUMMARY_CONCURRENCY: parts of one HTTP request (`POST /summaries`, its jobs,
    #: the stream) summarized at once.
    http_part_concurrency: int
    #: The document workflow's Map MaxConcurrency.
    workflow_map_concurrency: int
    #: The batch workflow's Distributed Map MaxConcurrency.
    batch_concurrency: int
    uploads: LanePlan
    batch: LanePlan
    workflow: LanePlan
    #: All lanes at full load, and the limits they are held to (1 - HTTP share).
    tokens_per_minute: float
    requests_per_minute: float
    lambdas: int
    token_budget: float
    request_budget: float | None
    lambda_budget: float
    #: The limit closest to full use when all lanes run at full load.
    binding: str
    #: Hours to drain the profile's backlog through the upload queue and the batch workflow.
    upload_drain_hours: float
    batch_drain_hours: float
    warnings: tuple[str, ...] = field(default=())

    def caps(self) -> dict[str, int]:
        """The four caps under the custom resource's attribute names."""
        return {
            "UploadConsumers": self.upload_consumers,
            "PartConcurrency": self.part_concurrency,
            "HttpPartConcurrency": self.http_part_concurrency,
            "WorkflowMapConcurrency": self.workflow_map_concurrency,
            "BatchConcurrency": self.batch_concurrency,
        }

    def to_dict(self) -> dict:
        """A JSON-ready dict (the CLI's --json)."""
        return asdict(self)


def plan(quotas: Quotas = Quotas(), profile: Profile = Profile(), model: Model = Model(),
         lanes: Lanes = Lanes()) -> Plan:
    """The caps for `quotas`, `profile`, `model` and `lanes`, and their figures.

    >>> p = plan()
    >>> p.tokens_per_minute <= p.token_budget
    True
    """
    for part in (quotas, profile, model, lanes):
        part.check()
    usable = 1 - quotas.http_share
    warnings: list[str] = []

    def budget(share: float) -> dict[str, float]:
        """The limits of a lane with `share` of the non-HTTP part, per second."""
        out = {TOKENS: quotas.tokens_per_minute * usable * share / 60,
               LAMBDA: quotas.lambda_concurrency * usable * share}
        if quotas.requests_per_minute is not None:
            out[REQUESTS] = quotas.requests_per_minute * usable * share / 60
        if quotas.max_concurrent_calls is not None:
            out[MODEL_SLOTS] = quotas.max_concurrent_calls * usable * share
        return out

    # In-document concurrency: the most full-window part calls one document may run at
    # once within the smaller document lane's share (more would throttle a lane that
    # holds one long document). Profile-independent: a longer document may come.
    # (Parts run inside the document's one invocation; each workflow Map item is one.)
    full_part = summary_call(model, PROMPT_OVERHEAD_TOKENS + model.part_tokens, model.part_len)
    doc_budget = budget(min([s for s in (lanes.uploads, lanes.batch) if s > 0], default=0))
    part_concurrency, _ = widest(full_part, model, doc_budget, 1, PART_CONCURRENCY_RANGE, 0)
    if quotas.max_concurrent_calls is not None:
        # A model with a fixed number of slots serves as many calls a minute however they
        # are spread: one call per document lets every consumer hold a slot without ever
        # asking for more slots than there are.
        part_concurrency = 1
    map_concurrency, _ = widest(full_part, model, budget(lanes.workflow), 1, WORKFLOW_MAP_RANGE, 1)
    http_part_concurrency = http_parts(full_part, quotas)

    classes = profile.classes()
    summarize_mix = Mix.of([(summarize_workload(model, t, part_concurrency), p) for t, p in classes], model)
    uploads = document_lane("uploads", lanes.uploads, summarize_mix, budget(lanes.uploads),
                            UPLOAD_CONSUMERS_RANGE, part_concurrency, warnings)
    batch = document_lane("batch", lanes.batch, summarize_mix, budget(lanes.batch),
                          BATCH_CONCURRENCY_RANGE, part_concurrency, warnings)
    workflow = workflow_lane(model, profile, lanes.workflow, map_concurrency, budget(lanes.workflow), warnings)

    all_lanes = [lane for lane in (uploads, batch, workflow) if lane.share > 0]
    tokens = sum(l.tokens_per_minute for l in all_lanes)
    requests = sum(l.requests_per_minute for l in all_lanes)
    lambdas = sum(l.lambdas for l in all_lanes)
    use = {TOKENS: tokens / (quotas.tokens_per_minute * usable),
           LAMBDA: lambdas / (quotas.lambda_concurrency * usable)}
    if quotas.requests_per_minute is not None:
        use[REQUESTS] = requests / (quotas.requests_per_minute * usable)
    if quotas.max_concurrent_calls is not None:
        use[MODEL_SLOTS] = sum(l.peak_calls for l in all_lanes) / (quotas.max_concurrent_calls * usable)
    for lane in (uploads, batch):
        if lane.share > 0 and lane.worst_tokens_per_minute > quotas.tokens_per_minute * usable * lane.share * 1.5:
            warnings.append(
                f"{lane.name}: a run of the profile's most token-hungry documents would reserve "
                f"{lane.worst_tokens_per_minute:,.0f} tokens/min, above the lane's share; "
                "Bedrock throttles it and the calls retry with backoff")
    upload_drain = drain_hours(profile.count, uploads.documents_per_hour)
    if lanes.uploads > 0 and upload_drain * 3600 > UPLOAD_QUEUE_RETENTION_S:
        warnings.append(
            f"uploads: {profile.count:,} documents take {upload_drain:,.0f} h through the upload "
            f"queue, longer than its retention of {UPLOAD_QUEUE_RETENTION_S // 86400} days: SQS "
            "deletes the oldest notifications unprocessed; raise the quotas or the lane's share, "
            "or send the backlog through the batch workflow")
    return Plan(
        upload_consumers=uploads.documents,
        part_concurrency=part_concurrency,
        http_part_concurrency=http_part_concurrency,
        workflow_map_concurrency=map_concurrency,
        batch_concurrency=batch.documents,
        uploads=uploads,
        batch=batch,
        workflow=workflow,
        tokens_per_minute=tokens,
        requests_per_minute=requests,
        lambdas=lambdas,
        token_budget=quotas.tokens_per_minute * usable,
        request_budget=None if quotas.requests_per_minute is None else quotas.requests_per_minute * usable,
        lambda_budget=quotas.lambda_concurrency * usable,
        binding=max(use, key=use.get),
        upload_drain_hours=upload_drain,
        batch_drain_hours=drain_hours(profile.count, batch.documents_per_hour),
        warnings=tuple(warnings),
    )


def widest(call: Call, model: Model, limits: dict[str, float], documents: int,
           bounds: tuple[int, int], lambdas_per_slot: float) -> tuple[int, str]:
    """The most copies of `call` that `documents` documents may each run back to back at
    once within `limits` (per second), within `bounds`; and the limit that set it."""
    seconds = call.seconds(model)
    per_slot = {TOKENS: call.reserved / seconds, REQUESTS: 1 / seconds, LAMBDA: lambdas_per_slot,
                MODEL_SLOTS: 1.0}
    room = {k: limits[k] / (per_slot[k] * documents) for k in limits if per_slot[k] > 0}
    binding = min(room, key=room.get)
    return clamp(whole(room[binding]), bounds, binding)


def http_parts(call: Call, quotas: Quotas) -> int:
    """The most copies of `call` (a full-size part) one HTTP request may start at once
    within the HTTP share. A request is a burst (API Gateway ends it after 30 s), not a
    lane at full load: its parts start together, so their reservations land in the same
    minute and must fit the share's tokens and requests per minute (and its model slots)."""
    share = quotas.http_share
    room = [quotas.tokens_per_minute * share / call.reserved]
    if quotas.requests_per_minute is not None:
        room.append(quotas.requests_per_minute * share)
    if quotas.max_concurrent_calls is not None:
        room.append(quotas.max_concurrent_calls * share)
    return clamp(whole(min(room)), PART_CONCURRENCY_RANGE, "")[0]


def whole(value: float) -> int:
    """`value` rounded down, forgiving float noise (0.29 * 100 is 28.999...)."""
    return math.floor(value + 1e-9)


def clamp(value: int, bounds: tuple[int, int], binding: str) -> tuple[int, str]:
    """`value` within `bounds`, and what set it."""
    low, high = bounds
    if value < low:
        return low, MINIMUM
    if value > high:
        return high, MAXIMUM
    return value, binding


def document_lane(name: str, share: float, mix: Mix, limits: dict[str, float],
                  bounds: tuple[int, int], width: int, warnings: list[str],
                  lambdas_each: int = 1) -> LanePlan:
    """A lane whose consumers each take one document at a time (Little's law), each
    running at most `width` calls and `lambdas_each` invocations at once."""
    rate = {TOKENS: mix.reserved, REQUESTS: mix.calls}  # per document
    room = {k: limits[k] / rate[k] * mix.seconds for k in rate if k in limits}
    room[LAMBDA] = limits[LAMBDA] / lambdas_each
    calls_each = max(1, min(width, mix.peak_calls))
    if MODEL_SLOTS in limits:
        room[MODEL_SLOTS] = limits[MODEL_SLOTS] / calls_each
    binding = min(room, key=room.get)
    documents, binding = clamp(whole(room[binding]), bounds, binding)
    if binding == MINIMUM and share > 0:
        warnings.append(f"{name}: its share allows {room[min(room, key=room.get)]:.2f} documents "
                        f"at once, below the minimum {bounds[0]}: the lane can exceed its share")
    return lane_at(name, share, documents, mix, calls_each, lambdas_each, binding)


def lane_at(name: str, share: float, documents: int, mix: Mix, calls_each: int,
            lambdas_each: int, binding: str) -> LanePlan:
    """The figures of a lane with `documents` in flight."""
    per_second = documents / mix.seconds
    return LanePlan(
        name=name,
        share=share,
        documents=documents,
        peak_calls=documents * calls_each,
        lambdas=documents * lambdas_each,
        documents_per_hour=per_second * 3600,
        tokens_per_minute=per_second * mix.reserved * 60,
        requests_per_minute=per_second * mix.calls * 60,
        worst_tokens_per_minute=documents * mix.worst_tokens_per_s * 60,
        seconds_per_document=mix.seconds,
        calls_per_document=mix.calls,
        binding=binding,
    )


def workflow_lane(model: Model, profile: Profile, share: float, width: int,
                  limits: dict[str, float], warnings: list[str]) -> LanePlan:
    """The document workflow: its Map runs `width` parts at a time (one invocation each),
    the translation TRANSLATE_CONCURRENCY chunks at a time. EventBridge starts an
    execution per upload, uncapped: the lane's `documents` are the executions its share
    sustains at once (more get throttled and retried)."""
    items = []
    for tokens, p in profile.classes():
        if profile.translate_share > 0:
            items.append((workflow_workload(model, tokens, True, width), p * profile.translate_share))
        if profile.translate_share < 1:
            items.append((workflow_workload(model, tokens, False, width), p * (1 - profile.translate_share)))
    mix = Mix.of(items, model)
    return document_lane("workflow", share, mix, limits, (1, 10_000), mix.peak_calls, warnings, width)


def emulator_caps(slots: int, call_seconds: float, tokens_per_minute: float,
                  requests_per_minute: float | None, http_share_percent: float, *,
                  sizes: tuple[tuple[int, float], ...],
                  context_window: int = 8192, lambda_concurrency: int = 1000) -> dict:
    """The caps for a load test against the local emulator: `slots` concurrent generations
    of `call_seconds` each (a scripted call takes that long whatever its tokens), a
    per-minute token and request budget, `http_share_percent` kept for the HTTP routes,
    documents of the load test's own `sizes` (real tokens, weight).
    Each lane is planned as if it ran alone with all of the non-HTTP share (the load test
    drains the upload queue and the batch workflow one after the other).

    Returns `upload_consumers`, `part_concurrency`, `http_part_concurrency`,
    `workflow_map_concurrency`, `batch_concurrency` and `binding` (of the upload lane)."""
    quotas = Quotas(tokens_per_minute, requests_per_minute, http_share_percent / 100,
                    lambda_concurrency, slots)
    model = Model(context_window=context_window, call_overhead_s=call_seconds,
                  prompt_tokens_per_s=1e12, output_tokens_per_s=1e12)
    profile = Profile(sizes=sizes, count=0)
    uploads = plan(quotas, profile, model, Lanes(1, 0, 0))
    batch = plan(quotas, profile, model, Lanes(0, 1, 0))
    workflow = plan(quotas, profile, model, Lanes(0, 0, 1))
    return {
        "upload_consumers": uploads.upload_consumers,
        "part_concurrency": uploads.part_concurrency,
        "http_part_concurrency": uploads.http_part_concurrency,
        "workflow_map_concurrency": workflow.workflow_map_concurrency,
        "batch_concurrency": batch.batch_concurrency,
        "binding": uploads.uploads.binding,
    }


def drain_hours(count: int, per_hour: float) -> float:
    """Hours to finish `count` documents at `per_hour`."""
    return count / per_hour if per_hour > 0 else math.inf


# ---------------------------------------------------------------- parsing helpers


#: The default size mix as the template's DocumentSizeMix and the command line write it:
#: mostly emails and tickets, a quarter reports of ~30 KB, a few long documents of ~160 KB.
DEFAULT_SIZE_MIX = ",".join(f"{tokens}:{weight:g}" for tokens, weight in Profile.sizes)
#: The default lane shares as the template's CapacityLaneShares and `--lanes` write them.
DEFAULT_LANE_SHARES = ",".join(f"{share * 100:g}" for share in astuple(Lanes()))


def parse_sizes(text: str) -> tuple[tuple[int, float], ...]:
    """`tokens:percent,...` (e.g. `1500:70,8000:25,40000:5`) as size classes."""
    classes = []
    for item in text.replace(" ", "").split(","):
        if not item:
            continue
        tokens, sep, weight = item.partition(":")
        try:
            classes.append((int(tokens), float(weight) if sep else 1.0))
        except ValueError:
            raise PlanError(f"size class {item!r} is not tokens:percent (e.g. 2000:70)") from None
    if not classes:
        raise PlanError("no size classes given (e.g. 1500:70,8000:25,40000:5)")
    return tuple(classes)


def parse_shares(text: str) -> Lanes:
    """`uploads,batch,workflow` percentages (e.g. `45,45,10`) as lane shares."""
    try:
        values = [float(v) for v in text.split(",")]
    except ValueError:
        raise PlanError(f"lane shares {text!r} are not three percentages (e.g. 45,45,10)") from None
    if len(values) != 3:
        raise PlanError(f"lane shares {text!r} are not three percentages (e.g. 45,45,10)")
    return Lanes(*(v / 100 for v in values))


def sizes_of_files(paths: list[str], bytes_per_token: float = 4.0) -> tuple[tuple[int, float], ...]:
    """Size classes from sample files or folders: each file is one class of weight 1,
    at `bytes_per_token` bytes a token (English-like text: about 4)."""
    import os

    found = []
    for path in paths:
        if os.path.isdir(path):
            for folder, _, names in os.walk(path):
                found += [os.path.join(folder, n) for n in sorted(names)]
        else:
            found.append(path)
    sizes = [(max(1, round(os.path.getsize(f) / bytes_per_token)), 1.0) for f in found if os.path.isfile(f)]
    if not sizes:
        raise PlanError(f"no files in {', '.join(paths)}")
    return tuple(sizes)
