"""Every reader of an outside file, fed truncated and byte-flipped copies of a valid file (seeded, bounded):
each copy is read or refused with one ``InputError`` line naming the file; no traceback, no hang."""
from __future__ import annotations

import json
import pickle
import struct
import zlib
from pathlib import Path

import av
import numpy as np
import pytest
import scipy.io
import torch
import yaml
from PIL import Image

from engine.checkpoint import extract_state_dict, load_state, load_training_checkpoint, read_torch_file, save_checkpoint
from engine.config import resolve_config
from engine.errors import InputError
from ensemble.scores import read_scores
from feeders.feature_store import FeatureStore, write_feature_store
from feeders.multimodal import read_strip
from feeders.ntu import NTUFeeder
from feeders.prepared import split_paths, write_prepared_split
from feeders.ucla import read_json_folder
from llm_features.encode_answers import read_answers
from llm_features.prompt_run import answered_rows
from model.ctrgcn import Model
from model.rgb_encoder import load_inception_weights
from tests.fuzzing import fuzz_reader
from tests.ntu_fixtures import realistic_frames, sample_name, skeleton_text
from tools.make_attribute_store import read_records
from tools.prepare_ntu import prepare_sample
from tools.prepare_pyskl import read_annotations
from tools.prepare_sysu import read_npy_skeleton, read_release_skeleton
from tools.prepare_utd_mhad import read_skeleton as read_utd_skeleton
from tools.rgb_strips import make_strip, read_frame


def _bytes_of(path: Path) -> bytes:
    return path.read_bytes()


def test_skeleton_files(tmp_path):
    valid = skeleton_text(realistic_frames(np.random.default_rng(0), 12, 2)).encode("ascii")
    fuzz_reader(tmp_path / f"{sample_name()}.skeleton", valid, prepare_sample, seed=1)


@pytest.mark.parametrize("compressed", [True, False])
def test_utd_mhad_mat_files(tmp_path, compressed):
    source = tmp_path / "source.mat"
    scipy.io.savemat(source, {"d_skel": np.random.default_rng(0).normal(size=(20, 3, 30))}, do_compression=compressed)
    fuzz_reader(tmp_path / "a1_s1_t1_skeleton.mat", _bytes_of(source), read_utd_skeleton, seed=2)


def test_sysu_mat_and_npy_files(tmp_path):
    source = tmp_path / "source.mat"
    scipy.io.savemat(source, {"SW": np.random.default_rng(0).normal(size=(20, 3, 30))}, do_compression=True)
    fuzz_reader(tmp_path / "sklWorld.mat", _bytes_of(source), read_release_skeleton, seed=3)
    np.save(tmp_path / "source.npy", np.random.default_rng(1).normal(size=(30, 20, 3)))
    fuzz_reader(tmp_path / "s01_a01.npy", _bytes_of(tmp_path / "source.npy"), read_npy_skeleton, seed=4)


def test_ucla_json_files(tmp_path):
    folder = tmp_path / "ucla"
    folder.mkdir()
    content = {"file_name": "a01_s01_e00_v01", "label": 1,
               "skeletons": np.round(np.random.default_rng(0).normal(size=(20, 20, 3)), 4).tolist()}
    fuzz_reader(folder / "a01_s01_e00_v01.json", json.dumps(content).encode(),
                lambda path: read_json_folder(folder, "train"), seed=5)


def _read_feeder(root: Path, split: str = "train") -> None:
    feeder = NTUFeeder(str(root), split, window_size=8, p_interval=[0.95])
    for index in range(len(feeder)):
        feeder[index]


@pytest.mark.parametrize("compressed", [True, False])
def test_ctrgcn_npz_files(tmp_path, compressed):
    rng = np.random.default_rng(0)
    arrays = {"x_train": rng.normal(size=(3, 10, 150)).astype(np.float32), "y_train": np.eye(4)[[0, 1, 3]]}
    (np.savez_compressed if compressed else np.savez)(tmp_path / "source.npz", **arrays)
    fuzz_reader(tmp_path / "NTU60_CS.npz", _bytes_of(tmp_path / "source.npz"), _read_feeder, seed=6)


@pytest.mark.parametrize("member", ["data", "label", "names", "meta"])
def test_prepared_folders(tmp_path, member):
    root = tmp_path / "prepared"
    rng = np.random.default_rng(0)
    write_prepared_split(root, "train", rng.normal(size=(3, 3, 10, 25, 2)).astype(np.float32), [0, 1, 2],
                         ["S001C001P001R001A001", "S001C001P001R001A002", "S001C001P001R001A003"])
    (root / "meta.json").write_text(json.dumps({"num_class": 3, "graph": "ntu_rgb_d", "dataset": "ntu60-xsub"}))
    target = root / "meta.json" if member == "meta" else split_paths(root, "train")[member]
    fuzz_reader(target, _bytes_of(target), lambda path: _read_feeder(root), seed=7)


def test_pyskl_annotation_pickles(tmp_path):
    rng = np.random.default_rng(0)
    entries = [{"frame_dir": f"S001C001P001R001A00{i}", "label": i, "total_frames": 6,
                "keypoint": rng.normal(size=(1, 6, 25, 3)).astype(np.float32)} for i in range(1, 4)]
    content = {"split": {"xsub_train": [e["frame_dir"] for e in entries]}, "annotations": entries}
    fuzz_reader(tmp_path / "ntu60_3danno.pkl", pickle.dumps(content, protocol=4), read_annotations, seed=8)


