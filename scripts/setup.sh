#!/usr/bin/env bash
# Install the project and its dependencies into the active Python environment.
# torch: an installed build (e.g. CUDA on a GPU box) is kept; otherwise the CPU build torch==2.13.0
# is installed on a machine without an NVIDIA GPU, and the default (CUDA) build on one with a GPU.
# Set TORCH_INDEX_URL to install torch from another index (e.g. PyTorch's CPU-only wheel index).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
pip_install() { "$PYTHON" -m pip install --disable-pip-version-check --quiet "$@"; }

if "$PYTHON" -c "import torch" 2>/dev/null; then
    echo "setup: keeping installed torch $("$PYTHON" -c 'import torch; print(torch.__version__)')"
elif command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L >/dev/null 2>&1; then
    echo "setup: NVIDIA GPU found, installing torch with CUDA"
    pip_install ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"} torch
else
    echo "setup: no GPU, installing the CPU build torch==2.13.0"
    pip_install ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"} "torch==2.13.0"
fi
# This project was called finetune before (a name taken on the package index by another project). An
# install of that old name (ours: it holds data_checks) would shadow this one's data_checks: remove it.
if "$PYTHON" -c "import importlib.metadata as m, sys; sys.exit('data_checks' not in (m.distribution('finetune').read_text('top_level.txt') or '') and not any('data_checks' in str(f) for f in (m.distribution('finetune').files or [])))" 2>/dev/null; then
    echo "setup: removing the old 'finetune' install of this project"
    "$PYTHON" -m pip uninstall --disable-pip-version-check --quiet -y finetune
fi
echo "setup: installing gatetune and its dependencies (pip install -e '.[dev]')"
pip_install -e ".[dev]"
echo "setup: done"
