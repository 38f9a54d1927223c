#!/usr/bin/env bash
# Gather the wheels a bare CUDA PyTorch image lacks, for a GPU machine with no network (scripts/gpu_check.sh).
# Typical images carry torch, transformers, peft, accelerate; they lack what is listed here (~46 MB).
# Usage: bash scripts/make_wheelhouse.sh [DIR] [PYTHON_VERSION]   (default .whl, 3.12)
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${1:-.whl}
PYV=${2:-3.12}
mkdir -p "$DIR"
PLATFORMS=(--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_24_x86_64
           --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform manylinux1_x86_64)
download() {
    python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version "$PYV" --implementation cp \
        "${PLATFORMS[@]}" -d "$DIR" "$@"
}
# Pure-Python or manylinux wheels; versions follow the project's pyproject ranges.
download "trl==$(python3 -c 'import trl; print(trl.__version__)')" \
    "bitsandbytes==$(python3 -c 'import importlib.metadata as m; print(m.version("bitsandbytes"))')" \
    "datasets==$(python3 -c 'import datasets; print(datasets.__version__)')" \
    "hydra-core==1.3.8" "omegaconf==$(python3 -c 'import omegaconf; print(omegaconf.__version__)')" \
    datasketch pyyaml dill multiprocess xxhash hjson liger-kernel
# deepspeed ships as an sdist only: build its wheel here (no CUDA ops are compiled at build time).
python3 -m pip wheel --quiet --no-deps --no-build-isolation -w "$DIR" \
    "deepspeed==$(python3 -c 'import importlib.metadata as m; print(m.version("deepspeed"))')"
# antlr4-python3-runtime (hydra's parser) is an sdist too.
python3 -m pip wheel --quiet --no-deps -w "$DIR" "antlr4-python3-runtime==4.9.3"
du -sh "$DIR"
size=$(du -sm "$DIR" | cut -f1)
if [ "$size" -gt 64 ]; then echo "make_wheelhouse: $DIR is ${size} MiB, over the 64 MiB a device call carries" >&2; exit 1; fi
ls "$DIR"
