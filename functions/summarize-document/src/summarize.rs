//! Map-reduce summarization within the model's context window.
//!
//! A document that fits is summarized in one call. A longer one is split on natural
//! boundaries (with a small overlap), the parts are summarized concurrently with bounded
//! concurrency, and the part summaries are combined in input order, in groups and
//! recursively while they do not fit one call.

use bedrock::{
    BedrockError, ChatPrompt, Completion, ContextBudget, Deadline, GenerationParams, Invocation,
    LlamaClient, UsageTotals, estimate_tokens,
};
use futures::{StreamExt, TryStreamExt};
use lambda_kit::sync_budget::{ModelCall, Workload};
use serde::Serialize;
use text::{Chunk, Language, Sizing};

use crate::options::SummaryOptions;
use crate::prompt;

/// Tuning of the map-reduce.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    /// Parts summarized at once.
    pub concurrency: usize,
    /// Overlap between consecutive parts, as a fraction of a part's tokens (per mille).
    pub overlap_per_mille: u32,
    /// Tokens a part summary may take.
    pub part_summary_tokens: u32,
}

impl Default for Plan {
    fn default() -> Self {
        Self {
            concurrency: 4,
            overlap_per_mille: 10,
            part_summary_tokens: 384,
        }
    }
}

/// A finished summary.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// The summary text.
    pub summary: String,
    /// The model that answered the last call.
    pub model: String,
    /// Tokens and calls over all model calls.
    pub usage: UsageTotals,
    /// Parts the document was split into (1 when it fit one call).
    pub parts: usize,
    /// Combination rounds after the parts were summarized.
    pub combine_rounds: u32,
    /// Whether the final answer hit its length limit.
    pub truncated: bool,
}

/// How full each part but the last is, per mille of [`Sizes::part_tokens`]: parts end at
/// the strongest boundary (paragraph, line, sentence, word) in their last tenth.
const PART_FILL_PER_MILLE: u32 = 900;

/// Token sizes of one summary job, derived from the context window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sizes {
    /// The client's context budget (the window and how prompts are counted against it).
    pub budget: ContextBudget,
    /// Tokens for the final summary.
    pub final_len: u32,
    /// Tokens for a part summary.
    pub part_len: u32,
    /// Most document tokens in one part.
    pub part_tokens: u32,
    /// Overlap between parts.
    pub overlap: u32,
}

impl Sizes {
    /// The sizes for `client`'s window, `options` and `plan`.
    pub fn new(
        client: &LlamaClient,
        options: &SummaryOptions,
        plan: &Plan,
        language: Language,
    ) -> Self {
        let budget = client.settings().budget;
        let window = budget.context_window();
        let final_len = options.length.max_gen_len().min(window / 4);
        let part_len = plan.part_summary_tokens.min(window / 8).max(16);
        // The estimate bounds the part prompt's own tokens without the vocabulary, which a
        // document that fits one call never needs.
        let overhead =
            estimate_tokens(&prompt::part("", 999, 999, language, part_len).render()) + 16;
        let part_tokens = window.saturating_sub(part_len + overhead).max(64);
        Self {
            budget,
            final_len,
            part_len,
            part_tokens,
            overlap: part_tokens * plan.overlap_per_mille / 1000,
        }
    }

    /// Whether `document` fits one call with its final summary.
    pub fn fits_whole(&self, document: &str, options: &SummaryOptions, language: Language) -> bool {
        self.fits(&prompt::whole(document, options, language), self.final_len)
    }

    /// Whether `prompt` fits the window with `max_gen_len`, as the client will check it
    /// (the estimate, then the exact count where the estimate does not fit).
    pub fn fits(&self, prompt: &ChatPrompt, max_gen_len: u32) -> bool {
        self.budget.check(&prompt.render(), max_gen_len).is_ok()
    }

