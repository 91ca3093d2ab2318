"""Temporal RGB strips: frame choice, boxes, crops and the batch command, on videos encoded here with PyAV."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
import scipy.io
import torch
from PIL import Image

from engine.errors import InputError
from feeders.prepared import write_meta, write_prepared_split
from tests.ntu_fixtures import Track, compose, sample_name, steady_track, write_skeleton
from tools import make_rgb_strips, prepare_ntu, prepare_utd_mhad
from tools.kinect_v1 import KINECT_V1_COLOUR_FOCAL, project_kinect_v1
from tools.rgb_sources import find_ucla_sources
from tools.rgb_strips import (
    DetectorBoxes,
    ProjectedBoxes,
    ShortVideo,
    SkeletonBoxes,
    colour_rows,
    crop_box,
    frame_files,
    load_person_detector,
    make_strip,
    selected_frames,
    uniform_indices,
    video_frame_count,
)

FRAMES, WIDTH, HEIGHT = 40, 320, 240
RED, BLUE, GREY = (220, 20, 20), (20, 20, 220), (128, 128, 128)
SIZE, PANELS = 32, 5


def write_video(path: Path, frames: np.ndarray) -> None:
    """Encode ``frames`` (T, H, W, 3) uint8 as an MPEG-4 AVI (the NTU container)."""
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=30)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.options = {"qscale": "2"}
        for image in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")))
        container.mux(stream.encode())


def rectangle(t: int, actor: int) -> tuple[int, int, int, int]:
    """Box (x0, y0, x1, y1) of an actor in frame ``t``: actor 0 moves right, actor 1 stays on the right."""
    if actor == 0:
        return 10 + 3 * t, 60, 70 + 3 * t, 160
    return 250, 100, 300, 200


def scene(actors: int) -> tuple[np.ndarray, np.ndarray]:
    """Frames of rectangles on grey, and colour joints (T, M=2, V=25, 2) spread inside each rectangle."""
    rng = np.random.default_rng(actors)
    frames = np.empty((FRAMES, HEIGHT, WIDTH, 3), np.uint8)
    frames[:] = GREY
    colour = np.zeros((FRAMES, 2, 25, 2), np.float32)
    for t in range(FRAMES):
        for actor, rgb in zip(range(actors), (RED, BLUE)):
            x0, y0, x1, y1 = rectangle(t, actor)
            frames[t, y0:y1, x0:x1] = rgb
            inside = rng.uniform([x0 + 2, y0 + 2], [x1 - 2, y1 - 2], size=(25, 2))
            inside[:2] = [[x0, y0], [x1 - 1, y1 - 1]]  # the joints reach the corners
            colour[t, actor] = inside
    return frames, colour


def fraction(panel: np.ndarray, rgb: tuple[int, int, int]) -> float:
    """Share of the pixels of ``panel`` within 60 of colour ``rgb`` on every channel."""
    return float((np.abs(panel.astype(int) - rgb) < 60).all(-1).mean())


def panels_of(path: Path) -> list[np.ndarray]:
    image = np.asarray(Image.open(path).convert("RGB"))
    assert image.shape == (SIZE, PANELS * SIZE, 3)
    return np.split(image, PANELS, axis=1)


@pytest.fixture(scope="module")
def ntu(tmp_path_factory) -> dict:
    """Videos and a prepared split: one actor, two actors, no colour joints, a corrupt video, a missing one,
    a truncated one."""
    root = tmp_path_factory.mktemp("strips")
    videos, prepared = root / "videos", root / "prepared"
    videos.mkdir()
    names = ["S001C001P001R001A001", "S001C001P002R001A050", "S001C001P003R001A002",
             "S001C001P004R001A003", "S001C001P005R001A004", "S001C001P006R001A005"]  # fmt: skip
    colours = []
    for name, actors in zip(names[:3], (1, 2, 1)):
        frames, colour = scene(actors)
        write_video(videos / f"{name}_rgb.avi", frames)
        colours.append(colour)
    colours[2][:] = 0  # no colour joints at all
    (videos / f"{names[3]}_rgb.avi").write_bytes(b"RIFF not really an avi" * 100)
    full = (videos / f"{names[0]}_rgb.avi").read_bytes()
    (videos / f"{names[5]}_rgb.avi").write_bytes(full[: len(full) * 3 // 4])
    colours += [colours[0]] * 3
    data = np.zeros((len(names), 3, FRAMES, 25, 2), np.float32)
    write_prepared_split(prepared, "train", data, np.zeros(len(names)), names, color=np.stack(colours))
    return {"videos": videos, "prepared": prepared, "names": names, "colour": colours}


def test_uniform_indices_are_segment_centres():
    assert uniform_indices(40, 5).tolist() == [4, 12, 20, 28, 36]
    assert uniform_indices(3, 5).tolist() == [0, 0, 1, 2, 2]
    with pytest.raises(ValueError):
        uniform_indices(0, 5)


def test_colour_rows_invert_the_proportional_frame_map():
    rows = np.arange(20)
    frames = np.rint(rows * 39 / 19).astype(int)  # row t of 20 valid rows shows frame round(t * 39 / 19)
    assert colour_rows(frames, 40, 20).tolist() == rows.tolist()
    assert colour_rows(np.array([0, 39]), 40, 1).tolist() == [0, 0]


def test_selected_frames_decodes_the_chosen_frames(tmp_path):
    levels = 30 + 5 * np.arange(FRAMES)
    frames = np.broadcast_to(levels[:, None, None, None], (FRAMES, 48, 64, 3)).astype(np.uint8)
    write_video(tmp_path / "v.avi", frames)
    with av.open(str(tmp_path / "v.avi")) as container:
        decoded = [frame.to_ndarray(format="rgb24") for frame in container.decode(video=0)]
    wanted = np.array([31, 0, 12, 12, 39])
    with av.open(str(tmp_path / "v.avi")) as container:
        got = list(selected_frames(container, wanted))
    assert [index for index, _ in got] == [0, 12, 12, 31, 39]
    for index, image in got:
        np.testing.assert_array_equal(image, decoded[index])
    with av.open(str(tmp_path / "v.avi")) as container, pytest.raises(ShortVideo) as short:
        list(selected_frames(container, np.array([38, 45])))  # a header promising more frames than there are
    assert short.value.decoded == FRAMES


def test_frame_count_without_a_header_count(tmp_path):
    frames = np.zeros((FRAMES, 48, 64, 3), np.uint8)
    frames[:, :, :32] = (30 + 5 * np.arange(FRAMES))[:, None, None, None]
    write_video(tmp_path / "v.mkv", frames)  # Matroska stores no frame count: the packets are counted
    with av.open(str(tmp_path / "v.mkv")) as container:
        assert container.streams.video[0].frames == 0
        assert video_frame_count(container) == FRAMES
        got = [(index, image[:, :32].mean()) for index, image in selected_frames(container, np.array([0, 39]))]
    assert [index for index, _ in got] == [0, 39]
    assert abs(got[0][1] - 30) < 3 and abs(got[1][1] - 225) < 6


def test_skeleton_boxes_use_the_nearest_row_with_a_body():
    colour = scene(1)[1][:10].copy()
    colour[4:7] = 0
    source = SkeletonBoxes(colour, frame_count=10)
    assert [source.row_for_frame(f) for f in range(10)] == [0, 1, 2, 3, 3, 3, 7, 7, 8, 9]
    x0, y0, x1, y1 = rectangle(3, 0)
    assert source.boxes(5, np.zeros((HEIGHT, WIDTH, 3), np.uint8)) == [(x0, y0, x1 - 1, y1 - 1)]
    empty = SkeletonBoxes(np.zeros_like(colour), frame_count=10)
    assert empty.empty and empty.boxes(3, np.zeros((HEIGHT, WIDTH, 3), np.uint8)) == []


def test_skeleton_boxes_map_rows_by_proportion():
    colour = scene(1)[1][:20]  # 20 rows for a 40-frame video: frame 39 is row 19
    source = SkeletonBoxes(np.concatenate([colour, np.zeros_like(colour)]), frame_count=40)
    assert source.valid_rows == 20
    assert source.row_for_frame(39) == 19 and source.row_for_frame(20) == 10


def test_crop_box_unites_grows_and_clips():
    assert crop_box([(100, 50, 200, 150), (150, 100, 250, 130)], 320, 240, 0.1) == (85, 40, 265, 160)
    assert crop_box([(10, 10, 300, 230)], 320, 240, 0.1) == (0, 0, 320, 240)
    assert crop_box([], 320, 240, 0.1) is None
    assert crop_box([(400, 300, 500, 400)], 320, 240, 0.1) is None  # entirely outside the image


def test_strips_crop_the_people_and_resume(ntu, tmp_path):
    out = tmp_path / "strips"
    argv = ["--videos", str(ntu["videos"]), "--prepared", str(ntu["prepared"]), "--split", "train",
            "--out", str(out), "--panels", str(PANELS), "--size", str(SIZE), "--workers", "2"]  # fmt: skip
    assert make_rgb_strips.main(argv) == 0
    one, two, whole, corrupt, missing, truncated = ntu["names"]
    assert sorted(path.stem for path in out.glob("*.jpg")) == [one, two, whole, truncated]
    for panel in panels_of(out / f"{one}.jpg"):
        assert fraction(panel, RED) > 0.65  # the crop holds the moving figure
    for panel in panels_of(out / f"{two}.jpg"):  # the union box holds both actors
        assert fraction(panel, RED) > 0.08 and fraction(panel, BLUE) > 0.08
    for panel in panels_of(out / f"{whole}.jpg"):  # no colour joints: the whole frame, mostly grey
        assert fraction(panel, GREY) > 0.6
    log = (out / "strips_log.txt").read_text().splitlines()
    reasons = dict(line.split("\t") for line in log if not line.startswith("#"))
    assert set(reasons) == {whole, corrupt, missing, truncated}
    assert "cannot open video" in reasons[corrupt] and "whole frame" in reasons[whole]
    assert f"no {missing}_rgb.avi" in reasons[missing]
    assert reasons[truncated].startswith(f"header says {FRAMES} frames")
    decoded = int(reasons[truncated].split(", ")[1].split()[0])
    assert 1 < decoded < FRAMES
    for panel in panels_of(out / f"{truncated}.jpg"):  # 40 rows spread over 25 frames: the crops lag the figure
        assert fraction(panel, RED) > 0.1

    stamps = {path: path.stat().st_mtime_ns for path in out.glob("*.jpg")}
    summary = make_rgb_strips.make_strips([ntu["videos"]], ntu["prepared"], ["train"], out, PANELS, SIZE, workers=1)
    assert (summary.existing, summary.written, summary.failed) == (4, 0, 2)
    assert stamps == {path: path.stat().st_mtime_ns for path in out.glob("*.jpg")}
    assert not list(out.glob(".*tmp*"))


def test_strips_from_a_skeleton_file_through_prepare_ntu(tmp_path):
    """The whole path: a video of a moving figure and a .skeleton file whose colour joints follow it."""
    frames, colour = scene(1)
    name = sample_name(performer=1, action=7)
    (tmp_path / "skeletons").mkdir()
    (tmp_path / "videos").mkdir()
    body = steady_track("72057594037931101", 0, FRAMES, swing=0.1)
    track = Track(body.body_id, 0, body.joints, colour[:, 0])  # steady joints, colour joints on the figure
    write_skeleton(tmp_path / "skeletons" / f"{name}.skeleton", compose(FRAMES, [track]))
    write_video(tmp_path / "videos" / f"{name}_rgb.avi", frames)
    (tmp_path / "missing.txt").write_text("")
    prepare_ntu.prepare([tmp_path / "skeletons"], tmp_path / "missing.txt", "ntu60", tmp_path / "ntu60", ["xsub"])
    summary = make_rgb_strips.make_strips(
        [tmp_path / "videos"], tmp_path / "ntu60" / "xsub", ["train"], tmp_path / "strips", PANELS, SIZE, workers=1
    )
    assert (summary.samples, summary.written, summary.log) == (1, 1, [])
    for panel in panels_of(tmp_path / "strips" / f"{name}.jpg"):
        assert fraction(panel, RED) > 0.65


def test_strip_panels_follow_time(ntu):
    video = ntu["videos"] / f"{ntu['names'][0]}_rgb.avi"
    strip = make_strip(video, lambda count: SkeletonBoxes(ntu["colour"][0], count), panels=4, size=16, margin=0.0)
    assert strip.image.shape == (16, 64, 3)
    assert (strip.frame_count, strip.whole_frames, strip.header_frames) == (FRAMES, 0, None)
    wide = make_strip(video, lambda count: SkeletonBoxes(np.zeros((1, 1, 25, 2)), count), panels=4, size=40)
    assert wide.whole_frames == 4
    # whole frames at the segment centres 5, 15, 25, 35: the red figure's centre column moves right
    centres = [
        np.flatnonzero(((panel[..., 0] > 150) & (panel[..., 1] < 80)).any(0)).mean()
        for panel in np.split(wide.image, 4, axis=1)
    ]
    expected = [(40 + 3 * t) * 40 / WIDTH for t in uniform_indices(FRAMES, 4)]
    np.testing.assert_allclose(centres, expected, atol=1.5)


def test_bad_arguments_are_one_line_errors(ntu, tmp_path, capsys):
    base = ["--videos", str(ntu["videos"]), "--prepared", str(ntu["prepared"]), "--out", str(tmp_path / "o")]
    assert make_rgb_strips.main([*base, "--split", "train", "--panels", "0"]) == 2
    assert make_rgb_strips.main([*base, "--split", "val"]) == 2
    errors = capsys.readouterr().err.splitlines()
    assert errors[0] == "error: --panels must be at least 1, got 0"
    assert errors[1].startswith("error: ") and "val_names.txt" in errors[1]
    with pytest.raises(InputError, match="not a directory"):
        make_rgb_strips.make_strips([tmp_path / "nowhere"], ntu["prepared"], ["train"], tmp_path / "o")
    no_colour = tmp_path / "plain"
    write_prepared_split(no_colour, "train", np.zeros((1, 3, 4, 25, 2)), [0], [ntu["names"][0]])
    with pytest.raises(InputError, match="train_color.npy.*--detector-weights"):
        make_rgb_strips.make_strips([ntu["videos"]], no_colour, ["train"], tmp_path / "o")
    assert not (tmp_path / "o").exists()


def test_detector_boxes_with_local_random_weights(tmp_path):
    from torchvision.models.detection import fasterrcnn_resnet50_fpn

    torch.manual_seed(0)
    weights = tmp_path / "detector.pt"
    torch.save(fasterrcnn_resnet50_fpn(weights=None, weights_backbone=None).state_dict(), weights)
    source = DetectorBoxes(load_person_detector(weights, min_size=96), score_threshold=0.0)
    boxes = source.boxes(0, np.full((64, 80, 3), 128, np.uint8))
    assert len(boxes) <= 2 and all(len(box) == 4 and 0 <= box[0] <= box[2] <= 80 for box in boxes)
    (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match="bad.pt"):
        load_person_detector(tmp_path / "bad.pt")


# ------------------------------------------------------------------------------------------- NW-UCLA
UCLA_FRAMES, UCLA_WIDTH, UCLA_HEIGHT, DEPTH = 24, 160, 120, 3.0
GREEN = (20, 200, 20)


def ucla_rectangle(t: int) -> tuple[int, int, int, int]:
    return 10 + 3 * t, 30, 50 + 3 * t, 100


def back_project(pixels: np.ndarray, width: int = UCLA_WIDTH, height: int = UCLA_HEIGHT) -> np.ndarray:
    """Camera-space joints at depth ``DEPTH`` that ``project_kinect_v1`` sends to ``pixels`` (..., 2) of a
    ``width`` × ``height`` frame."""
    u, v = pixels[..., 0] / width, pixels[..., 1] / height
    scale = DEPTH / KINECT_V1_COLOUR_FOCAL
    return np.stack([(u - 0.5) * 640 * scale, (0.5 - v) * 480 * scale, np.full_like(u, DEPTH)], -1)


def ucla_scene() -> tuple[np.ndarray, np.ndarray]:
    """Frames of a red figure moving right, and its 3D joints (T, M=1, V=20, 3) spread inside it."""
    rng = np.random.default_rng(5)
    frames = np.full((UCLA_FRAMES, UCLA_HEIGHT, UCLA_WIDTH, 3), GREY, np.uint8)
    pixels = np.zeros((UCLA_FRAMES, 1, 20, 2))
    for t in range(UCLA_FRAMES):
        x0, y0, x1, y1 = ucla_rectangle(t)
        frames[t, y0:y1, x0:x1] = RED
        pixels[t, 0] = rng.uniform([x0 + 1, y0 + 1], [x1 - 1, y1 - 1], size=(20, 2))
        pixels[t, 0, :2] = [[x0, y0], [x1 - 1, y1 - 1]]
    return frames, back_project(pixels)


def write_frame_folder(folder: Path, frames: np.ndarray) -> None:
    """The NW-UCLA release's layout: unpadded frame numbers, and depth images beside the colour frames."""
    folder.mkdir(parents=True)
    for k, image in enumerate(frames):
        Image.fromarray(image).save(folder / f"frame_{k}_tc_{90467319 + 33 * k}_rgb.jpg", quality=95)
        Image.fromarray(np.full_like(image, GREEN)).save(folder / f"frame_{k}_tc_{90467351 + 33 * k}_depth_vis.jpg")
        (folder / f"frame_{k}_tc_{90467351 + 33 * k}_skeletons.txt").write_text("20\n")


