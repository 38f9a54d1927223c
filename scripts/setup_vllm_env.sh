#!/usr/bin/env bash
# Build a side virtual environment holding vLLM's own LoRA-loading code (no GPU stack), so
# scripts/check_vllm_adapter.py can validate our exports with vLLM itself. About 3 GB, a few minutes.
# vLLM pins an older transformers than the project, hence a separate environment.
# Usage: bash scripts/setup_vllm_env.sh [VENV_DIR]   (default: .venv-vllm; VLLM_VERSION to pin another)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${1:-.venv-vllm}
VLLM_VERSION=${VLLM_VERSION:-0.33.0}
PYTHON=${PYTHON:-python3}
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import vllm.lora.peft_helper" 2>/dev/null; then
    echo "setup_vllm_env: $VENV already has vLLM"; exit 0
fi
"$PYTHON" -m venv "$VENV"
pip_install() { "$VENV/bin/python" -m pip install --disable-pip-version-check --quiet "$@"; }
if "$PYTHON" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)" 2>/dev/null; then
    pip_install torch
else
    pip_install "torch==2.13.0"
fi
pip_install "transformers>=5.16.1,<5.21" pydantic cbor2 psutil pyzmq requests aiohttp openai openai-harmony \
    pillow pybase64 cachetools msgspec cloudpickle uvloop py-cpuinfo prometheus_client xgrammar fastapi \
    partial_json_parser llguidance einops safetensors
VLLM_TARGET_DEVICE=cpu pip_install --no-deps "vllm==$VLLM_VERSION"
VLLM_TARGET_DEVICE=cpu "$VENV/bin/python" -c "import vllm.lora.peft_helper, vllm.lora.lora_model; print('vLLM LoRA code imports')"
echo "setup_vllm_env: done ($VENV)"
