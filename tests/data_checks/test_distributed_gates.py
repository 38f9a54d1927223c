"""The template, dedup and PII gates as datatrove stages (data_checks/distributed/): the report (and the clean
copy) of a distributed run equals the one-process report on the same data, key for key and number for number; an
interrupted run continues where it stopped; bad input fails as it does without --engine."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from data_checks.config import ChecksConfig
from data_checks.gates import run_gates_streamed
from tests.conftest import ROOT, needs_shared
from tests.data_checks.test_dedup import planted_corpus

pytest.importorskip("datatrove", reason="pip install 'datatrove>=0.10' (a gatetune dependency)")

from data_checks.distributed.engine import make_plan, run_distributed  # noqa: E402
from data_checks.distributed.shards import iter_shard, plan_shards, records_at  # noqa: E402

CLI = [sys.executable, "-m", "data_checks"]


def _config(gates: tuple[str, ...] = ("dedup", "pii")) -> ChecksConfig:
    config = ChecksConfig()
    config.run = config.fail_on = list(gates)
    return config


def _pii_texts(count: int) -> list[str]:
    """Real sentences with real-looking PII: Presidio's synthetic set (addresses, names, phones, cards, ...)."""
    path = needs_shared("presidio_synth_pii") / "synth_dataset_v2.json"
    return [row["full_text"] for row in json.loads(path.read_text())[:count]]


@pytest.fixture(scope="module")
def planted_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Planted near-duplicate pairs at known Jaccard, exact copies, and PII sentences, with blank lines between
    some records (they hold none), in the `text` format."""
    texts, _ = planted_corpus()
    rng = random.Random(3)
    for text in _pii_texts(120):
        texts.insert(rng.randrange(len(texts)), text)
    path = tmp_path_factory.mktemp("planted") / "planted.jsonl"
    with path.open("w") as f:
        for i, text in enumerate(texts):
            f.write(json.dumps({"text": text}) + ("\n\n" if i % 97 == 0 else "\n"))
    return path


def _distributed(path: Path, workdir: Path, workers: int = 2, tasks: int = 5, gates: tuple[str, ...] = ("dedup", "pii"),
                 lines: list[str] | None = None, hash_ranges: int | None = None) -> dict:
    plan = make_plan(str(path), "auto", _config(gates), workers, tasks, hash_ranges)
    return run_distributed(plan, workdir, "local", workers, say=(lines.append if lines is not None else lambda _: None))


def test_two_local_workers_give_exactly_the_one_process_report_on_planted_pairs_and_pii(planted_file: Path,
                                                                                        tmp_path: Path):
    one = run_gates_streamed(str(planted_file), "auto", _config())
    lines: list[str] = []
    two = _distributed(planted_file, tmp_path / "work", lines=lines)
    assert two == one  # every key: clusters, rates, bands, PII counts by type and confidence, examples, lengths
    dedup, pii = two["checks"]["dedup"], two["checks"]["pii"]
    assert len(dedup["clusters"]) >= 120 and dedup["exact_duplicate_rate"] > 0  # the planted pairs at J >= 0.8
    assert pii["records_with_pii"] > 10 and len(pii["by_type"]) >= 3 and pii["examples"]
    assert not two["passed"]
    assert [line.split(":")[0] for line in lines if "tasks on local" in line] == [
        "1 sketch", "2 exact-text groups", "3 band pairs", "4 needed records", "5 fetch texts", "6 verify", "7 report"]


def test_one_worker_and_other_shard_counts_give_the_same_report(planted_file: Path, tmp_path: Path):
    reference = _distributed(planted_file, tmp_path / "two")
    assert _distributed(planted_file, tmp_path / "one", workers=1, tasks=1) == reference
    assert _distributed(planted_file, tmp_path / "seven", workers=3, tasks=7) == reference
    # each band's keys split over 3 tasks: a pair meets in the range its shared key falls in, and only there
    three = make_plan(str(planted_file), "auto", _config(), 2, 5, hash_ranges=3)
    assert three.band_tasks == 3 * three.bands
    assert _distributed(planted_file, tmp_path / "ranges", hash_ranges=3) == reference
    # a shard's keys for every exact task, band and key range go in two files (a section each), not 3 x 21 + 2
    written = sorted(p.name for p in (tmp_path / "ranges" / "sketch" / "00000").iterdir())
    assert written == ["bands.bin", "bands.bin.bounds", "exact.bin", "exact.bin.bounds", "meta.json", "pii.json",
                       "words.npz"]


def _broken(i: int, messages: list[dict[str, str]]) -> dict:
    """Every 8th conversation breaks the template gate, five ways in turn (shape and consistency problems)."""
    kind = (i // 8) % 5
    if i % 8 or kind == 4:
        return {"messages": messages} if kind != 4 or i % 8 else {"conversation": messages}
    if kind == 0:
        return {"messages": messages[1:]}  # starts with the assistant
    if kind == 1:
        return {"messages": [messages[0], *messages]}  # two user turns in a row
    if kind == 2:
        return {"messages": [*messages, {"role": "system", "content": "late"}]}
    return {"messages": [{"role": "user", "content": 3}, messages[1]]}  # content not a string


def test_the_template_gate_per_shard_gives_the_one_process_violations_and_lines(tmp_path: Path):
    """130 of 1040 chats break the format (more than the report lists, so the cap across shards counts), with
    blank lines between some, so a shard's line numbers must continue from the shards before it."""
    texts, _ = planted_corpus(seed=9, per_level=20, singles=800)
    path = tmp_path / "chats.jsonl"
    with path.open("w") as f:
        for i, text in enumerate(texts[:1040]):
            record = _broken(i, [{"role": "user", "content": f"question {i}"}, {"role": "assistant", "content": text}])
            f.write(json.dumps(record) + ("\n\n\n" if i % 29 == 0 else "\n"))
    gates = ("template", "dedup", "pii")
    one = run_gates_streamed(str(path), "auto", _config(gates))
    template = one["checks"]["template"]
    assert one["format"] == "chat" and template["checked"] == 1040 and not template["passed"]
    assert len(template["violations"]) == 100 and template["violation_rate"] == pytest.approx(130 / 1040)
    assert {v["problem"].split(" ")[0] for v in template["violations"]} >= {"conversation", "two", "system"}
    assert _distributed(path, tmp_path / "five", gates=gates) == one
    assert _distributed(path, tmp_path / "seven", workers=3, tasks=7, gates=gates) == one