@pytest.fixture(scope="module")
def ucla(tmp_path_factory) -> dict:
    """A prepared NW-UCLA test split and its colour data: a frame folder, a nested video, a sample without
    joints, a sample without any colour source."""
    root = tmp_path_factory.mktemp("ucla")
    frames, joints = ucla_scene()
    release = root / "multiview_action"
    write_frame_folder(release / "view_3" / "a01_s01_e00", frames)
    write_frame_folder(release / "view_3" / "a02_s03_e01", frames)  # joints all zero: whole frames
    (root / "videos" / "a04").mkdir(parents=True)
    write_video(root / "videos" / "a04" / "a04_s02_e02_v03.avi", frames)
    names = ["a01_s01_e00_v03", "a02_s03_e01_v03", "a04_s02_e02_v03", "a05_s01_e00_v03"]
    data = np.zeros((len(names), 3, UCLA_FRAMES, 20, 1), np.float32)
    data[[0, 2, 3]] = joints.transpose(3, 0, 2, 1)
    prepared = root / "prepared"
    write_prepared_split(prepared, "test", data, [0, 1, 3, 4], names)
    write_meta(prepared, "ucla", 10, "ucla", {"test": len(names)})
    return {"sources": [release, root / "videos"], "prepared": prepared, "names": names, "joints": joints}


