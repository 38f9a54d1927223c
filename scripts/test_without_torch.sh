#!/usr/bin/env bash
# Prove that data_checks needs no torch: a side environment (.venv-notorch) with data_checks' own
# dependencies only, where `import torch` fails, runs the data_checks tests (tests/data_checks/).
# Usage: bash scripts/test_without_torch.sh [pytest args]   (about 1 minute to build the first time)
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
VENV=.venv-notorch
if [ ! -x "$VENV/bin/python" ]; then
    echo "test-without-torch: building $VENV"
    "$PYTHON" -m venv "$VENV"
    "$VENV/bin/pip" install --disable-pip-version-check --quiet \
        "numpy>=1.26" "datasketch>=1.6" "presidio-analyzer>=2.2.366,<3" "tldextract>=5" "omegaconf>=2.3" \
        "tqdm>=4.66" "matplotlib>=3.8" "pyarrow>=15" "datasets>=4.0" "tokenizers>=0.22" "transformers>=5.0,<6" \
        "jinja2>=3.1" "pytest>=8" "scikit-learn>=1.4" "statsmodels>=0.14" "datatrove>=0.10,<0.11"
fi
if "$VENV/bin/python" -c "import torch" 2>/dev/null; then
    echo "test-without-torch: torch is importable in $VENV; remove it ($VENV/bin/pip uninstall torch)" >&2
    exit 1
fi
# The SLURM engine's test submits jobs that run the same code as the local engine's: the main suite runs it once.
PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" "$VENV/bin/python" -m pytest -q -p no:cacheprovider tests/data_checks \
    --ignore=tests/data_checks/test_distributed_slurm.py "$@"
