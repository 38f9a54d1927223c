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
echo "setup: installing gatetune and its dependencies (pip install -e '.[dev]')"
pip_install -e ".[dev]"
echo "setup: done"
