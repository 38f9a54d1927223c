#!/usr/bin/env bash
# The checks that need a GPU, in one run of under 10 minutes, on a machine with no network:
#   1. install the wheelhouse built here by scripts/make_wheelhouse.sh (.whl) next to the image's CUDA torch,
#   2. run the @pytest.mark.gpu tests (bitsandbytes 4-bit CUDA kernels, bf16, NCCL, a ZeRO-3 preemption and resume
#      over NCCL, a bf16 LoRA step per family),
#   3. benchmark qlora, lora and full_zero3 against plain TRL on a Llama-3.2-1B-shaped model
#      (scripts/bench_gpu_recipes.py; results appended to docs/benchmarks.md, copied to $OUT if set),
#   4. throughput of TRL's padded default vs padding-free + Liger + auto attention (scripts/bench_gpu_throughput.py),
#   5. when vLLM is installed on the machine: serve a trained adapter of the tiny Llama with GPU vLLM
#      (`gatetune serve --check`: parity with transformers) and load-test it (`gatetune serve --loadtest`).
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONUNBUFFERED=1 GATETUNE_CACHE=${GATETUNE_CACHE:-/tmp/gatetune-cache} WANDB_MODE=disabled
if [ -d .whl ]; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH="/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
else
    export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
fi
nvidia-smi -L
python3 -c "import torch, transformers, peft, trl, bitsandbytes, deepspeed; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'transformers', transformers.__version__, 'trl', trl.__version__)"
# ... and ZeRO-3 over NCCL, one process per GPU, preempted with SIGUSR1 and resumed to the same weights (issue 17).
timeout 360 python3 -m pytest -q -rP -m gpu -p no:cacheprovider tests/gatetune/test_gpu.py | grep -v '^$' | tail -40 \
    || echo "gpu_check: a GPU test failed (above)"
timeout 60 python3 -m pytest -q -m gpu -p no:cacheprovider tests/gatetune/test_packing.py \
    || echo "gpu_check: Liger's architecture check failed"
# One tiny model per architecture family (Llama, Qwen2, Qwen3, Mistral, Gemma-2/3, Phi-3, GPT-OSS), each with
# its real chat template, three LoRA steps in bf16 on CUDA.
timeout 150 python3 -m pytest -q -m gpu -p no:cacheprovider tests/gatetune/test_model_families.py \
    || echo "gpu_check: a model family failed on CUDA"
timeout 180 python3 scripts/bench_gpu_recipes.py --steps "${STEPS:-20}"
# TRL's padded default vs padding-free + Liger + auto attention, LoRA and QLoRA, and QLoRA's peak memory on an
# 8B shape (scripts/bench_gpu_throughput.py; issue 16's GPU goals: >= 2x tokens/s, 8B QLoRA <= 7.4 GiB).
timeout 240 python3 scripts/bench_gpu_throughput.py --steps "${STEPS:-20}" || echo "gpu_check: throughput bench failed"
if python3 -c "import vllm" 2>/dev/null; then
    timeout 120 python3 train.py logger=none training.max_steps=30 training.eval_every_steps=10 eval.max_examples=16 \
        hydra.run.dir=/tmp/gpu-serve-run | tail -3
    timeout 240 python3 -m gatetune serve /tmp/gpu-serve-run --check --port 8765 | tail -4
    timeout 240 python3 -m gatetune serve /tmp/gpu-serve-run --loadtest 256 --concurrency 16 --port 8765 | tail -4
else
    echo "gpu_check: no vLLM on this machine: the serving check is skipped"
fi
if [ -n "${OUT:-}" ]; then cp docs/benchmarks.md "$OUT/"; fi
