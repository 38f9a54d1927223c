# The two commands a newcomer needs. Both install what is missing first (scripts/setup.sh).
PYTHON ?= python3

.PHONY: setup demo test lint vllm-env
setup:
	PYTHON=$(PYTHON) bash scripts/setup.sh

demo: setup  ## LoRA SFT of the embedded tiny model on the bundled sample, on CPU (~30 s)
	$(PYTHON) train.py

test: setup  ## ruff, then the whole test suite
	$(PYTHON) -m ruff check .
	$(PYTHON) -m pytest -q

vllm-env:  ## side environment with vLLM's LoRA loader (~3 GB), for tests/test_vllm_loader.py
	PYTHON=$(PYTHON) bash scripts/setup_vllm_env.sh

lint:
	$(PYTHON) -m ruff check .
