"""ensemble/: fusing score files written by the trainer's own writer, labels, bad input, the weight search."""
from __future__ import annotations

import os
import pickle
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from engine.reports import write_scores
from ensemble import ensemble
from ensemble.search import search_weights
from feeders.prepared import write_prepared_split

ROOT = Path(__file__).resolve().parents[1]
FUSED_LINE = re.compile(r"fused \(weights ([\d. ]+)\): top-1 ([\d.]+)%  top-5 ([\d.]+)%  \((\d+) samples\)")
SEARCH_LINE = re.compile(r"search on (\d+) held-out samples .*: weights ([\d. ]+), held-out top-1 ([\d.]+)% "
                         r"\(start ([\d.]+)%\)")


def ntu_names(labels: np.ndarray) -> list[str]:
    return [f"S001C00{i % 3 + 1}P{i + 1:03d}R001A{label + 1:03d}" for i, label in enumerate(labels)]


def write_stream(folder: Path, stem: str, names: list[str], scores: np.ndarray, labels: np.ndarray) -> Path:
    """Write a stream's ``.pkl`` and ``.npz`` as the trainer does; return the npz path."""
    write_scores(folder, stem, names, scores, labels)
    return folder / f"{stem}_score.npz"


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    code = ensemble.main([str(arg) for arg in argv])
    out, err = capsys.readouterr()
    return code, out, err


def fused_numbers(out: str) -> tuple[list[float], float, float, int]:
    weights, top1, top5, count = FUSED_LINE.search(out).groups()
    return [float(w) for w in weights.split()], float(top1), float(top5), int(count)


@pytest.fixture
def streams(tmp_path):
    """Three streams over 40 NTU-named samples and 7 classes: (names, labels, [scores], [npz paths])."""
    rng = np.random.default_rng(0)
    labels = rng.integers(7, size=40)
    names = ntu_names(labels)
    scores = [rng.normal(size=(40, 7)).astype(np.float32) + 1.2 * np.eye(7, dtype=np.float32)[labels]
              for _ in range(3)]
    paths = [write_stream(tmp_path, f"s{i}", names, s, labels) for i, s in enumerate(scores)]
    return names, labels, scores, paths


def hand_accuracy(fused: np.ndarray, labels: np.ndarray, k: int) -> float:
    """Percentage of rows with fewer than ``k`` classes scoring above the label."""
    hits = [sum(value > row[label] for value in row) < k for row, label in zip(fused.tolist(), labels.tolist())]
    return 100 * sum(hits) / len(hits)


# -------------------------------------------------------------------------------------------- fusion
def test_fused_accuracy_matches_hand_computation(streams, tmp_path, capsys):
    names, labels, scores, paths = streams
    as_float64 = tmp_path / "s2_float64.npz"  # a stream stored in another float type
    np.savez(as_float64, names=np.asarray(names), scores=scores[2].astype(np.float64), labels=labels)
    weights = [0.6, 0.3, 1.7]
    code, out, _ = run(["--scores", paths[0], paths[1], as_float64, "--weights", *weights,
                        "--out", tmp_path / "fused.npz"], capsys)
    assert code == 0
    expected = sum(w * s.astype(np.float64) for w, s in zip(weights, scores))
    shown_weights, top1, top5, count = fused_numbers(out)
    assert shown_weights == weights and count == 40
    assert top1 == round(hand_accuracy(expected, labels, 1), 2) and top5 == round(hand_accuracy(expected, labels, 5), 2)
    assert 0 < hand_accuracy(expected, labels, 1) < 100 and hand_accuracy(expected, labels, 5) > top1
    single = [line for line in out.splitlines() if line.endswith("%") and not line.startswith("fused")]
    assert len(single) == 3 and f"{hand_accuracy(scores[0], labels, 1):.2f}%" in single[0]
    with np.load(tmp_path / "fused.npz") as saved:
        np.testing.assert_allclose(saved["scores"], expected, rtol=1e-12)
        assert saved["names"].tolist() == names and saved["labels"].tolist() == labels.tolist()
        assert saved["weights"].tolist() == weights and saved["scores"].dtype == np.float64
        assert saved["sources"].tolist() == [str(paths[0]), str(paths[1]), str(as_float64)]