    /// `document`'s parts: at most `part_tokens` each, counted as the budget counts
    /// (exactly, for Llama 3), every part but the last at least 90% full, consecutive
    /// parts overlapping by up to `overlap`.
    pub fn split<'d>(&self, document: &'d str) -> Vec<Chunk<'d>> {
        text::split_sized(
            document,
            Sizing {
                max_tokens: self.part_tokens,
                overlap_tokens: self.overlap,
                counter: self.budget.counter(),
                min_fill_per_mille: PART_FILL_PER_MILLE,
            },
        )
    }
}

/// Summarizes `document` in `language` with `options`.
pub async fn summarize(
    client: &LlamaClient,
    document: &str,
    options: &SummaryOptions,
    language: Language,
    plan: &Plan,
    deadline: Deadline,
) -> Result<Summary, BedrockError> {
    let sizes = Sizes::new(client, options, plan, language);
    // One call when the client's budget check (before any network call) lets it through.
    match summarize_whole(client, document, options, language, &sizes, deadline).await {
        Err(BedrockError::ContextOverflow(_)) => {}
        whole => return whole,
    }
    // Map: parts summarized concurrently, results kept in input order.
    let parts = sizes.split(document);
    let total = parts.len();
    tracing::info!(
        parts = total,
        part_tokens = sizes.part_tokens,
        overlap = sizes.overlap,
        "summarizing in parts"
    );
    let texts: Vec<&str> = parts.iter().map(|p| p.text).collect();
    let (summaries, mut totals) =
        summarize_parts(client, &texts, language, &sizes, plan, deadline).await?;
    let mut summary = combine(client, summaries, options, language, &sizes, plan, deadline).await?;
    totals += summary.usage;
    summary.usage = totals;
    summary.parts = total;
    Ok(summary)
}

/// Summarizes a document that fits one call.
pub async fn summarize_whole(
    client: &LlamaClient,
    document: &str,
    options: &SummaryOptions,
    language: Language,
    sizes: &Sizes,
    deadline: Deadline,
) -> Result<Summary, BedrockError> {
    let done = final_call(
        client,
        &prompt::whole(document, options, language),
        options,
        sizes.final_len,
        deadline,
    )
    .await?;
    let mut totals = UsageTotals::default();
    totals.add(&done);
    Ok(finish(done, totals, 1, 0))
}

/// Summarizes part `index` (1-based) of `total`.
pub async fn summarize_part(
    client: &LlamaClient,
    part: &str,
    index: usize,
    total: usize,
    language: Language,
    sizes: &Sizes,
    deadline: Deadline,
) -> Result<Completion, BedrockError> {
    call(
        client,
        &prompt::part(part, index, total, language, sizes.part_len),
        sizes.part_len,
        deadline,
    )
    .await
}

/// Summarizes `parts` concurrently (bounded), returning their summaries in input order.
async fn summarize_parts(
    client: &LlamaClient,
    parts: &[&str],
    language: Language,
    sizes: &Sizes,
    plan: &Plan,
    deadline: Deadline,
) -> Result<(Vec<String>, UsageTotals), BedrockError> {
    let total = parts.len();
    let prompts = parts
        .iter()
        .enumerate()
        .map(|(i, part)| prompt::part(part, i + 1, total, language, sizes.part_len));
    generate_all(client, prompts, sizes.part_len, plan, deadline).await
}

/// Runs `prompts` with bounded concurrency; the generations come back in input order.
/// The first failure ends the work: the calls in flight are dropped and no other starts.
async fn generate_all(
    client: &LlamaClient,
    prompts: impl Iterator<Item = ChatPrompt>,
    max_gen_len: u32,
    plan: &Plan,
    deadline: Deadline,
) -> Result<(Vec<String>, UsageTotals), BedrockError> {
    let done: Vec<Completion> = futures::stream::iter(prompts)
        .map(|p| async move { call(client, &p, max_gen_len, deadline).await })
        .buffered(plan.concurrency.max(1))
        .try_collect()
        .await?;
    let mut totals = UsageTotals::default();
    let mut generations = Vec::with_capacity(done.len());
    for completion in done {
        totals.add(&completion);
        generations.push(completion.generation);
    }
    Ok((generations, totals))
}