def test_contamination_against_a_second_file_is_the_one_process_finding(planted_file: Path, tmp_path: Path):
    """--against: an "eval split" holding near-copies (J about 0.75-1.0) and exact copies of training records,
    its own exact duplicates, and fresh texts, in 2 shards against 5: the same contaminated records (50), pairs
    and order."""
    texts = [json.loads(line)["text"] for line in planted_file.read_text().splitlines() if line.strip()]
    rng = random.Random(11)
    fresh, _ = planted_corpus(seed=12, per_level=5, singles=150)
    words = [w for t in fresh for w in t.split()]
    evaluation = []
    for k in range(60):
        base = texts[rng.randrange(len(texts))].split()
        changed = [w if rng.random() > 0.01 * (k % 4) else rng.choice(words) for w in base]  # J about 1-0.75
        evaluation.append(" ".join(changed))
    evaluation += fresh[:150] + evaluation[:5]
    rng.shuffle(evaluation)
    against = tmp_path / "eval.jsonl"
    against.write_text("".join(json.dumps({"text": t}) + "\n" for t in evaluation))
    one = run_gates_streamed(str(planted_file), "auto", _config(("dedup",)), against=str(against))
    found = one["checks"]["dedup"]["contamination"]
    assert 30 <= found["contaminated"] < 70 and found["records"] == len(evaluation) and one["against"]
    plan = make_plan(str(planted_file), "auto", _config(("dedup",)), 2, 5, against=str(against))
    assert plan.sketch_tasks == 5 + len(plan.against.shards) and len(plan.against.shards) >= 2
    assert run_distributed(plan, tmp_path / "work", "local", 2, say=lambda _: None) == one