@pytest.mark.parametrize("suffix", [".pkl", ".npz"])
def test_score_files(tmp_path, suffix):
    names = [f"S001C001P001R001A00{i}" for i in range(1, 5)]
    scores = np.random.default_rng(0).normal(size=(4, 6)).astype(np.float32)
    if suffix == ".pkl":
        valid = pickle.dumps(dict(zip(names, scores)), protocol=4)
    else:
        np.savez(tmp_path / "source.npz", names=np.asarray(names), scores=scores, labels=np.arange(4))
        valid = _bytes_of(tmp_path / "source.npz")
    fuzz_reader(tmp_path / f"epoch1_test_score{suffix}", valid, read_scores, seed=9)


@pytest.mark.parametrize("member", ["features.npy", "names.txt", "meta.json"])
def test_feature_stores(tmp_path, member):
    root = tmp_path / "text"
    write_feature_store(root, np.random.default_rng(0).normal(size=(4, 8)).astype(np.float32),
                        ["a", "b", "c", "d"], {"kind": "text"})

    def read(path: Path) -> None:
        store = FeatureStore(root, "text")
        store.check_dim(8)
        for row in store.rows_for(["a", "b", "c", "d"]):
            store.row(row)

    fuzz_reader(root / member, _bytes_of(root / member), read, seed=10)


def test_answers_files(tmp_path):
    rows = [{"name": name, "question": "describe-person", "answer": f"a person {name}"} for name in "abcd"]
    valid = "".join(json.dumps(row) + "\n" for row in rows).encode()
    fuzz_reader(tmp_path / "answers.jsonl", valid, read_answers, seed=11)
    fuzz_reader(tmp_path / "answers.jsonl", valid, lambda path: answered_rows(path, "describe-person"), seed=12)


def test_attribute_records_files(tmp_path):
    rows = [{"name": name, "held": [None, "cup", 3, True][i]} for i, name in enumerate("abcd")]
    valid = "".join(json.dumps(row) + "\n" for row in rows).encode()
    fuzz_reader(tmp_path / "records.jsonl", valid, lambda path: read_records(path, "held", "none"), seed=16)


def test_yaml_configs(tmp_path):
    config = {"work_dir": "./work_dir/x", "feeder": "ntu", "base_lr": 0.1, "step": [35, 55], "num_epoch": 65,
              "train_feeder_args": {"data_path": "data/ntu", "split": "train", "window_size": 64},
              "model_args": {"num_class": 60, "graph": "graph.ntu_rgb_d.Graph"}}
    valid = yaml.safe_dump(config).encode()
    fuzz_reader(tmp_path / "joint.yaml", valid, lambda path: resolve_config(["--config", str(path)]), seed=13)


def test_checkpoints(tmp_path):
    model = Model(num_class=3, num_point=25, num_person=2, graph="graph.ntu_rgb_d.Graph", base_channel=8)
    save_checkpoint(tmp_path / "source.pt", {"model": {f"backbone.{k}": v for k, v in model.state_dict().items()},
                                              "epoch": 1})

    def read(path: Path) -> None:
        content = read_torch_file(path)
        load_state(model, extract_state_dict(content, path), path)
        load_training_checkpoint(path)

    fuzz_reader(tmp_path / "last.pt", _bytes_of(tmp_path / "source.pt"), read, seed=14, truncations=16, flips=16)


def test_inception_weights_files(tmp_path):
    """The reader of torchvision's Inception-V3 weights file, on a small network's weights (the check is the same)."""
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    torch.save(net.state_dict(), tmp_path / "source.pth")
    fuzz_reader(tmp_path / "inception.pth", _bytes_of(tmp_path / "source.pth"),
                lambda path: load_inception_weights(net, str(path)), seed=15, truncations=16, flips=16)


def test_images(tmp_path):
    image = Image.fromarray(np.random.default_rng(0).integers(0, 256, (24, 60, 3), dtype=np.uint8))
    image.save(tmp_path / "source.jpg", quality=90)
    valid = _bytes_of(tmp_path / "source.jpg")
    fuzz_reader(tmp_path / "S001C001P001R001A001.jpg", valid, lambda path: read_strip(path, np.asarray), seed=15)
    fuzz_reader(tmp_path / "frame_1_tc_1_rgb.jpg", valid, read_frame, seed=16)


def test_an_image_header_claiming_a_huge_size_is_refused(tmp_path):
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = chunk(b"IHDR", struct.pack(">IIBBBBB", 40000, 40000, 8, 2, 0, 0, 0))  # 1.6 gigapixels
    bomb = tmp_path / "frame_1_tc_1_rgb.png"
    bomb.write_bytes(b"\x89PNG\r\n\x1a\n" + header + chunk(b"IEND", b""))
    for read in (lambda path: read_strip(path, np.asarray), read_frame):
        with pytest.raises(InputError, match="could be decompression bomb"):
            read(bomb)


class _WholeFrames:
    def boxes(self, frame_index: int, image: np.ndarray) -> list:
        return []


def test_videos(tmp_path):
    source = tmp_path / "source.avi"
    with av.open(str(source), "w") as container:
        stream = container.add_stream("mpeg4", rate=30)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for t in range(12):
            frame = np.full((48, 64, 3), 20 * t, np.uint8)
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())
    fuzz_reader(tmp_path / "S001C001P001R001A001_rgb.avi", _bytes_of(source),
                lambda path: make_strip(path, lambda count: _WholeFrames(), panels=3, size=16), seed=17,
                truncations=16, flips=16)