/// Combines part summaries, in order, into the final summary: in groups and recursively
/// while they do not fit one call. One summary is returned as it is, without a call.
pub async fn combine(
    client: &LlamaClient,
    summaries: Vec<String>,
    options: &SummaryOptions,
    language: Language,
    sizes: &Sizes,
    plan: &Plan,
    deadline: Deadline,
) -> Result<Summary, BedrockError> {
    match reduce(client, summaries, options, language, sizes, plan, deadline).await? {
        Reduced::Done(summary) => Ok(summary),
        Reduced::Final {
            prompt,
            mut usage,
            parts,
            rounds,
        } => {
            let done = final_call(client, &prompt, options, sizes.final_len, deadline).await?;
            usage.add(&done);
            Ok(finish(done, usage, parts, rounds))
        }
    }
}

/// Part summaries reduced to what is left to do.
pub enum Reduced {
    /// One summary: nothing to combine.
    Done(Summary),
    /// The final combination call to make (`sizes.final_len` tokens).
    Final {
        /// Its prompt.
        prompt: ChatPrompt,
        /// The combination rounds' usage so far.
        usage: UsageTotals,
        /// Part summaries combined.
        parts: usize,
        /// Combination rounds, the final one included.
        rounds: u32,
    },
}

/// Combines part summaries in groups, recursively, until they fit one final call, and
/// returns that call's prompt (see [`combine`]).
pub async fn reduce(
    client: &LlamaClient,
    mut summaries: Vec<String>,
    options: &SummaryOptions,
    language: Language,
    sizes: &Sizes,
    plan: &Plan,
    deadline: Deadline,
) -> Result<Reduced, BedrockError> {
    let mut totals = UsageTotals::default();
    let parts = summaries.len();
    if parts == 1 {
        let only = summaries.pop().unwrap_or_default();
        return Ok(Reduced::Done(Summary {
            summary: only.trim().to_owned(),
            model: client.settings().models.primary().to_string(),
            usage: totals,
            parts,
            combine_rounds: 0,
            truncated: false,
        }));
    }
    let mut rounds = 0;
    loop {
        rounds += 1;
        let last = prompt::combine(&summaries, options, language, true, sizes.final_len);
        let overflow = match sizes.budget.check(&last.render(), sizes.final_len) {
            Ok(_) => {
                return Ok(Reduced::Final {
                    prompt: last,
                    usage: totals,
                    parts,
                    rounds,
                });
            }
            Err(overflow) => overflow,
        };
        let groups = group(&summaries, options, language, sizes);
        if groups.len() >= summaries.len() {
            return Err(overflow.into());
        }
        let prompts = groups
            .iter()
            .map(|g| prompt::combine(g, options, language, false, sizes.part_len));
        let (combined, round) =
            generate_all(client, prompts, sizes.part_len, plan, deadline).await?;
        totals += round;
        summaries = combined;
    }
}

/// Packs consecutive summaries into groups whose combination prompt fits.
fn group(
    summaries: &[String],
    options: &SummaryOptions,
    language: Language,
    sizes: &Sizes,
) -> Vec<Vec<String>> {
    let mut groups: Vec<Vec<String>> = Vec::new();
    let mut current: Vec<String> = Vec::new();
    for s in summaries {
        current.push(s.clone());
        if current.len() > 1
            && !sizes.fits(
                &prompt::combine(&current, options, language, false, sizes.part_len),
                sizes.part_len,
            )
        {
            let last = current.pop().unwrap_or_default();
            groups.push(std::mem::take(&mut current));
            current.push(last);
        }
    }
    if !current.is_empty() {
        groups.push(current);
    }
    groups
}

async fn call(
    client: &LlamaClient,
    prompt: &ChatPrompt,
    max_gen_len: u32,
    deadline: Deadline,
) -> Result<Completion, BedrockError> {
    client
        .invoke(&invocation(prompt, max_gen_len, deadline))
        .await
}

