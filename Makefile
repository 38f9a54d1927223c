# The two commands a newcomer needs. Both install what is missing first (scripts/setup.sh).
PYTHON ?= python3

.PHONY: setup demo test lint
setup:
	PYTHON=$(PYTHON) bash scripts/setup.sh

demo: setup  ## LoRA SFT of the embedded tiny model on the bundled sample, on CPU (~30 s)
	$(PYTHON) train.py

test: setup  ## ruff, then the whole test suite
	$(PYTHON) -m ruff check .
	$(PYTHON) -m pytest -q

lint:
	$(PYTHON) -m ruff check .
