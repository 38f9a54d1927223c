"""The near-duplicate gate: hashing, exact verification, clusters, contamination, real data (the hash's statistics:
test_dedup_statistics.py)."""

from __future__ import annotations

import itertools
import json
import os
import random
import subprocess
import sys
from collections import defaultdict

import numpy as np
import pytest

import data_checks.dedup as dedup
from data_checks.dedup import (
    DedupGateConfig,
    DedupResult,
    choose_bands,
    collision_probability,
    find_near_duplicates,
    keep_indices,
    normalize,
    shingles,
    signatures,
)
from data_checks.dedup.hashing import shingle_hash, shingle_hashes, text_keys
from data_checks.dedup.words import split_words
from data_checks.formats import record_text
from tests.conftest import ROOT, needs_shared

REPORT_KEYS = {"passed", "near_duplicate_rate", "exact_duplicate_rate", "clusters", "threshold", "num_perm", "bands",
               "rows", "max_rate", "contamination"}


def jaccard(a: str, b: str) -> float:
    x, y = shingles(a), shingles(b)
    return len(x & y) / len(x | y) if x or y else 0.0


def fresh_words(rng: random.Random, count: int) -> list[str]:
    """Words no other document shares (so only planted overlap counts)."""
    return [f"w{n}" for n in rng.sample(range(10**9), count)]


def tail_variant(rng: random.Random, words: list[str], target: float) -> tuple[list[str], float]:
    """`words` with its last m words replaced by fresh ones; m chosen so the shingle Jaccard is nearest `target`.
    N distinct words make N-4 shingles; replacing the last m words changes m of them: J = (N-4-m) / (N-4+m)."""
    n = len(words)
    m = min(range(n - 4), key=lambda k: abs((n - 4 - k) / (n - 4 + k) - target)) if target < 1 else 0
    return words[:n - m] + fresh_words(rng, m), (n - 4 - m) / (n - 4 + m)


def planted_corpus(seed: int = 0, per_level: int = 30, singles: int = 200):
    """Unrelated documents plus pairs at true Jaccard 0.75, 0.79, 0.81, 0.85, 0.95 and 1.0, shuffled."""
    rng = random.Random(seed)
    units = []
    for target in (0.75, 0.79, 0.81, 0.85, 0.95, 1.0):
        for k in range(per_level):
            base = fresh_words(rng, rng.randint(200, 400))
            copy, _ = tail_variant(rng, base, target)
            a, b = " ".join(base), " ".join(copy)
            if target == 1.0 and k % 2:
                b = b.upper().replace(" ", ",  ")  # same normalised text, different raw text
            units.append((a, b))
    units += [(" ".join(fresh_words(rng, rng.randint(200, 400))),) for _ in range(singles)]
    rng.shuffle(units)
    texts, pairs = [], []
    for unit in units:
        if len(unit) == 2:
            pairs.append((len(texts), len(texts) + 1, jaccard(*unit)))
        texts.extend(unit)
    return texts, pairs


@pytest.fixture(scope="module")
def planted():
    texts, pairs = planted_corpus()
    return texts, pairs, find_near_duplicates(texts, DedupGateConfig(workers=1))


# ---------------------------------------------------------------- signatures, normalisation, shingles

def test_signatures_are_deterministic_across_processes():
    # The hashes have no per-process seed (unlike Python's str hash): the same texts give the same
    # signatures in any process, so results are reproducible run to run.
    rng = random.Random(1)
    vocabulary = ["Alpha", "beta,", "GAMMA!", "d_e", "ünïcode", "Straße", "x" * 70, "42", "...", "so-called", "İz",
                  "日本語", "naïve", "e\u0301"]
    texts = ["", "  ...  ", "one", "two words", "Hello, World! This is a test.", "a b c d e",
             "A " + "very" * 20 + " long word in a short text"]
    texts += [" ".join(rng.choice(vocabulary) for _ in range(rng.randint(1, 60))) for _ in range(150)]
    ours = signatures(texts, num_perm=64)
    assert ours.dtype == np.uint32 and ours.shape == (len(texts), 64)
    assert (ours[:2] == np.iinfo(np.uint32).max).all() and (ours[2:] != np.iinfo(np.uint32).max).any(axis=1).all()
    code = ("import json, sys, data_checks.dedup as d; texts = json.load(sys.stdin); "
            "print(json.dumps(d.signatures(texts, num_perm=64).tolist()))")
    for seed in ("0", "12345"):
        done = subprocess.run([sys.executable, "-c", code], input=json.dumps(texts), capture_output=True, text=True,
                              cwd=ROOT, check=True, timeout=60, env={**os.environ, "PYTHONHASHSEED": seed})
        assert np.array_equal(np.array(json.loads(done.stdout), dtype=np.uint32), ours)