def test_kinect_v1_projection():
    joints = np.array([[0.0, 0.0, 2.0], [0.5, 0.25, 2.0], [0.0, 0.0, 0.0], [0.3, 0.1, -1.0]])
    expected = [[0.5, 0.5], [0.5 + 531.15 * 0.5 / 1280, 0.5 - 531.15 * 0.25 / 960], [0, 0], [0, 0]]
    np.testing.assert_allclose(project_kinect_v1(joints), expected, rtol=1e-6)
    frames, joints = ucla_scene()
    source = ProjectedBoxes(joints, frame_count=UCLA_FRAMES)
    (box,) = source.boxes(7, frames[7])
    np.testing.assert_allclose(box, np.add(ucla_rectangle(7), (0, 0, -1, -1)), atol=1e-3)


def test_ucla_sources_follow_the_release_naming(ucla):
    found = find_ucla_sources(ucla["sources"])
    release, videos = ucla["sources"]
    assert found == {
        "a01_s01_e00_v03": release / "view_3" / "a01_s01_e00",
        "a02_s03_e01_v03": release / "view_3" / "a02_s03_e01",
        "a04_s02_e02_v03": videos / "a04" / "a04_s02_e02_v03.avi",
    }
    ordered = frame_files(release / "view_3" / "a01_s01_e00")
    assert [path.name.split("_")[1] for path in ordered] == [str(k) for k in range(UCLA_FRAMES)]