def test_default_equal_weights_and_preset(streams, tmp_path, capsys):
    names, labels, scores, paths = streams
    assert run(["--scores", *paths], capsys)[0] == 0
    assert run(["--scores", *paths, "--weights", 1, 1, 1], capsys)[1] == run(["--scores", *paths], capsys)[1]
    fourth = write_stream(tmp_path, "s3", names, scores[0], labels)
    code, out, _ = run(["--scores", *paths, fourth, "--preset", "ctrgcn-4s"], capsys)
    assert code == 0 and fused_numbers(out)[0] == [0.6, 0.6, 0.4, 0.4]
    assert re.search(r"^\s+JM\s+\S+s2_score\.npz: top-1", out, re.MULTILINE)


def test_rows_are_aligned_by_name(streams, tmp_path, capsys):
    names, labels, scores, paths = streams
    order = np.random.default_rng(1).permutation(len(names))
    shuffled = write_stream(tmp_path, "shuffled", [names[i] for i in order], scores[1][order], labels[order])
    assert run(["--scores", paths[0], shuffled, paths[2], "--out", tmp_path / "a.npz"], capsys)[0] == 0
    assert run(["--scores", *paths, "--out", tmp_path / "b.npz"], capsys)[0] == 0
    with np.load(tmp_path / "a.npz") as a, np.load(tmp_path / "b.npz") as b:
        np.testing.assert_array_equal(a["scores"], b["scores"])
        assert a["names"].tolist() == names


def test_pickles_with_ntu_names_give_labels_from_the_action_id(streams, capsys):
    _, _, _, paths = streams
    code, from_pickles, _ = run(["--scores", *[p.with_suffix(".pkl") for p in paths]], capsys)
    assert code == 0
    assert fused_numbers(from_pickles)[1:] == fused_numbers(run(["--scores", *paths], capsys)[1])[1:]


def test_labels_from_a_prepared_folder(tmp_path, capsys):
    rng = np.random.default_rng(2)
    labels = rng.integers(4, size=10)
    names = [f"clip_{i:02d}" for i in range(10)]
    scores = rng.normal(size=(10, 4)).astype(np.float32)
    write_scores(tmp_path, "clips", names, scores, labels)
    pkl = tmp_path / "clips_score.pkl"
    code, _, err = run(["--scores", pkl], capsys)
    assert code == 2 and "--labels" in err and "clip_00" in err
    order = rng.permutation(10)  # the dataset lists the samples in another order
    write_prepared_split(tmp_path / "data", "val", np.zeros((10, 3, 2, 25, 2)), labels[order], [names[i] for i in order])
    code, out, _ = run(["--scores", pkl, "--labels", tmp_path / "data", "--split", "val"], capsys)
    assert code == 0 and fused_numbers(out)[1] == round(hand_accuracy(scores, labels, 1), 2)