def test_normalisation_and_shingles():
    assert normalize("  Hello,\tWORLD!! foo_bar--baz\n") == "hello world foo bar baz"
    assert normalize("Straße, ÜBER-alles") == "straße über alles"
    assert normalize("?!. ,") == ""
    assert shingles("a b c d e f") == {"a b c d e", "b c d e f"}
    assert shingles("The cat, the CAT!", ngram=2) == {"the cat", "cat the"}
    # fewer than five words: the whole normalised text is the one shingle; no words: no shingles
    assert shingles("Short text, here.") == {"short text here"}
    assert shingles("") == set() == shingles("... !!!")
    # repeated n-grams count once (a set)
    assert shingles("x y z w v x y z w v") == {"x y z w v", "y z w v x", "z w v x y", "w v x y z", "v x y z w"}


def test_fast_shingle_hashes_match_the_reference():
    # The vectorised path (byte-level word split, word hashes, shingle hashes as multiply-adds of word
    # hashes) gives exactly the hash of each reference shingle string, for every n-gram size.
    rng = random.Random(2)
    vocabulary = ["Alpha", "beta,", "ünïcode", "_", "Z9", "straße!", "a", "x" * 70, "abcdefgh", "abcdefghi",
                  "abcdefghijklmnop", "abcdefghijklmnopq", "日本語"]
    texts = [" ".join(rng.choice(vocabulary) for _ in range(rng.randint(0, 12))) for _ in range(300)]
    words = split_words(texts)
    spelled = [[bytes(words.buffer[s:s + n]) for s, n in zip(words.start[a:b].tolist(), words.length[a:b].tolist(),
                                                             strict=True)]
               for a, b in zip(words.first[:-1].tolist(), words.first[1:].tolist(), strict=True)]
    assert spelled == [normalize(t).encode("utf-8").split() for t in texts]
    for ngram in (5, 1, 3):
        hashes = shingle_hashes(words, ngram)  # one per word: a document's shingles, its first one repeated
        for k, text in enumerate(texts):
            fast = hashes[words.first[k]:words.first[k + 1]].tolist()
            assert set(fast) == {shingle_hash(s) for s in shingles(text, ngram)}, text
            assert len(fast) == len(spelled[k])
    keys = text_keys(words)
    for a, b in itertools.combinations(range(len(texts)), 2):
        assert (keys[a] == keys[b]) == (normalize(texts[a]) == normalize(texts[b]))


def test_bands_reach_the_target_collision_probability():
    bands, rows = choose_bands(0.8, 128)
    assert (bands, rows) == (21, 6) and bands * rows <= 128
    assert collision_probability(0.8, bands, rows) >= 0.99
    assert collision_probability(0.8, 9, 13) < 0.5  # datasketch's own choice for 0.8 / 128
    assert choose_bands(0.5, 128) is not None and choose_bands(0.3, 4) is None


# ---------------------------------------------------------------- the planted corpus