def test_ucla_strips_crop_the_projected_skeleton(ucla, tmp_path):
    out = tmp_path / "strips"
    argv = ["--videos", *map(str, ucla["sources"]), "--prepared", str(ucla["prepared"]), "--split", "test",
            "--out", str(out), "--panels", str(PANELS), "--size", str(SIZE), "--workers", "1"]  # fmt: skip
    assert make_rgb_strips.main(argv) == 0
    folder, no_joints, video, missing = ucla["names"]
    assert sorted(path.stem for path in out.glob("*.jpg")) == [folder, no_joints, video]
    for name in (folder, video):  # the crop holds the figure in every panel: frames are in time order
        for panel in panels_of(out / f"{name}.jpg"):
            assert fraction(panel, RED) > 0.65 and fraction(panel, GREEN) == 0
    for panel in panels_of(out / f"{no_joints}.jpg"):
        assert fraction(panel, GREY) > 0.6
    reasons = dict(line.split("\t") for line in (out / "strips_log.txt").read_text().splitlines() if "\t" in line)
    assert set(reasons) == {no_joints, missing}
    assert "whole frame" in reasons[no_joints]
    assert reasons[missing].startswith("no view_<V>/a05_s01_e00 frame folder or a05_s01_e00_v03.<video>")


def test_ucla_frame_folder_errors(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="empty: no \\*_rgb.jpg frame"):
        make_strip(tmp_path / "empty", lambda count: SkeletonBoxes(np.zeros((1, 1, 20, 2)), count))
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "frame_0_tc_1_rgb.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(InputError, match="frame_0_tc_1_rgb.jpg: cannot read the frame"):
        make_strip(tmp_path / "broken", lambda count: SkeletonBoxes(np.zeros((1, 1, 20, 2)), count))