# ----------------------------------------------------------------------------------------- bad input
def bad_case(case: str, folder: Path, names: list[str], labels: np.ndarray, scores: np.ndarray) -> tuple[list, str]:
    """Arguments for one kind of bad input and the text its error must name."""
    good = folder / "s0_score.npz"
    if case == "missing name":
        return ["--scores", good, write_stream(folder, "short", names[:-1], scores[:-1], labels[:-1])], \
            f"short_score.npz: 1 samples of {good} are missing (first: {names[-1]})"
    if case == "extra name":
        extra = write_stream(folder, "long", [*names, "S009C001P001R001A001"], np.vstack([scores, scores[:1]]),
                             np.append(labels, 0))
        return ["--scores", good, extra], "long_score.npz: 1 samples not in"
    if case == "class count":
        return ["--scores", good, write_stream(folder, "wide", names, np.hstack([scores, scores[:, :1]]), labels)], \
            "wide_score.npz: 8 classes"
    if case == "label disagreement":
        other = labels.copy()
        other[5] = (other[5] + 1) % 7
        return ["--scores", good, write_stream(folder, "relabelled", names, scores, other)], \
            f"relabelled_score.npz: label {other[5]} of sample {names[5]} disagrees"
    if case == "weight count":
        return ["--scores", good, good, "--weights", 1, 2, 3], "--weights has 3 weights for 2 score files"
    if case == "preset count":
        return ["--scores", good, good, "--preset", "mmcl-ntu120-xsub-6s"], "mmcl-ntu120-xsub-6s"
    if case == "unknown preset":
        return ["--scores", good, "--preset", "nope"], "unknown preset 'nope'"
    if case == "forbidden global":
        evil = folder / "evil_score.pkl"
        evil.write_bytes(pickle.dumps({names[0]: Exploit(folder / "ran")}))
        return ["--scores", evil], f"evil_score.pkl: refused to unpickle global {os.system.__module__}.system"
    if case == "ragged pickle":
        ragged = folder / "ragged_score.pkl"
        ragged.write_bytes(pickle.dumps({names[0]: scores[0], names[1]: scores[1, :3]}))
        return ["--scores", ragged], f"ragged_score.pkl: sample {names[1]} has scores of shape (3,)"
    if case == "search on test":
        return ["--scores", good, "--search-scores", good], f"s0_score.npz: 40 held-out samples are also in {good}"
    if case == "missing file":
        return ["--scores", good, folder / "absent.npz"], "absent.npz: score file not found"
    assert case == "out exists"
    (folder / "taken.npz").write_bytes(b"")
    return ["--scores", good, "--out", folder / "taken.npz"], "taken.npz exists: pass --overwrite"