def test_planted_pairs_precision_and_recall(planted):
    texts, pairs, result = planted
    levels = sorted({round(j, 2) for _, _, j in pairs})
    assert levels == [0.75, 0.79, 0.81, 0.85, 0.95, 1.0]
    assert sum(s >= 0.8 for _, _, s in pairs) == 120
    truth = {(i, j) for i, j, s in pairs if s >= 0.8}
    found = {(i, j) for i, j, _ in result.pairs}
    assert len(truth & found) / len(truth) >= 0.99
    assert len(truth & found) / len(found) >= 0.99
    for i, j, reported in result.pairs:  # never a pair below the threshold, and the Jaccard is the true one
        assert reported >= 0.8 and reported == pytest.approx(jaccard(texts[i], texts[j]))
    assert all((i, j) not in found for i, j, s in pairs if s < 0.8)
    assert sorted(result.clusters) == sorted([i, j] for i, j in found)
    assert result.near_duplicate_rate == pytest.approx(len(found) / len(texts))
    assert not result.passed  # 120 of 560 records are near-duplicates


def test_exact_duplicates_are_counted(planted):
    texts, pairs, result = planted
    identical = [(i, j) for i, j, _ in pairs if normalize(texts[i]) == normalize(texts[j])]
    assert len(identical) == 30  # the J = 1.0 level, half of them differing in case and punctuation
    assert result.exact_duplicate_rate == pytest.approx(30 / len(texts))
    assert all((i, j, 1.0) in result.pairs for i, j in identical)
    duplicated = find_near_duplicates(["Same text here.", "same TEXT here", "same text, here!", "other"],
                                      DedupGateConfig())
    assert duplicated.clusters == [[0, 1, 2]]
    assert duplicated.exact_duplicate_rate == pytest.approx(2 / 4) == duplicated.near_duplicate_rate


def test_report_shape_and_gate_verdict(planted):
    texts, _, result = planted
    report = result.to_dict()
    assert set(report) == REPORT_KEYS
    assert (report["threshold"], report["num_perm"], report["bands"], report["rows"]) == (0.8, 128, 21, 6)
    assert report["contamination"] is None and report["max_rate"] == 0.01
    json.dumps(report)
    clean = find_near_duplicates(texts[:0] + [t for k, t in enumerate(texts) if k not in
                                              {x for c in result.clusters for x in c[1:]}], DedupGateConfig())
    assert clean.passed and clean.near_duplicate_rate == 0 and clean.clusters == []


def test_clusters_are_connected_components():
    rng = random.Random(3)
    a = fresh_words(rng, 300)
    b = a[:270] + fresh_words(rng, 30)  # a~b: J about 0.82
    c = fresh_words(rng, 30) + b[30:]  # b~c about 0.82, a~c about 0.66: joined only through b
    texts = [" ".join(fresh_words(rng, 50)), " ".join(c), " ".join(a), " ".join(fresh_words(rng, 50)), " ".join(b)]
    assert jaccard(texts[2], texts[4]) >= 0.8 and jaccard(texts[4], texts[1]) >= 0.8
    assert jaccard(texts[2], texts[1]) < 0.8
    result = find_near_duplicates(texts, DedupGateConfig())
    assert result.clusters == [[1, 2, 4]]
    assert {(i, j) for i, j, _ in result.pairs} == {(1, 4), (2, 4)}
    assert result.near_duplicate_rate == pytest.approx(2 / 5)
    assert keep_indices(result, 5) == [0, 1, 3]
    # an exact copy of a linked record joins its cluster (a regression: it once formed a cluster of its own)
    with_copy = find_near_duplicates(texts + [texts[4].title()], DedupGateConfig())
    assert with_copy.clusters == [[1, 2, 4, 5]] and with_copy.exact_duplicate_rate == pytest.approx(1 / 6)


def test_gate_fails_at_max_rate():
    rng = random.Random(4)
    texts = [" ".join(fresh_words(rng, 40)) for _ in range(99)]
    texts.append(texts[7].upper())  # one duplicate in 100 records: rate 0.01
    at_limit = find_near_duplicates(texts, DedupGateConfig(max_rate=0.01))
    assert at_limit.near_duplicate_rate == pytest.approx(0.01) and not at_limit.passed
    assert find_near_duplicates(texts, DedupGateConfig(max_rate=0.011)).passed