def test_verify_tasks_read_only_their_fetched_texts_and_never_the_input(planted_file: Path, tmp_path: Path):
    """The shuffle: each verify task's fetched texts are exactly the texts of the records its pairs name (and no
    others), so with the input file gone the verify stage still finds the same pairs, across files too."""
    import shutil

    from data_checks.distributed.verification import Verify, fetched_texts

    data, against = tmp_path / "data.jsonl", tmp_path / "eval.jsonl"
    shutil.copy(planted_file, data)
    texts = [json.loads(line)["text"] for line in data.read_text().splitlines() if line.strip()]
    against.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts[::7]))
    plan = make_plan(str(data), "auto", _config(("dedup",)), 3, 5, against=str(against))
    report = run_distributed(plan, tmp_path / "work", "local", 3, say=lambda _: None)
    assert report["checks"]["dedup"]["contamination"]["contaminated"] > 50
    stage = Verify(plan, str(tmp_path / "work"))
    before = [stage.load_array(f"verified/{v:03d}{x}.npy") for v in range(plan.verify_tasks) for x in ("", "-x")]
    other = [json.loads(line)["text"] for line in against.read_text().splitlines()]
    fetched = 0
    for v in range(plan.verify_tasks):
        pairs = stage.load_array(f"needed/{v:03d}-pairs.npy")
        across = stage.load_array(f"needed/{v:03d}-pairs-x.npy")
        store, records = fetched_texts(stage, v)
        assert records.tolist() == sorted(set(pairs.ravel().tolist()) | set(across[:, 0].tolist()))
        assert [store.text(k) for k in range(len(store))] == [texts[i] for i in records.tolist()]
        theirs, their_records = fetched_texts(stage, v, "-x")
        assert their_records.tolist() == sorted(set(across[:, 1].tolist()))
        assert [theirs.text(k) for k in range(len(theirs))] == [other[j] for j in their_records.tolist()]
        assert stage.read_i64(f"needed/{v:03d}.i64").tolist() == records.tolist()
        fetched += len(records)
    assert 0 < fetched < len(texts)  # the candidates' texts only, not the corpus (416 of 680 here)
    data.unlink()
    against.unlink()
    for v in range(plan.verify_tasks):
        stage.run(None, v)
    after = [stage.load_array(f"verified/{v:03d}{x}.npy") for v in range(plan.verify_tasks) for x in ("", "-x")]
    assert all((a == b).all() and len(a) == len(b) for a, b in zip(before, after, strict=True))
    assert sum(len(a) for a in after) > 100


def test_the_template_gate_renders_each_shard_through_the_tokenizer_as_one_process_does(tmp_path: Path,
                                                                                       tiny_tokenizer_dir: Path):
    """--tokenizer --max-length: every task loads the tokenizer and renders its records through the chat
    template; truncation counts, template notes and violations equal one process's."""
    texts, _ = planted_corpus(seed=10, per_level=5, singles=200)
    path = tmp_path / "chats.jsonl"
    with path.open("w") as f:
        for i, text in enumerate(texts[:240]):
            answer = text if i % 3 else " ".join([text] * 4)  # most are longer than 64 tokens, some much longer
            turns = [{"role": "user", "content": f"question {i}"}, {"role": "assistant", "content": answer}]
            f.write(json.dumps(_broken(i, turns)) + "\n")
    base = [*CLI, str(path), "--checks", "template", "--tokenizer", str(tiny_tokenizer_dir), "--max-length", "64"]
    plain = subprocess.run([*base, "--json", str(tmp_path / "one.json")], capture_output=True, text=True, cwd=ROOT)
    engine = subprocess.run([*base, "--json", str(tmp_path / "many.json"), "--engine", "local", "--workdir",
                             str(tmp_path / "work"), "--tasks", "3"], capture_output=True, text=True, cwd=ROOT,
                            timeout=300)
    assert plain.returncode == engine.returncode == 1, engine.stderr
    one, many = (json.loads((tmp_path / f"{name}.json").read_text()) for name in ("one", "many"))
    template = one["checks"]["template"]
    assert template["truncated"] > 40 and template["max_length"] == 64 and template["violation_rate"] > 0
    assert many == one


def test_the_same_report_on_alpaca_libre_with_its_labelled_near_duplicates(tmp_path: Path):
    path = needs_shared("alpaca_libre_quality_labels") / "alpaca_libre_tasks_v1.jsonl"
    one = run_gates_streamed(str(path), "auto", _config(("dedup",)))
    assert _distributed(path, tmp_path / "work", gates=("dedup",)) == one
    assert one["format"] == "alpaca" and one["checks"]["dedup"]["clusters"]


