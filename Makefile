# The two commands a newcomer needs; both install what they need (scripts/setup.sh).
.PHONY: demo test bench setup eval

## Run the main job locally: the whole stack with the demo model (ARGS="--model x.gguf" for another).
demo:
	./scripts/demo.sh $(ARGS)

## Run the whole test suite (format, lints, Rust tests, boto3 tests).
test:
	./scripts/test.sh

## Benchmarks: the shared Bedrock crate's own overhead (criterion), then the functions vs a
## Python boto3 reference (cold start, warm overhead, long document, size, load), written to
## docs/benchmarks.md.
bench: setup
	./scripts/bench.sh

## Quality: the evaluation set (eval/) through the real functions, written to docs/quality.md;
## arguments go to tools/eval/eval.py, e.g. make eval ARGS="--model x.gguf --limit 5".
eval:
	./scripts/eval.sh $(ARGS)

setup:
	./scripts/setup.sh