def test_listed_clusters_are_capped_but_the_rate_counts_all():
    texts = [f"document number {i} says something" for i in range(250) for _ in range(2)]
    result = find_near_duplicates(texts, DedupGateConfig())
    assert len(result.clusters) == 250 and len(result.to_dict()["clusters"]) == dedup.MAX_LISTED_CLUSTERS
    assert result.near_duplicate_rate == pytest.approx(0.5)
    assert len(keep_indices(result, len(texts))) == 250


def test_empty_and_wordless_records_are_never_duplicates():
    result = find_near_duplicates(["", "", "...", "!!", "real words in this one"], DedupGateConfig())
    assert result.clusters == [] and result.passed and result.exact_duplicate_rate == 0
    assert find_near_duplicates([], DedupGateConfig()).to_dict()["near_duplicate_rate"] == 0


def test_contamination_against_an_eval_set():
    rng = random.Random(5)
    train = [fresh_words(rng, 120) for _ in range(40)]
    eval_set = [tail_variant(rng, train[3], 0.9)[0], fresh_words(rng, 120), list(train[20]), [],
                tail_variant(rng, train[3], 0.7)[0], tail_variant(rng, train[11], 0.85)[0]]
    main, against = [" ".join(w) for w in train], [" ".join(w) for w in eval_set]
    result = find_near_duplicates(main, DedupGateConfig(), against=against)
    contamination = result.to_dict()["contamination"]
    assert set(contamination) == {"records", "contaminated", "rate", "pairs"}
    assert (contamination["records"], contamination["contaminated"]) == (6, 3)
    assert contamination["rate"] == pytest.approx(0.5)
    assert [p[:2] for p in contamination["pairs"]] == [[3, 0], [20, 2], [11, 5]]
    assert contamination["pairs"][1][2] == 1.0 and 0.8 <= contamination["pairs"][0][2] < 1
    assert result.near_duplicate_rate == 0 and not result.passed  # failed by contamination alone
    relaxed = find_near_duplicates(main, DedupGateConfig(fail_on_contamination=False), against=against)
    assert relaxed.passed and relaxed.contamination["contaminated"] == 3


def test_keep_indices():
    assert keep_indices([[5, 2, 9], [1, 4]], 10) == [0, 1, 2, 3, 6, 7, 8]
    assert keep_indices([], 3) == [0, 1, 2]


def test_config_problems():
    assert DedupGateConfig().problems() == []
    cases = {"threshold": (0, "checks.dedup.threshold: must be in (0, 1]"),
             "num_perm": (0, "checks.dedup.num_perm:"), "ngram": (0, "checks.dedup.ngram:"),
             "max_rate": (0.0, "checks.dedup.max_rate:"), "workers": (0, "checks.dedup.workers:"),
             "field": ("", "checks.dedup.field:"),
             "fail_on_contamination": ("yes", "checks.dedup.fail_on_contamination:")}
    for key, (value, message) in cases.items():
        problems = DedupGateConfig(**{key: value}).problems()
        assert len(problems) == 1 and problems[0].startswith(message), (key, problems)
    assert DedupGateConfig(threshold=1.5).problems() == ["checks.dedup.threshold: must be in (0, 1]"]
    assert "cannot give" in DedupGateConfig(threshold=0.3, num_perm=4).problems()[0]
    with pytest.raises(ValueError, match="checks.dedup.threshold"):
        find_near_duplicates(["a"], DedupGateConfig(threshold=2.0))


def test_config_is_an_omegaconf_structured_config():
    omegaconf = pytest.importorskip("omegaconf")
    merged = omegaconf.OmegaConf.merge(omegaconf.OmegaConf.structured(DedupGateConfig),
                                       {"field": "text", "workers": 4, "threshold": 0.9})
    config = omegaconf.OmegaConf.to_object(merged)
    assert config == DedupGateConfig(threshold=0.9, field="text", workers=4) and config.problems() == []


