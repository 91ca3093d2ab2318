"""Synthetic multimodal demo dataset (docs/testbed.md): NTU-layout skeletons, temporal RGB
strips and VLM-style answers.

Every class is a motion program: a function of normalised time that drives a small kinematic body (pelvis
shift, trunk and head pitch, wrist and ankle targets reached by two-bone inverse kinematics) in the NTU
RGB+D 25-joint layout, y up, metres, about 3 m in front of a Kinect-like camera. Samples vary in body size,
speed, amplitude, phase, position, heading and length, carry Kinect-like joint noise, and are stored as the
NTU pipeline stores skeletons: centred on actor 1's middle of spine in the first frame, zero after the end,
the second person slot zero for one-person classes.

Two pairs of classes run the same program and differ in the skeleton only by the grip (a hand around an
object is closed: its tip joint folds towards the thumb) and by small differences that jitter hides, while
the rendered strip shows the held object and the answer says so: the setting in which co-learning with RGB
and text could teach a skeleton-only model to read the grip. In the ``incidental`` classes half of the
samples carry an object that has nothing to do with the action (closed grip, object in the strip and the
answer), so what the strips tell about the hand is not a function of the label. Output layout: see
``generate_demo_dataset``.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.errors import InputError
from engine.fileio import write_bytes_atomic, write_text_atomic
from feeders.class_names import CLASSES_FILE
from feeders.demo_actions import DEMO_CLASSES, OBJECT_PAIRS
from feeders.demo_body import (
    FLOORS,
    HAND,
    NOISE,
    NUM_JOINTS,
    NUM_PERSONS,
    SPINE_MID,
    WALLS,
    WRIST,
    performer_body,
    scene_joints,
)
from feeders.demo_render import CAMERA, OBJECT_STYLES, Backdrop, HeldObject, Look, encode_jpeg, render_strip
from feeders.prepared import write_meta, write_prepared_split

QUESTION = "Are the people holding objects?"
MANIFEST = "demo.json"
#: Bumped whenever the same arguments would generate other data (2: the object pairs' grip cue, a val split;
#: 3: incidental objects).
GENERATOR_VERSION = 3
#: Share of the samples of an ``incidental`` class whose actor carries an object unrelated to the action.
INCIDENTAL_SHARE = 0.5
MAX_PERFORMERS = 999

_ANSWERS: dict[str, tuple[str, ...]] = {
    "cup": ("Yes, the person is holding a cup.", "Yes, there is a red cup in the person's hand.",
            "Yes, they hold a cup up to the mouth."),
    "phone": ("Yes, the person is holding a phone.", "Yes, a green phone is held against the ear.",
              "Yes, the person has a mobile phone in hand."),
    "ball": ("Yes, the person is holding a ball.", "Yes, there is a blue ball in the person's hand.",
             "Yes, the person holds a ball, ready to throw it."),
    "one": ("No, the hands are empty.", "No, the person is not holding anything.",
            "No objects are visible in the person's hands."),
    "two": ("No, neither person is holding anything.", "No, both people have empty hands.",
            "No, the two people are not holding objects."),
}
_CARRIED = ("Yes, the person is holding a {}.", "Yes, there is a {} in the person's right hand.",
            "Yes, the person carries a {}.")


# ---------------------------------------------------------------- samples
@dataclass
class DemoSample:
    """One generated sample: the stored arrays and answer, plus what the renderer needs."""

    name: str
    label: int
    data: np.ndarray  # (3, max_frames, 25, 2) float32, centred, zero-padded
    color: np.ndarray  # (max_frames, 2, 25, 2) float32 pixel coordinates, 0 where absent
    answer: str
    held: str | None  # the object in actor 1's right hand
    joints: np.ndarray  # (L, P, 25, 3) clean camera-space joints of the P people present
    looks: list[Look]
    objects: list[HeldObject]
    backdrop: Backdrop


def sample_name(performer: int, label: int) -> str:
    """NTU-style name ``S001C001PpppR001Aaaa`` (action id = label + 1)."""
    return f"S001C001P{performer:03d}R001A{label + 1:03d}"



def make_sample(seed: int, split_id: int, label: int, index: int, performer: int, max_frames: int) -> DemoSample:
    """Generate the ``index``-th sample of class ``label`` in a split, deterministically from the arguments."""
    spec = DEMO_CLASSES[label]
    rng = np.random.default_rng([seed, 2, split_id, label, index])
    bodies = [performer_body(seed, performer + 1000 * person) for person in range(spec.persons)]
    length = int(rng.integers(max(2, round(0.4 * max_frames)), max_frames + 1))
    start, end = rng.uniform(0.0, 0.12), rng.uniform(0.88, 1.0)
    timeline = np.clip((np.linspace(0.0, 1.0, length) - start) / (end - start), 0.0, 1.0)
    tau = timeline ** np.exp(rng.uniform(-0.25, 0.25))
    actors = spec.program(tau, bodies, rng)
    held = spec.held
    if spec.incidental:  # a separate stream: the class's motion is the same whether or not it carries something
        carry = np.random.default_rng([seed, 3, split_id, label, index])
        if carry.uniform() < INCIDENTAL_SHARE:
            held = sorted(OBJECT_STYLES)[carry.integers(len(OBJECT_STYLES))]
            actors[0].grip[1] = carry.uniform(0.75, 1.0)

    heading = rng.uniform(-0.3, 0.3)
    floor = np.array([rng.uniform(-0.5, 0.5), -rng.uniform(0.8, 1.0), rng.uniform(2.9, 3.5) + 0.3 * (spec.persons - 1)])
    joints = scene_joints(actors, bodies, heading, floor)
    noisy = joints + rng.normal(0.0, 1.0, joints.shape) * NOISE[:, None]

    data = np.zeros((3, max_frames, NUM_JOINTS, NUM_PERSONS), dtype=np.float32)
    data[:, :length, :, : spec.persons] = (noisy - noisy[0, 0, SPINE_MID]).transpose(3, 0, 2, 1)
    color = np.zeros((max_frames, NUM_PERSONS, NUM_JOINTS, 2), dtype=np.float32)
    color[:length, : spec.persons] = CAMERA.project(noisy)
    objects = [HeldObject(held, 0, HAND[1], WRIST[1], actors[0].hold)] if held else []
    backdrop = Backdrop(
        wall=WALLS[rng.integers(len(WALLS))], floor=FLOORS[rng.integers(len(FLOORS))], camera_height=-floor[1]
    )
    answer_choice = rng.integers(len(_CARRIED))
    if held and not spec.held:
        answer = _CARRIED[answer_choice].format(held)
    else:
        answer = _ANSWERS[spec.held or ("one" if spec.persons == 1 else "two")][answer_choice]
    return DemoSample(
        name=sample_name(performer, label),
        label=label,
        data=data,
        color=color,
        answer=answer,
        held=held,
        joints=joints,
        looks=[body.look for body in bodies],
        objects=objects,
        backdrop=backdrop,
    )


def read_held_objects(root: str | os.PathLike, split: str) -> dict[str, str | None]:
    """The object in actor 1's right hand (None: empty) of each sample of a generated split, by name."""
    path = Path(root) / "answers" / f"{split}.jsonl"
    try:
        records = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        return {record["name"]: record["held"] for record in records}
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise InputError(f"{path}: not a demo answers file ({error})") from error