def test_shards_hold_whole_lines_and_every_record_once(tmp_path: Path):
    path = tmp_path / "lines.jsonl"
    rows = [{"text": "x" * random.Random(i).randrange(1, 300), "i": i} for i in range(500)]
    path.write_text("".join(json.dumps(r) + ("\n\n" if r["i"] % 50 == 0 else "\n") for r in rows))
    for count in (1, 2, 7, 64, 2000):
        shards = plan_shards(path, count)
        assert shards[0].start == 0 and shards[-1].end == path.stat().st_size
        assert all(a.end == b.start for a, b in zip(shards, shards[1:], strict=False))
        assert [r["i"] for s in shards for r in iter_shard(s)] == list(range(500)), count
        assert len(shards) <= min(count, 500 + 10)
        for shard in shards:  # the fetch stage's reader: only the wanted records, parsed or not the others
            every = list(enumerate(iter_shard(shard)))
            wanted = {i for i, _ in every if i % 3 == 1}
            assert list(records_at(shard, wanted)) == [(i, r) for i, r in every if i in wanted]
            assert list(records_at(shard, wanted, skip_invalid=True)) == [(i, r) for i, r in every if i in wanted]


def test_a_malformed_line_fails_with_its_file_and_line_as_without_the_engine(planted_file: Path, tmp_path: Path):
    lines = planted_file.read_text().splitlines()
    lines[402] = '{"text": "cut short'
    bad = tmp_path / "bad.jsonl"
    bad.write_text("\n".join(lines) + "\n")
    plain = subprocess.run([*CLI, str(bad), "--checks", "dedup,pii"], capture_output=True, text=True, cwd=ROOT)
    engine = subprocess.run([*CLI, str(bad), "--checks", "dedup,pii", "--engine", "local", "--workdir",
                             str(tmp_path / "work"), "--tasks", "5"], capture_output=True, text=True, cwd=ROOT,
                            timeout=300)
    assert plain.returncode == engine.returncode == 2
    message = f"data-checks: error: {bad}:403: not valid JSON"
    assert message in plain.stderr and message in engine.stderr, engine.stderr
    assert "Traceback" not in engine.stderr and len(engine.stderr.splitlines()) <= 3
    assert not (tmp_path / "work" / "report.json").exists()