class Exploit:
    """Unpickling this would run a shell command creating ``marker``."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


@pytest.mark.parametrize("case", ["missing name", "extra name", "class count", "label disagreement", "weight count",
                                  "preset count", "unknown preset", "forbidden global", "ragged pickle",
                                  "search on test", "missing file", "out exists"])
def test_bad_input_is_one_error_line(case, streams, tmp_path, capsys):
    names, labels, scores, _ = streams
    argv, culprit = bad_case(case, tmp_path, names, labels, scores[0])
    code, out, err = run(argv, capsys)
    assert code == 2 and "fused" not in out
    assert len(err.strip().splitlines()) == 1 and err.startswith("error: ") and culprit in err, err
    assert not (tmp_path / "ran").exists()


# ---------------------------------------------------------------------------------------- the search
def noisy_pair(folder: Path, stem: str, seed: int, labels: np.ndarray | None = None) -> list[Path]:
    """An informative stream and a loud noise stream over 300 samples of 8 classes."""
    rng = np.random.default_rng(seed)
    true = rng.integers(8, size=300)
    names = [f"{stem}{i:03d}" for i in range(300)]
    informative = (2 * np.eye(8)[true] + rng.normal(size=(300, 8))).astype(np.float32)
    noise = (3 * rng.normal(size=(300, 8))).astype(np.float32)
    written = true if labels is None else labels
    return [write_stream(folder, f"{stem}_{kind}", names, s, written)
            for kind, s in (("informative", informative), ("noise", noise))]


def search_run(folder: Path, capsys, test_labels: np.ndarray | None = None) -> tuple[str, str]:
    """Search on a held-out pair, apply to a test pair; return (search line, fused line)."""
    held_out = noisy_pair(folder, "val", seed=10)
    test = noisy_pair(folder, "test", seed=11, labels=test_labels)
    code, out, _ = run(["--scores", *test, "--search-scores", *held_out], capsys)
    assert code == 0
    return SEARCH_LINE.search(out).group(0), FUSED_LINE.search(out).group(0)


def test_search_beats_equal_weights_and_is_deterministic(tmp_path, capsys):
    search, fused = search_run(tmp_path, capsys)
    count, weights, found, start = SEARCH_LINE.search(search).groups()
    weights = [float(w) for w in weights.split()]
    assert int(count) == 300 and weights[1] <= weights[0] / 10 and float(found) > float(start) + 10
    assert fused_numbers(fused)[0] == weights
    equal = fused_numbers(run(["--scores", tmp_path / "test_informative_score.npz",
                               tmp_path / "test_noise_score.npz"], capsys)[1])
    assert fused_numbers(fused)[1] > equal[1] + 10
    assert search_run(tmp_path / "again", capsys) == (search, fused)


def test_search_never_reads_the_test_labels(tmp_path, capsys):
    search, fused = search_run(tmp_path / "true", capsys)
    shuffled = np.random.default_rng(5).integers(8, size=300)
    search_shuffled, fused_shuffled = search_run(tmp_path / "shuffled", capsys, test_labels=shuffled)
    assert search_shuffled == search and fused_shuffled != fused


def test_search_starts_from_given_weights_and_never_loses():
    rng = np.random.default_rng(3)
    labels = rng.integers(6, size=200)
    scores = rng.normal(size=(3, 200, 6)) + np.array([0.5, 1.0, 1.5])[:, None, None] * np.eye(6)[labels]
    result = search_weights(scores, labels, np.array([2.0, 4.0, 1.0]))
    assert result.correct >= result.start_correct and (result.weights >= 0).all() and result.weights.max() <= 2
    assert np.array_equal(search_weights(scores, labels, np.array([2.0, 4.0, 1.0])).weights, result.weights)


# ------------------------------------------------------------------------------------ entry points
def test_out_refuses_to_overwrite_unless_asked(streams, tmp_path, capsys):
    _, _, _, paths = streams
    out = tmp_path / "fused.npz"
    assert run(["--scores", *paths, "--out", out], capsys)[0] == 0
    code, _, err = run(["--scores", *paths[:2], "--out", out], capsys)
    assert code == 2 and "--overwrite" in err
    assert np.load(out)["weights"].tolist() == [1, 1, 1]
    assert run(["--scores", *paths[:2], "--out", out, "--overwrite"], capsys)[0] == 0
    assert np.load(out)["weights"].tolist() == [1, 1]


@pytest.mark.parametrize("form", ["script from another folder", "module"])
def test_command_runs_as_script_and_module(form, streams, tmp_path):
    _, _, _, paths = streams
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    if form == "module":
        command, cwd = [sys.executable, "-m", "ensemble.ensemble"], ROOT
    else:
        command, cwd = [sys.executable, str(ROOT / "ensemble" / "ensemble.py")], tmp_path
    done = subprocess.run([*command, "--scores", *map(str, paths), "--preset", "nope"], cwd=cwd, env=env,
                          capture_output=True, text=True, check=False)
    assert done.returncode == 2 and done.stderr.startswith("error: unknown preset")
    done = subprocess.run([*command, "--scores", *map(str, paths)], cwd=cwd, env=env, capture_output=True, text=True,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert FUSED_LINE.search(done.stdout).group(4) == "40"


# ------------------------------------------------------------------------ the upstream MMCL command
UPSTREAM = ("J", "B", "JM", "BM", "HDJ", "HDB")


def upstream_files(folder: Path, classes: int = 120, n: int = 60, seed: int = 3) -> tuple[list[str], np.ndarray,
                                                                                        list[np.ndarray], Path]:
    """Six upstream-style ``.pkl`` score files (dicts in the names file's order) and the names file."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(classes, size=n)
    names = ntu_names(labels)
    (folder / "val.txt").write_text("\n".join(names) + "\n")
    scores = [rng.normal(size=(n, classes)).astype(np.float32) + 1.5 * np.eye(classes, dtype=np.float32)[labels]
              for _ in UPSTREAM]
    for tag, stream in zip(UPSTREAM, scores):
        (folder / f"{tag}.pkl").write_bytes(pickle.dumps(dict(zip(names, stream))))
    return names, labels, scores, folder / "val.txt"


def upstream_top1(scores: list[np.ndarray], weights: tuple[float, ...], names_file: Path) -> float:
    """The upstream script's computation: rows paired by position with the names file, labels from the names."""
    labels = np.array([int(name[-3:]) - 1 for name in names_file.read_text().split()])
    fused = sum(w * s.astype(np.float64) for w, s in zip(weights, scores))
    return 100 * float(np.mean(fused.argmax(1) == labels))


def test_upstream_command_as_written_even_with_rows_in_another_order(tmp_path, capsys):
    from ensemble.presets import PRESETS
    names, _, scores, val = upstream_files(tmp_path)
    argv = [arg for tag in UPSTREAM for arg in (f"--{tag}_Score", tmp_path / f"{tag}.pkl")]
    argv += ["--val_sample", val, "--benchmark", "NTU120XSub"]
    code, out, _ = run(argv, capsys)
    weights = PRESETS["mmcl-ntu120-xsub-6s"].weights
    expected = round(upstream_top1(scores, weights, val), 2)
    assert code == 0 and fused_numbers(out)[0] == [float(f"{w:.10g}") for w in weights]
    assert fused_numbers(out)[1] == expected and 0 < expected < 100
    order = np.random.default_rng(0).permutation(len(names))  # the B stream's rows come in another order
    (tmp_path / "B.pkl").write_bytes(pickle.dumps({names[i]: scores[1][i] for i in order}))
    assert fused_numbers(run(argv, capsys)[1])[1] == expected


def test_upstream_streams_may_be_left_out_and_other_benchmarks_need_weights(tmp_path, capsys):
    _, _, scores, val = upstream_files(tmp_path, classes=60)
    two = ["--J_Score", tmp_path / "J.pkl", "--HDB_Score", tmp_path / "HDB.pkl", "--val_sample", val]
    code, _, err = run([*two, "--benchmark", "NTU60XSub"], capsys)
    assert code == 2 and err.startswith("error: --benchmark NTU60XSub has no published weights: give --weights")
    code, out, _ = run([*two, "--benchmark", "NTU60XSub", "--weights", 0.3, 0.7], capsys)
    assert code == 0 and fused_numbers(out)[1] == round(upstream_top1([scores[0], scores[5]], (0.3, 0.7), val), 2)
    code, out, _ = run([*two, "--preset", "mmcl-ntu120-xsub-6s"], capsys)  # the preset's J and HDB weights
    assert code == 0 and fused_numbers(out)[0] == [2.361693262, 5.0]
    code, _, err = run([*two, "--benchmark", "NTU120XSub"], capsys)
    assert code == 2 and "60 classes, but --benchmark NTU120XSub has 120" in err
    code, _, err = run([*two, "--scores", tmp_path / "J.pkl"], capsys)
    assert code == 2 and "not both" in err
    (tmp_path / "short.txt").write_text("\n".join(val.read_text().split()[:-1]))
    code, _, err = run([*two[:4], "--val_sample", tmp_path / "short.txt", "--weights", 1, 1], capsys)
    assert code == 2 and "is not in" in err and "short.txt" in err


def test_nw_ucla_names_give_labels(tmp_path, capsys):
    actions = [1, 2, 3, 4, 5, 6, 8, 9, 11, 12]
    names = [f"a{actions[i % 10]:02d}_s{i // 10 + 1:02d}_e00_v03" for i in range(30)]
    labels = np.arange(30) % 10
    scores = np.eye(10, dtype=np.float32)[labels]
    scores[:3] = np.roll(scores[:3], 1, axis=1)  # three wrong
    (tmp_path / "J.pkl").write_bytes(pickle.dumps(dict(zip(names, scores))))
    (tmp_path / "val.txt").write_text("\n".join(names))
    code, out, _ = run(["--J_Score", tmp_path / "J.pkl", "--val_sample", tmp_path / "val.txt",
                        "--benchmark", "NWUCLA", "--weights", 1], capsys)
    assert code == 0 and fused_numbers(out)[1] == 90.0
