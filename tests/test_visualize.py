"""tools.visualize: contact sheets of stick figures from prepared folders and NW-UCLA JSON."""
from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from engine.errors import InputError
from feeders.prepared import write_prepared_split
from tests.ntu_fixtures import STANDING
from tests.test_feeders import write_ucla
from tools import visualize


def two_people(frames: int = 30) -> np.ndarray:
    """(3, T, 25, 2): two standing people side by side, the second only in the first half, zero padding after."""
    sample = np.zeros((3, frames + 10, 25, 2), np.float32)
    for person, offset in enumerate((-0.5, 0.5)):
        joints = STANDING + np.array([offset, 0.0, 3.0])
        present = frames if person == 0 else frames // 2
        sample[:, :present, :, person] = joints.T[:, None, :]
    return sample


def colour_share(image: np.ndarray, colour: tuple[int, int, int]) -> float:
    return float((np.abs(image.astype(int) - colour) < 40).all(-1).mean())


def test_sheet_draws_each_person_in_its_colour(tmp_path):
    write_prepared_split(tmp_path / "data", "test", two_people()[None], [0], ["S001C001P001R001A050"])
    out = tmp_path / "sheet.png"
    argv = ["--data", str(tmp_path / "data"), "--name", "S001C001P001R001A050", "--frames", "4", "--size", "100",
            "--out", str(out)]  # fmt: skip
    assert visualize.main(argv) == 0
    image = np.asarray(Image.open(out).convert("RGB"))
    assert image.shape == (200, 400, 3)
    first, second = visualize.PERSON_COLOURS[:2]
    early, late = image[:, :200], image[:, 200:]  # frames 3, 11 | 18, 26 of the 30 valid ones
    assert colour_share(early, first) > 0.002 and colour_share(early, second) > 0.002
    assert colour_share(late, first) > 0.002 and colour_share(late, second) == 0  # the second person has left
    assert visualize.frame_indices(30, 4).tolist() == [3, 11, 18, 26]


def test_sheet_from_ucla_json_and_errors(tmp_path, capsys):
    samples = write_ucla(tmp_path / "ucla")
    name = min(name for name in samples if name.endswith("v03"))
    assert visualize.main(["--data", str(tmp_path / "ucla"), "--name", name, "--out", str(tmp_path / "u.png")]) == 0
    assert Image.open(tmp_path / "u.png").size == (8 * 160, 2 * 160)
    assert visualize.main(["--data", str(tmp_path / "ucla"), "--name", "nope", "--out", str(tmp_path / "x.png")]) == 2
    assert "has no sample 'nope'" in capsys.readouterr().err and not (tmp_path / "x.png").exists()
    with pytest.raises(InputError, match="no frame with a joint"):
        visualize.draw_sheet(np.zeros((3, 5, 25, 2)), "ntu_rgb_d", 4, 64)


@pytest.mark.slow
def test_gif_and_mp4_of_a_skeleton_file_with_the_models_top5(tmp_path, make_config):
    import torch

    from model.registry import build_backbone
    from tests.ntu_fixtures import realistic_frames, sample_name, write_skeleton

    skeleton = write_skeleton(tmp_path / f"{sample_name()}.skeleton", realistic_frames(np.random.default_rng(0), 24, 2))
    config = make_config(tmp_path)
    weights = tmp_path / "skeleton.pt"
    torch.save(build_backbone("ctrgcn", yaml_model_args(config)).state_dict(), weights)
    gif, mp4 = tmp_path / "a.gif", tmp_path / "a.mp4"
    argv = ["--skeleton", str(skeleton), "--gif", str(gif), "--mp4", str(mp4), "--size", "96",
            "--weights", str(weights), "--config", str(config)]  # fmt: skip
    assert visualize.main(argv) == 0
    with Image.open(gif) as image:
        assert image.n_frames == 24
        assert image.size == (2 * 96, 96 + 3 * visualize.CAPTION_LINE)  # front | side; top-5 of 3 classes: 3 lines
        frame = np.asarray(image.convert("RGB"))
    assert colour_share(frame, visualize.PERSON_COLOURS[0]) > 0.002
    assert colour_share(frame, visualize.PERSON_COLOURS[1]) > 0.002
    assert np.asarray(frame[96:], np.float64).var() > 10  # the caption is drawn
    assert mp4.stat().st_size > 1000


def test_gif_frame_count_follows_frames(tmp_path):
    write_prepared_split(tmp_path / "data", "test", two_people()[None], [0], ["S001C001P001R001A050"])
    gif = tmp_path / "b.gif"
    assert visualize.main(["--data", str(tmp_path / "data"), "--name", "S001C001P001R001A050", "--gif", str(gif),
                           "--frames", "6"]) == 0
    with Image.open(gif) as image:
        assert image.n_frames == 6 and image.size == (320, 160)


def yaml_model_args(config) -> dict:
    import yaml

    return yaml.safe_load(config.read_text())["model_args"]