def test_skip_invalid_skips_and_lists_the_same_lines_as_without_the_engine(planted_file: Path, tmp_path: Path):
    """Unparseable lines of every kind, in several shards: counted, listed with their lines in the whole file,
    and left out of every gate (record indices shift past them), as one process does."""
    lines = planted_file.read_bytes().split(b"\n")
    at = [3, len(lines) // 3, len(lines) // 2, len(lines) - 5]
    for k, bad in zip(at, (b'{"text": "cut short', b"[1, 2]", b"\xff\xfe not text", b"{oops}"), strict=True):
        lines[k] = bad
    path = tmp_path / "bad.jsonl"
    path.write_bytes(b"\n".join(lines))
    base = [*CLI, str(path), "--checks", "template,dedup,pii", "--skip-invalid"]
    plain = subprocess.run([*base, "--json", str(tmp_path / "one.json")], capture_output=True, text=True, cwd=ROOT)
    engine = subprocess.run([*base, "--json", str(tmp_path / "many.json"), "--engine", "local", "--workdir",
                             str(tmp_path / "work"), "--tasks", "6"], capture_output=True, text=True, cwd=ROOT,
                            timeout=300)
    assert plain.returncode == engine.returncode == 1, engine.stderr  # the planted pairs fail; nothing is an error
    one, many = (json.loads((tmp_path / f"{name}.json").read_text()) for name in ("one", "many"))
    assert one["skipped_invalid"]["count"] == 4
    assert [entry["line"] for entry in one["skipped_invalid"]["lines"]] == [k + 1 for k in at]
    assert many == one


def test_the_clean_copy_is_the_one_process_copy_byte_for_byte(planted_file: Path, tmp_path: Path):
    """--write-clean --redact-pii: one record per cluster (the first), PII redacted, written shard by shard and
    joined: the same bytes as one process writes."""
    base = [*CLI, str(planted_file), "--checks", "dedup,pii", "--redact-pii"]
    plain = subprocess.run([*base, "--write-clean", str(tmp_path / "one.jsonl")], capture_output=True, text=True,
                           cwd=ROOT)
    engine = subprocess.run([*base, "--write-clean", str(tmp_path / "many.jsonl"), "--engine", "local",
                             "--workdir", str(tmp_path / "work"), "--tasks", "6"], capture_output=True, text=True,
                            cwd=ROOT, timeout=300)
    assert plain.returncode == engine.returncode == 1, engine.stderr
    one = (tmp_path / "one.jsonl").read_bytes()
    assert (tmp_path / "many.jsonl").read_bytes() == one
    kept = one.count(b"\n")
    records = sum(1 for line in planted_file.read_bytes().splitlines() if line.strip())
    assert f"clean copy: {kept} of {records} records written" in engine.stdout
    assert kept <= records - 120 and b"<EMAIL_ADDRESS>" in one and b"<PHONE_NUMBER>" in one
    assert "8 clean copy: 6 of 6 tasks on local" in engine.stderr


@pytest.mark.parametrize(("args", "message"), [
    (["--engine", "local"], "--engine local needs --workdir DIR"),
    (["--workdir", "w"], "--workdir needs --engine local, slurm or ray"),
    (["--engine", "local", "--workdir", "w", "--checks", "dedup,agreement"],
     "--engine runs the template, dedup and pii gates; run agreement without --engine"),
    (["--engine", "local", "--workdir", "w", "--chat-template-kwargs", "{}"],
     "--chat-template-kwargs need --tokenizer"),
    (["--engine", "local", "--workdir", "w", "--against", "x.csv"], "x.csv: --engine reads JSONL files"),
    (["--engine", "local", "--workdir", "w", "--redact-pii"], "--redact-pii needs --write-clean"),
    (["--engine", "local", "--workdir", "w", "--workers", "0"], "--workers: must be at least 1, got 0"),
    (["--engine", "local", "--workdir", "w", "--slurm", "partition=cpu"], "--slurm options need --engine slurm"),
    (["--engine", "local", "--workdir", "w", "--hash-ranges", "0"], "--hash-ranges: must be at least 1, got 0"),
    (["--engine", "slurm", "--workdir", "w", "--slurm", "nodes=3"], "--slurm nodes=3: expected KEY=VALUE with KEY"),
])
def test_engine_options_are_checked_before_anything_runs(planted_file: Path, tmp_path: Path, args: list[str],
                                                         message: str):
    result = subprocess.run([*CLI, str(planted_file), *args], capture_output=True, text=True, cwd=tmp_path,
                            timeout=120)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and not (tmp_path / "w").exists()


def test_a_work_directory_holds_one_run(planted_file: Path, tmp_path: Path):
    from data_checks.distributed.engine import EngineError

    _distributed(planted_file, tmp_path / "work", gates=("pii",))
    with pytest.raises(EngineError, match="holds another run .* use a new --workdir"):
        _distributed(planted_file, tmp_path / "work", tasks=4, gates=("pii",))


@pytest.mark.slow
def test_a_run_killed_mid_stage_continues_and_does_not_redo_finished_tasks(tmp_path: Path):
    """The whole command SIGKILLed while the first stage runs (a laptop closed, a node lost); the same command
    again runs only the tasks that had not finished, and reports exactly what one process reports."""
    texts, _ = planted_corpus(seed=5, per_level=150, singles=6000)
    path = tmp_path / "big.jsonl"
    path.write_text("".join(json.dumps({"text": t}) + "\n" for t in texts))
    workdir = tmp_path / "work"
    command = [*CLI, str(path), "--checks", "dedup,pii", "--engine", "local", "--workdir", str(workdir),
               "--workers", "2", "--tasks", "12", "--json", str(tmp_path / "report.json")]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                               start_new_session=True)
    completions = workdir / "logs" / "sketch" / "completions"
    deadline = time.monotonic() + 300
    while len(list(completions.glob("*"))) < 2 if completions.is_dir() else True:
        assert process.poll() is None and time.monotonic() < deadline, "the first stage ended before the kill"
        time.sleep(0.05)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=60)
    finished = len(list(completions.glob("*")))
    assert 2 <= finished < 12

    again = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert again.returncode == 1, again.stderr  # the planted pairs fail the gate
    assert f"1 sketch: {12 - finished} of 12 tasks on local (2 at a time) ({finished} finished earlier, skipped)" \
        in again.stderr
    one = run_gates_streamed(str(path), "auto", _config())
    assert json.loads((tmp_path / "report.json").read_text()) == one
