#!/usr/bin/env bash
# Build the wheel, install it (and nothing else from this checkout) into a fresh virtual environment, and
# run the toolkit from an empty directory: --version, --help, the demo, the data gates, the export check,
# init + --config-dir. Proves a non-editable install carries its configs, presets and templates.
#   bash scripts/check_wheel.sh [WORKDIR]      (default: a temporary directory, removed afterwards)
# The venv sees this machine's site-packages (--system-site-packages) for torch and the other
# dependencies, so nothing is downloaded; the gatetune and data_checks it imports must be the wheel's.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3}
WORK=${1:-$(mktemp -d)}
[ -n "${1:-}" ] || trap 'rm -rf "$WORK"' EXIT
mkdir -p "$WORK/dist" "$WORK/empty"
say() { echo "check_wheel: $*"; }

say "building the wheel"
"$PYTHON" -m pip wheel --quiet --disable-pip-version-check --no-deps --no-build-isolation -w "$WORK/dist" "$ROOT"
WHEEL=$(ls "$WORK"/dist/gatetune-*.whl)
"$PYTHON" - "$WHEEL" <<'EOF'
import sys, zipfile
names = set(zipfile.ZipFile(sys.argv[1]).namelist())
needed = ["gatetune/conf/train.yaml", "gatetune/conf/recipe/qlora.yaml", "gatetune/conf/model/qwen3_8b.yaml",
          "gatetune/conf/deepspeed/zero3.json", "gatetune/conf/reward/math.yaml", "gatetune/conf/rubrics/default.md",
          "gatetune/conf/checks/default.yaml", "gatetune/slurm/train.sbatch", "gatetune/sample_data/sft_sample.jsonl",
          "gatetune/main.py", "data_checks/pii/context.py"]
missing = [n for n in needed if n not in names]
assert not missing, f"the wheel lacks {missing}"
assert not any(n.startswith(("tests/", "scripts/")) for n in names), "the wheel carries tests or scripts"
print(f"check_wheel: {sys.argv[1].rsplit('/', 1)[-1]}: {len(names)} files, configs and templates included")
EOF

say "installing it into a fresh virtual environment"
"$PYTHON" -m venv --system-site-packages "$WORK/venv"
VENV_PY="$WORK/venv/bin/python"
"$VENV_PY" -m pip install --quiet --disable-pip-version-check --no-deps "$WHEEL"
cd "$WORK/empty"
"$VENV_PY" -c "
import gatetune, data_checks, sys
for m in (gatetune, data_checks):
    assert m.__file__.startswith('$WORK/venv/'), f'{m.__name__} comes from {m.__file__}, not the wheel'
print('check_wheel: gatetune and data_checks import from the wheel')"
BIN="$WORK/venv/bin"
"$BIN/gatetune" --version
"$BIN/gatetune" --help | sed -n 1p
"$BIN/gatetune" train --help | grep -E "^(model|recipe):" | cut -c1-100

say "the demo (4 steps) from an empty directory"
"$BIN/gatetune" train logger=none training.max_steps=4 training.eval_every_steps=2 hydra.run.dir=run > demo.log 2>&1 \
    || { tail -30 demo.log; exit 1; }
grep -oE "status: [a-z_]+" demo.log; grep -E "^export" demo.log
SAMPLE=$("$VENV_PY" -c "from gatetune.config import SAMPLE_DATA_DIR; print(SAMPLE_DATA_DIR / 'sft_sample.jsonl')")
"$BIN/data-checks" "$SAMPLE" --json gates.json | tail -1
"$BIN/gatetune" export run --merge | tail -2
"$BIN/gatetune" init my_conf | sed -n 1p
"$BIN/gatetune" train --config-dir my_conf model=my_model data=my_data --cfg job | grep -E "^  name: my-" 
say "ok"