def test_worker_processes_give_the_same_result(planted, monkeypatch):
    texts, _, single = planted
    monkeypatch.setattr(dedup.workers, "MIN_CHARS_FOR_POOL", 0)
    monkeypatch.setattr(dedup.sketching, "CHUNK_DOCS", 64)
    monkeypatch.setattr(dedup.gate, "VERIFY_CHUNK", 16)
    pooled = find_near_duplicates(texts, DedupGateConfig(workers=2), against=texts[:50])
    assert pooled.to_dict() | {"contamination": None} == single.to_dict()
    assert pooled.pairs == single.pairs
    assert pooled.contamination["contaminated"] == 50
    assert np.array_equal(signatures(texts[:100]), dedup.minhash.sketch(texts[:100], 5, 128)[0])
    chunked = np.concatenate([signatures(texts[s:min(s + 7, 100)]) for s in range(0, 100, 7)])
    assert np.array_equal(signatures(texts[:100]), chunked)  # a document's signature ignores its chunk


def test_texts_streamed_to_forked_children_give_the_same_result(planted, monkeypatch):
    # The gate's way (data_checks.dedup.spec): one text at a time, batches forked off while texts still
    # come, the rest shared out at the end; and a child that fails is run again in this process.
    texts, _, single = planted
    monkeypatch.setattr(dedup.workers, "MIN_CHARS_FOR_POOL", 0)
    monkeypatch.setattr(dedup.sketching, "BATCH_DOCS", 48)
    monkeypatch.setattr(dedup.sketching, "POLL_EVERY", 8)
    monkeypatch.setattr(dedup.sketching, "CHUNK_DOCS", 16)
    monkeypatch.setattr(dedup.gate, "VERIFY_CHUNK", 16)
    forked = []

    class Counted(dedup.workers.Forked):
        def __init__(self, function, *args):
            forked.append(function.__name__)
            super().__init__(function, *args)

    monkeypatch.setattr(dedup.workers, "Forked", Counted)
    finder = dedup.NearDuplicateFinder(DedupGateConfig(workers=2))
    for text in texts:
        finder.add(text)
    assert forked.count("sketch_range") >= 2  # while the texts came
    streamed = finder.result()
    assert forked.count("sketch_range") >= 3 and "_verify_part" in forked
    assert streamed.to_dict() == single.to_dict() and streamed.pairs == single.pairs

    def broken(*args):
        raise RuntimeError("only in the parent")

    task = dedup.workers.Forked(lambda: os._exit(3))  # the child dies: the call is made again here
    task.function = broken
    with pytest.raises(RuntimeError, match="only in the parent"):
        task.result()


