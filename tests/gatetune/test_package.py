"""The package as users install and call it: one CLI, `init` and --config-dir, the Python API, quiet output,
and a wheel that runs from an empty directory (scripts/check_wheel.sh)."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import warnings
from pathlib import Path

import pytest

import gatetune
from gatetune.init_config import FILES, write_starter
from gatetune.main import SUBCOMMANDS, main
from gatetune.quiet import LOG_NOISE, quiet_library_noise
from tests.conftest import ROOT

SAMPLE = ROOT / "gatetune" / "sample_data" / "sft_sample.jsonl"
FAST = ["logger=none", "training.max_steps=4", "training.eval_every_steps=2"]


def _gatetune(*args: str, cwd: Path = ROOT, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gatetune", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def test_help_version_and_unknown_subcommands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0 and capsys.readouterr().out.strip() == f"gatetune {gatetune.main.version()}"
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    assert all(f"  {name}" in out for name in SUBCOMMANDS) and "gatetune train recipe=qlora" in out
    assert main([]) == 2  # no subcommand: the usage, and a usage error
    capsys.readouterr()
    assert main(["trian"]) == 2
    err = capsys.readouterr().err
    assert "unknown subcommand 'trian'" in err and "did you mean 'train'" in err


def test_each_subcommand_is_its_single_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # check = data-checks: same report, same exit status
    assert main(["check", str(SAMPLE), "--json", str(tmp_path / "a.json")]) == 0
    from data_checks.cli import main as data_checks_main

    assert data_checks_main([str(SAMPLE), "--json", str(tmp_path / "b.json")]) == 0
    a, b = (json.loads((tmp_path / n).read_text()) for n in ("a.json", "b.json"))
    assert a["checks"].keys() == b["checks"].keys() and a["records"] == b["records"] == 800
    assert main(["check", str(tmp_path / "missing.jsonl")]) == 2
    assert main(["export", str(tmp_path / "nothing")]) == 2  # export's own user error
    assert "gatetune-export: error" in capsys.readouterr().err
    for name in ("check", "export", "eval", "submit", "init"):
        try:
            status = main([name, "--help"])
        except SystemExit as exc:  # argparse's --help
            status = exc.code or 0
        assert status == 0, name
        assert "usage" in capsys.readouterr().out.lower(), name


def test_train_help_names_the_one_cli_and_lists_user_presets(tmp_path: Path) -> None:
    write_starter(tmp_path / "my_conf")
    done = _gatetune("train", "--config-dir", str(tmp_path / "my_conf"), "--help")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Usage: gatetune train" in done.stdout
    groups = dict(line.split(": ", 1) for line in done.stdout.splitlines()
                  if line.startswith(("model: ", "recipe: ")) and ", " in line)
    assert "my_model" in groups["model"] and "qwen3_8b" in groups["model"] and "my_recipe" in groups["recipe"]


def test_init_writes_a_folder_that_composes_and_refuses_to_overwrite(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "my_conf"
    assert main(["init", str(folder)]) == 0
    assert sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) == sorted(FILES)
    (folder / "model" / "my_model.yaml").write_text("name: mine\npath: /models/mine\n", encoding="utf-8")
    assert main(["init", str(folder)]) == 2  # exists: nothing overwritten
    assert "exists" in capsys.readouterr().err
    assert (folder / "model" / "my_model.yaml").read_text(encoding="utf-8").startswith("name: mine")
    cfg = gatetune.compose(["model=my_model", "data=my_data", "recipe=my_recipe"], config_dir=folder)
    assert (cfg.model.name, cfg.model.path) == ("mine", "/models/mine")
    assert (cfg.data.name, cfg.data.path) == ("my-data", "data/train.jsonl")
    # the recipe extends the bundled lora recipe and changes a few keys
    assert (cfg.recipe.name, cfg.recipe.objective, cfg.recipe.adaptation) == ("my_recipe", "sft", "lora")
    assert cfg.lora.rank == 32 and cfg.training.learning_rate == 1e-4
    # the starter reward loads as the bundled ones do (by path)
    from gatetune.rewards import load_rewards

    rewards = load_rewards([str(folder / "reward" / "my_reward.yaml")])
    assert len(rewards) == 1
    # the bundled presets are still there and unchanged
    assert gatetune.compose(["model=qwen3_8b"], config_dir=folder).model.path == "Qwen/Qwen3-8B"


def test_the_api_composes_as_the_cli_does() -> None:
    overrides = ["recipe=qlora", "model=qwen3_8b", "training.learning_rate=1e-5"]
    api = gatetune.compose(overrides)
    done = _gatetune("train", *overrides, "--cfg", "job", "--resolve")
    assert done.returncode == 0, done.stderr[-2000:]
    from omegaconf import OmegaConf

    cli = OmegaConf.create(done.stdout)
    from omegaconf import open_dict

    with open_dict(api):
        del api["hydra"]
    assert OmegaConf.to_container(api, resolve=True) == OmegaConf.to_container(cli, resolve=True)


def test_check_api_applies_overrides_and_rejects_unknown_keys(tmp_path: Path) -> None:
    from data_checks.errors import DataError

    data = tmp_path / "d.jsonl"
    data.write_text(json.dumps({"instruction": "Mail ann@shop.co.uk", "input": "", "output": "ok"}) + "\n"
                    + json.dumps({"instruction": "desk 212 867 5309", "input": "", "output": "ok"}) + "\n",
                    encoding="utf-8")
    report = gatetune.check(data, overrides={"run": ["pii"]})
    assert not report["passed"] and report["checks"]["pii"]["records_with_pii"] == 1
    low = gatetune.check(data, overrides={"run": ["pii"], "pii": {"fail_on_confidence": "low"}})
    assert low["checks"]["pii"]["records_with_pii"] == 2
    with pytest.raises(DataError, match="checks.pii.nope"):
        gatetune.check(data, overrides={"pii": {"nope": 1}})


def test_importing_gatetune_is_light() -> None:
    code = ("import sys, gatetune; bad = [m for m in ('torch', 'transformers', 'hydra', 'trl') if m in sys.modules];"
            " assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=120)


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def test_the_noise_filters_drop_exactly_their_messages() -> None:
    quiet_library_noise()
    quiet_library_noise()  # twice changes nothing
    for name, start, _ in LOG_NOISE:
        logger = logging.getLogger(name)  # DeepSpeed's does not propagate: collect on the logger itself
        assert len(logger.filters) == 1
        collect, level = _Collect(), logger.level
        logger.addHandler(collect)
        logger.setLevel(logging.WARNING)
        try:
            logger.warning(start + " and the rest of the message")
            logger.warning("a real warning from the same library")
        finally:
            logger.removeHandler(collect)
            logger.setLevel(level)
        assert collect.messages == ["a real warning from the same library"]
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("default")
        quiet_library_noise()
        warnings.warn("`is_gradient_checkpointing` is deprecated and will be removed in v6.", FutureWarning,
                      stacklevel=1)
        warnings.warn("another deprecation", FutureWarning, stacklevel=1)
    assert [str(w.message) for w in seen] == ["another deprecation"]


@pytest.mark.slow
def test_a_run_prints_no_library_noise_and_the_api_trains(tmp_path: Path) -> None:
    done = _gatetune("train", *FAST, f"hydra.run.dir={tmp_path / 'cli'}")
    assert done.returncode == 0, done.stderr[-3000:]
    output = done.stdout + done.stderr
    for noise in ("Setting accelerator to CPU", "Failed to load CPU gemm_4bit_forward", "Loaded recognizer",
                  "Using device of type", "is_gradient_checkpointing"):
        assert noise not in output, noise
    assert "status: completed" in output and "data gates: passed" in output
    result = gatetune.train(FAST, run_dir=tmp_path / "api")
    summary = json.loads((tmp_path / "api" / "summary.json").read_text())
    assert result.summary == summary and summary["status"] == "completed"
    assert Path(summary["export"]["path"]).is_dir() and result.model is not None and result.log_history


@pytest.mark.slow
def test_legacy_command_names_still_run(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "finetune-export"
    if not script.is_file():
        pytest.skip("the console scripts are not installed (pip install -e .)")
    done = subprocess.run([str(script), str(tmp_path / "nothing")], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "note: finetune-export is the old name of `gatetune export`" in done.stderr


@pytest.mark.slow
def test_the_wheel_installs_and_runs_from_an_empty_directory(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHON": sys.executable}
    done = subprocess.run(["bash", str(ROOT / "scripts" / "check_wheel.sh"), str(tmp_path)], capture_output=True,
                          text=True, timeout=1200, env=env)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = done.stdout
    for line in ("configs and templates included", "gatetune and data_checks import from the wheel",
                 "status: completed", "export (merged_model):", "name: my-model", "check_wheel: ok"):
        assert line in out, line
