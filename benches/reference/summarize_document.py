"""Reference (yardstick, not product code): document summaries as a Python Lambda with boto3.

Written the way the common AWS samples write it: boto3 clients created at module load, the
document read from S3 in one ``get_object``, and, when it is too long for one prompt, a
LangChain-style map-reduce run sequentially: a recursive character splitter (paragraphs,
then lines, sentences, words) with a character overlap, one "concise summary" call per
chunk in order, then the chunk summaries collapsed in groups while they are too long and
combined by one last call. Token counts are estimated as characters / 4, as those samples do.

Handler: ``summarize_document.handler``; task input ``{"bucket", "key"}`` or ``{"text"}``.
Settings (environment): ``BEDROCK_CONTEXT_WINDOW`` (default 131072), ``MAP_MAX_GEN_LEN``
(512), ``FINAL_MAX_GEN_LEN`` (512), ``CHUNK_OVERLAP_PERCENT`` (5).
"""

import json
import os
import time

import boto3

MODEL_ID = os.environ.get("BEDROCK_MODEL_ID", "us.meta.llama3-2-3b-instruct-v1:0")
CONTEXT_WINDOW = int(os.environ.get("BEDROCK_CONTEXT_WINDOW", "131072"))
MAP_MAX_GEN_LEN = int(os.environ.get("MAP_MAX_GEN_LEN", "512"))
FINAL_MAX_GEN_LEN = int(os.environ.get("FINAL_MAX_GEN_LEN", "512"))
CHARS_PER_TOKEN = 4
PROMPT_ALLOWANCE = 256  # tokens for the instructions and the chat template
# Largest text, in characters, that one call may carry with its answer.
CHUNK_SIZE = (CONTEXT_WINDOW - MAP_MAX_GEN_LEN - PROMPT_ALLOWANCE) * CHARS_PER_TOKEN
CHUNK_OVERLAP = CHUNK_SIZE * int(os.environ.get("CHUNK_OVERLAP_PERCENT", "5")) // 100
SEPARATORS = ["\n\n", "\n", ". ", " ", ""]

s3 = boto3.client("s3")
bedrock = boto3.client("bedrock-runtime")

WHOLE_PROMPT = "Write a concise summary of the following document:\n\n{text}\n\nCONCISE SUMMARY:"
MAP_PROMPT = "Write a concise summary of the following text:\n\n{text}\n\nCONCISE SUMMARY:"
COMBINE_PROMPT = ("The following are summaries of consecutive parts of one document:\n\n{text}\n\n"
                  "Combine them into one concise summary of the whole document.\n\nCONCISE SUMMARY:")


def handler(event, context):
    """Lambda entry point."""
    started = time.time()
    if "Records" in event:  # S3 notification
        record = event["Records"][0]["s3"]
        event = {"bucket": record["bucket"]["name"], "key": record["object"]["key"]}
    if "text" in event:
        text, source = event["text"], None
    else:
        obj = s3.get_object(Bucket=event["bucket"], Key=event["key"])
        text = obj["Body"].read().decode("utf-8")
        source = {"bucket": event["bucket"], "key": event["key"], "etag": obj.get("ETag"),
                  "size": obj.get("ContentLength")}
    usage = {"prompt_tokens": 0, "generation_tokens": 0, "model_calls": 0}
    if len(text) <= CHUNK_SIZE:
        summary = invoke(WHOLE_PROMPT.format(text=text), FINAL_MAX_GEN_LEN, usage)
        parts = 1
    else:
        chunks = split_text(text, CHUNK_SIZE, CHUNK_OVERLAP)
        parts = len(chunks)
        print(json.dumps({"message": "map-reduce", "chunks": parts}))
        summaries = [invoke(MAP_PROMPT.format(text=chunk), MAP_MAX_GEN_LEN, usage) for chunk in chunks]
        summary = reduce_summaries(summaries, usage)
    return {"summary": summary.strip(), "source": source, "model": MODEL_ID, "usage": usage, "parts": parts,
            "timings": {"total_ms": int((time.time() - started) * 1000)}}


def invoke(user_text, max_gen_len, usage):
    prompt = ("<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\n"
              f"{user_text}<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n")
    result = bedrock.invoke_model(
        modelId=MODEL_ID,
        body=json.dumps({"prompt": prompt, "max_gen_len": max_gen_len, "temperature": 0.2, "top_p": 0.9}),
    )
    answer = json.loads(result["body"].read())
    usage["prompt_tokens"] += answer.get("prompt_token_count", 0)
    usage["generation_tokens"] += answer.get("generation_token_count", 0)
    usage["model_calls"] += 1
    return answer["generation"]


def reduce_summaries(summaries, usage):
    """Collapses groups of summaries while they are too long for one call, then combines them."""
    limit = CHUNK_SIZE
    while True:
        joined = "\n\n".join(summaries)
        if len(joined) <= limit or len(summaries) == 1:
            return invoke(COMBINE_PROMPT.format(text=joined), FINAL_MAX_GEN_LEN, usage)
        groups, current = [], []
        for s in summaries:
            if current and len("\n\n".join(current + [s])) > limit:
                groups.append(current)
                current = []
            current.append(s)
        groups.append(current)
        summaries = [invoke(COMBINE_PROMPT.format(text="\n\n".join(g)), MAP_MAX_GEN_LEN, usage) for g in groups]


def split_text(text, chunk_size, overlap, separators=SEPARATORS):
    """Recursive character splitting: pieces on the first separator that occurs, pieces too
    long split again on the next one, then merged into chunks of at most ``chunk_size``
    characters, each starting with up to ``overlap`` characters of the previous one."""
    separator = next((s for s in separators if s == "" or s in text), "")
    rest = separators[separators.index(separator) + 1:] if separator else []
    pieces = text.split(separator) if separator else list(text)
    chunks, current, length = [], [], 0
    sep_len = len(separator)
    for piece in pieces:
        if len(piece) > chunk_size and rest:
            if current:
                chunks.append(separator.join(current))
                current, length = [], 0
            chunks.extend(split_text(piece, chunk_size, overlap, rest))
            continue
        if current and length + sep_len + len(piece) > chunk_size:
            chunks.append(separator.join(current))
            # keep the tail of the chunk as overlap
            while current and (length > overlap or length + sep_len + len(piece) > chunk_size):
                length -= len(current[0]) + (sep_len if len(current) > 1 else 0)
                current.pop(0)
        current.append(piece)
        length += len(piece) + (sep_len if len(current) > 1 else 0)
    if current:
        chunks.append(separator.join(current))
    return [c for c in chunks if c.strip()]