/// The call that writes the final summary; with `options.stream` through
/// InvokeModelWithResponseStream, read to its end here (retries and fallbacks cover the
/// stream's opening; an error after the first text fails the call).
async fn final_call(
    client: &LlamaClient,
    prompt: &ChatPrompt,
    options: &SummaryOptions,
    max_gen_len: u32,
    deadline: Deadline,
) -> Result<Completion, BedrockError> {
    if !options.stream {
        return call(client, prompt, max_gen_len, deadline).await;
    }
    let call = invocation(prompt, max_gen_len, deadline);
    client.invoke_stream(&call).await?.collect().await
}

/// The parameters of every summary call.
pub(crate) fn invocation(prompt: &ChatPrompt, max_gen_len: u32, deadline: Deadline) -> Invocation {
    let params = GenerationParams::default()
        .temperature(0.2)
        .top_p(0.9)
        .max_gen_len(max_gen_len);
    Invocation::chat(prompt).params(params).deadline(deadline)
}

fn finish(done: Completion, usage: UsageTotals, parts: usize, combine_rounds: u32) -> Summary {
    Summary {
        truncated: done.usage.stop_reason == bedrock::StopReason::Length,
        summary: done.generation.trim().to_owned(),
        model: done.model_id,
        usage,
        parts,
        combine_rounds,
    }
}

/// The model calls [`summarize`] makes for `document` at most: one call when it fits,
/// else its parts (`plan.concurrency` at a time), the combination rounds (each part or
/// group summary counted at its full length) and the final call.
pub fn workload(
    client: &LlamaClient,
    document: &str,
    options: &SummaryOptions,
    language: Language,
    plan: &Plan,
) -> Workload {
    let sizes = Sizes::new(client, options, plan, language);
    let final_call = |prompt: &ChatPrompt| ModelCall {
        prompt_tokens: estimate_tokens(&prompt.render()),
        max_gen_len: sizes.final_len,
    };
    let whole = prompt::whole(document, options, language);
    if sizes.fits(&whole, sizes.final_len) {
        return Workload::new().then(final_call(&whole));
    }
    let parts = sizes.split(document);
    let longest = parts.iter().map(|p| p.tokens).max().unwrap_or(0);
    let part_overhead =
        estimate_tokens(&prompt::part("", 999, 999, language, sizes.part_len).render());
    let part_call = ModelCall {
        prompt_tokens: part_overhead + longest,
        max_gen_len: sizes.part_len,
    };
    let mut work = Workload::new().then_parallel(parts.len(), plan.concurrency, part_call);
    if parts.len() == 1 {
        return work;
    }
    // Combination rounds, as `combine` groups summaries of at most `part_len` tokens.
    let overhead =
        estimate_tokens(&prompt::combine(&[], options, language, true, sizes.final_len).render())
            + 16;
    let per_summary = sizes.part_len + 8;
    let mut summaries = parts.len();
    loop {
        let prompt_tokens =
            overhead + per_summary.saturating_mul(u32::try_from(summaries).unwrap_or(u32::MAX));
        if u64::from(prompt_tokens) + u64::from(sizes.final_len)
            <= u64::from(sizes.budget.context_window())
        {
            return work.then(ModelCall {
                prompt_tokens,
                max_gen_len: sizes.final_len,
            });
        }
        let room = sizes
            .budget
            .context_window()
            .saturating_sub(overhead + sizes.part_len);
        let per_group = usize::try_from((room / per_summary).max(2)).unwrap_or(usize::MAX);
        let groups = summaries.div_ceil(per_group);
        if groups >= summaries {
            // `combine` fails with ContextOverflow here, before a call.
            return work;
        }
        let group_call = ModelCall {
            prompt_tokens: overhead
                + per_summary.saturating_mul(u32::try_from(per_group).unwrap_or(u32::MAX)),
            max_gen_len: sizes.part_len,
        };
        work = work.then_parallel(groups, plan.concurrency, group_call);
        summaries = groups;
    }
}