def render_sample(sample: DemoSample, strip_panels: int, panel_size: int) -> np.ndarray:
    """The temporal RGB strip of a sample, person boxes cropped from its stored pixel coordinates."""
    length, persons = sample.joints.shape[:2]
    return render_strip(
        sample.joints, sample.color[:length, :persons].astype(np.float64), sample.looks, sample.objects,
        sample.backdrop, strip_panels, panel_size,
    )


# ---------------------------------------------------------------- dataset
def _check_positive(**values: int) -> None:
    """Raise InputError naming the first argument that is not a positive integer."""
    for key, value in values.items():
        if not isinstance(value, (int, np.integer)) or value < 1:
            raise InputError(f"demo dataset: {key} must be a positive integer, got {value!r}")


def _prune_strips(rgb_dir: Path, keep: set[str]) -> None:
    """Remove demo strips (NTU-named jpgs) left in ``rgb_dir`` by an earlier generation."""
    if not rgb_dir.is_dir():
        return
    pattern = re.compile(r"S\d{3}C\d{3}P\d{3}R\d{3}A\d{3}\.jpg")
    for path in rgb_dir.iterdir():
        if pattern.fullmatch(path.name) and path.name not in keep:
            path.unlink()
    if not any(rgb_dir.iterdir()):
        rgb_dir.rmdir()