def test_import_does_not_pull_in_torch():
    code = ("import sys, data_checks.dedup as d; d.find_near_duplicates(['a b c'], d.DedupGateConfig()); "
            "bad = sorted(m for m in ('torch', 'transformers') if m in sys.modules); assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, timeout=60)


# ---------------------------------------------------------------- real data (../shared/datasets)

def _jsonl(path) -> list[dict]:
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:  # alpaca-libre v2 keeps 14 malformed lines on purpose
            continue
    return rows


def _true_pairs(texts: list[str], threshold: float = 0.8) -> set[tuple[int, int]]:
    """Every pair of distinct normalised texts with Jaccard >= threshold, by brute force over an inverted index
    (the first index of each distinct text stands for it)."""
    first: dict[str, int] = {}
    for i, text in enumerate(texts):
        first.setdefault(normalize(text), i)
    sets = {i: shingles(texts[i]) for i in first.values() if normalize(texts[i])}
    postings = defaultdict(list)
    for i, s in sets.items():
        for shingle in s:
            postings[shingle].append(i)
    candidates = {pair for ids in postings.values() for pair in itertools.combinations(ids, 2)}
    return {(i, j) for i, j in candidates if len(sets[i] & sets[j]) >= threshold * len(sets[i] | sets[j])}


def _cluster_of(result: DedupResult) -> dict[int, int]:
    return {x: k for k, cluster in enumerate(result.clusters) for x in cluster}


def test_cosmos_qa_templates_clusters_follow_the_ground_truth():
    folder = needs_shared("t0_cosmos_qa_templates")
    files = sorted(folder.glob("cosmos_qa_*.jsonl"))
    assert len(files) == 13
    data = {f.stem.removeprefix("cosmos_qa_"): [record_text(r, "prompt_completion") for r in _jsonl(f)]
            for f in files}
    # Line i of every file is the same example; its passage is the first line of the no-template rendering.
    passage = [text.split("\n")[0] for text in data["no_prompt_text"]]
    assert len(set(passage)) == 154
    # Within one file, near-duplicates can only be different questions about the same passage, and the gate
    # finds every pair the brute-force Jaccard finds.
    for name, texts in data.items():
        result = find_near_duplicates(texts, DedupGateConfig())
        cluster = _cluster_of(result)
        truth = _true_pairs(texts)
        assert all(cluster.get(i) is not None and cluster.get(i) == cluster.get(j) for i, j in truth), name
        assert all(len({passage[x] for x in c}) == 1 for c in result.clusters), name
        assert all(passage[i] == passage[j] for i, j, _ in result.pairs)
    # All 13 files together: 2,600 records, clusters never mix passages (renderings of one example, or sibling
    # questions of one passage), and most records sit in a cluster.
    everything = [t for name in sorted(data) for t in data[name]]
    union = find_near_duplicates(everything, DedupGateConfig())
    assert all(len({passage[x % 200] for x in c}) == 1 for c in union.clusters)
    assert union.near_duplicate_rate > 0.25 and not union.passed
    # Across templates, as contamination: the only-a-header-line-apart templates give the aligned line back.
    main, held_out = data["context_question_description_answer_id"], data["no_prompt_id"]
    crossed = find_near_duplicates(main, DedupGateConfig(), against=held_out)
    expected = {j for j in range(200) if any(jaccard(main[i], held_out[j]) >= 0.8
                                             for i in range(200) if passage[i] == passage[j])}
    assert crossed.contamination["contaminated"] == len(expected) >= 190
    assert all(passage[i] == passage[j] for i, j, _ in crossed.contamination_pairs)
    assert not crossed.passed


@pytest.mark.parametrize("version", [1, 2])
def test_alpaca_libre_too_similar_labels(version):
    folder = needs_shared("alpaca_libre_quality_labels")
    rows = _jsonl(folder / f"alpaca_libre_tasks_v{version}.jsonl")
    instructions = [r["instruction"] for r in rows]
    result = find_near_duplicates(instructions, DedupGateConfig())
    cluster = _cluster_of(result)
    truth = _true_pairs(instructions)
    # every pair of instructions with true J >= 0.8 ends up in one cluster; no verified pair is below 0.8
    assert all(cluster.get(i) is not None and cluster.get(i) == cluster.get(j) for i, j in truth)
    assert all(jaccard(instructions[i], instructions[j]) >= 0.8 for i, j, _ in result.pairs)
    # the `too similar` rows among them are all found
    labelled = {i for pair in truth for i in pair if rows[i]["status"] == "too similar"}
    assert labelled and labelled <= set(cluster)
    # the exact duplicates the labels mark (ROUGE-L similarity 1.0) are reported as exact duplicates
    similarity = [r.get("similarity", (r.get("other") or {}).get("similarity")) for r in rows]
    normalised = [normalize(t) for t in instructions]
    counts = defaultdict(int)
    for text in normalised:
        counts[text] += 1
    marked = [i for i, s in enumerate(similarity) if s == 1.0 and counts[normalised[i]] > 1]
    assert len(marked) >= 180
    exact = {x for c in result.clusters for x in c if counts[normalised[x]] > 1}
    assert set(marked) <= exact
    extra_copies = sum(c - 1 for text, c in counts.items() if text)
    assert result.exact_duplicate_rate == pytest.approx(extra_copies / len(rows))
    assert not result.passed


def test_gsm8k_train_is_a_clean_negative_control():
    folder = needs_shared("gsm8k")
    rows = _jsonl(folder / "train.jsonl")
    result = find_near_duplicates([f"{r['question']}\n{r['answer']}" for r in rows], DedupGateConfig())
    assert len(rows) == 7473
    assert result.near_duplicate_rate < 0.01 and result.exact_duplicate_rate == 0 and result.passed
