# The two commands a newcomer needs; both install what they need (scripts/setup.sh).
.PHONY: demo test bench setup

## Run the main job locally: the emulator with the local model, and the shared crate calling it.
demo:
	./scripts/demo.sh

## Run the whole test suite (format, lints, Rust tests, boto3 tests).
test:
	./scripts/test.sh

## Benchmarks of the shared Bedrock crate's own overhead.
bench: setup
	cargo bench -p bedrock --bench overhead

setup:
	./scripts/setup.sh
