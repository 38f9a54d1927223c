# The two commands a newcomer needs. Both install what is missing first (scripts/setup.sh).
PYTHON ?= python3

.PHONY: setup demo test lint vllm-env slurm-local
setup:
	PYTHON=$(PYTHON) bash scripts/setup.sh

demo: setup  ## LoRA SFT of the embedded tiny model on the bundled sample, on CPU (~30 s)
	$(PYTHON) train.py

test: setup slurm-local  ## ruff, then the whole test suite
	$(PYTHON) -m ruff check .
	$(PYTHON) -m pytest -q

vllm-env:  ## side environment with vLLM's LoRA loader (~3 GB), for tests/test_vllm_loader.py
	PYTHON=$(PYTHON) bash scripts/setup_vllm_env.sh

lint:
	$(PYTHON) -m ruff check .

slurm-local:  ## start the one-node SLURM test cluster when this machine can (root, slurm-wlm installed)
	@if [ "$$(id -u)" = 0 ] && command -v slurmctld >/dev/null; then bash scripts/start_local_slurm.sh; \
	else echo "slurm-local: not root or slurm-wlm not installed; the SLURM job tests will skip" \
	"(sudo apt-get install slurm-wlm munge && sudo bash scripts/start_local_slurm.sh)"; fi