# ------------------------------------------------------------------------------------------ UTD-MHAD
def test_utd_mhad_strips_from_the_projected_skeleton(tmp_path):
    """A UTD-MHAD zero-shot set: its 640 × 480 ``_color.avi`` video cropped with the projected joints."""
    frames = np.full((FRAMES, 480, 640, 3), GREY, np.uint8)
    pixels = np.zeros((FRAMES, 20, 2))
    rng = np.random.default_rng(7)
    for t in range(FRAMES):
        x0, y0, x1, y1 = 100 + 6 * t, 120, 260 + 6 * t, 420
        frames[t, y0:y1, x0:x1] = RED
        pixels[t] = rng.uniform([x0 + 2, y0 + 2], [x1 - 2, y1 - 2], size=(20, 2))
    (tmp_path / "Skeleton").mkdir()
    (tmp_path / "RGB").mkdir()
    joints = back_project(pixels, 640, 480)  # (T, 20, 3), UTD joint order
    scipy.io.savemat(tmp_path / "Skeleton" / "a3_s1_t1_skeleton.mat", {"d_skel": joints.transpose(1, 2, 0)})
    write_video(tmp_path / "RGB" / "a3_s1_t1_color.avi", frames)
    prepare_utd_mhad.prepare(tmp_path / "Skeleton", tmp_path / "utd", zero_shot=True)
    colour = np.load(tmp_path / "utd" / "test_color.npy")
    assert colour.shape == (1, FRAMES, 2, 25, 2) and not colour[:, :, 1].any()
    np.testing.assert_allclose(colour[0, :, 0, 3], pixels[:, 0], atol=1e-3)  # NTU joint 4 = UTD head (joint 1)

    summary = make_rgb_strips.make_strips([tmp_path / "RGB"], tmp_path / "utd", ["test"], tmp_path / "strips",
                                          PANELS, SIZE, workers=1)  # fmt: skip
    assert (summary.written, summary.log) == (1, [])
    for panel in panels_of(tmp_path / "strips" / "a3_s1_t1.jpg"):
        assert fraction(panel, RED) > 0.65