def generate_demo_dataset(
    root: str | os.PathLike,
    num_train_per_class: int = 60,
    num_test_per_class: int = 20,
    num_val_per_class: int = 20,
    max_frames: int = 100,
    seed: int = 0,
    with_rgb: bool = True,
    strip_panels: int = 5,
    panel_size: int = 96,
) -> dict:
    """Write the demo dataset to ``root`` and return its summary (also saved as ``demo.json``, written last).

    ``root`` receives our prepared skeleton format for splits ``train``, ``val`` (for choosing settings without
    touching the test set) and ``test`` (docs/data_format.md,
    with ``<split>_color.npy`` pixel coordinates and ``meta.json``), ``rgb/<name>.jpg`` temporal RGB strips
    (``strip_panels`` panels of ``panel_size`` pixels, unless ``with_rgb`` is false), ``answers/<split>.jsonl``
    (``{"name", "question", "answer", "held"}`` per line, in row order; ``held`` is the ground truth, the
    object in actor 1's right hand or null) and ``classes.txt``. Rows interleave the
    classes; performers are distinct per sample index and disjoint between the splits. Every file is
    written atomically and the same arguments give byte-identical files; ``demo.json`` is removed first and
    written last, so a folder that has it holds one whole generation (strips of earlier runs are pruned).
    """
    _check_positive(
        num_train_per_class=num_train_per_class, num_test_per_class=num_test_per_class,
        num_val_per_class=num_val_per_class, strip_panels=strip_panels,
    )
    if not isinstance(seed, int) or seed < 0:
        raise InputError(f"demo dataset: seed must be a non-negative integer, got {seed!r}")
    if not isinstance(max_frames, int) or max_frames < 10:
        raise InputError(f"demo dataset: max_frames must be an integer >= 10, got {max_frames!r}")
    if not isinstance(panel_size, int) or panel_size < 16:
        raise InputError(f"demo dataset: panel_size must be an integer >= 16, got {panel_size!r}")
    if num_train_per_class + num_test_per_class + num_val_per_class > MAX_PERFORMERS:
        raise InputError(
            f"demo dataset: num_train_per_class + num_test_per_class + num_val_per_class must be <= {MAX_PERFORMERS}"
            " (performer ids have 3 digits)"
        )
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / MANIFEST).unlink(missing_ok=True)
    # split: (random stream id, samples per class, first performer id)
    splits = {"train": (0, num_train_per_class, 1), "test": (1, num_test_per_class, num_train_per_class + 1),
              "val": (2, num_val_per_class, num_train_per_class + num_test_per_class + 1)}
    strips: set[str] = set()
    for split, (split_id, per_class, first_performer) in splits.items():
        samples = [
            make_sample(seed, split_id, label, index, first_performer + index, max_frames)
            for index in range(per_class)
            for label in range(len(DEMO_CLASSES))
        ]
        if with_rgb:
            for sample in samples:
                image = render_sample(sample, strip_panels, panel_size)
                write_bytes_atomic(root / "rgb" / f"{sample.name}.jpg", encode_jpeg(image))
                strips.add(f"{sample.name}.jpg")
        lines = [json.dumps({"name": s.name, "question": QUESTION, "answer": s.answer, "held": s.held}) + "\n"
                 for s in samples]
        write_text_atomic(root / "answers" / f"{split}.jsonl", "".join(lines))
        write_prepared_split(
            root, split, np.stack([s.data for s in samples]), [s.label for s in samples], [s.name for s in samples],
            color=np.stack([s.color for s in samples]),
        )
    _prune_strips(root / "rgb", strips)
    write_text_atomic(root / CLASSES_FILE, "".join(f"{spec.name}\n" for spec in DEMO_CLASSES))
    counts = {split: per_class * len(DEMO_CLASSES) for split, (_, per_class, _) in splits.items()}
    write_meta(root, "demo", len(DEMO_CLASSES), "ntu_rgb_d", counts)
    summary = {
        "version": GENERATOR_VERSION,
        "args": {
            "num_train_per_class": num_train_per_class, "num_test_per_class": num_test_per_class,
            "num_val_per_class": num_val_per_class, "max_frames": max_frames, "seed": seed, "with_rgb": with_rgb, "strip_panels": strip_panels,
            "panel_size": panel_size,
        },
        "classes": [spec.name for spec in DEMO_CLASSES],
        "held": {spec.name: spec.held for spec in DEMO_CLASSES if spec.held},
        "object_pairs": [list(pair) for pair in OBJECT_PAIRS],
        "question": QUESTION,
        "splits": counts,
    }
    write_text_atomic(root / MANIFEST, json.dumps(summary, indent=2) + "\n")
    return summary
