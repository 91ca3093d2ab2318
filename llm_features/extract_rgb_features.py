"""Encode every sample's temporal RGB strip with a frozen open_clip image tower into an RGB feature store.

    python -m llm_features.extract_rgb_features --images data/ntu120/rgb_strips \\
        --names data/ntu120/xsub/train_names.txt --model ViT-B-32 --pretrained openai \\
        --out data/ntu120/features/rgb_vitb32

``--pretrained`` is an open_clip tag (downloaded by open_clip on first use) or a local checkpoint file;
``--pretrained none`` keeps random weights (tests, the offline demo). Several ``--names`` files are merged
(duplicates once), so one store can serve every protocol of a dataset.

``--layout`` (default ``panels``, as the online encoder ``mmcl.rgb_encoder``) encodes each of the strip's
``--panels`` person crops at the tower's full input size and concatenates the features (ViT-B/32: 5 passes,
≈ 22 GFLOPs a strip, 2560-d); ``--layout strip`` squashes the strip into one input (1 pass, 512-d, each
person ~45 px wide), ``letterbox`` shrinks it whole and pads it. See ``model.rgb_encoder`` and
docs/rgb_strips.md. The store's ``meta.json`` records the encoder with its layout.
"""
from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from engine.data import worker_count
from engine.errors import InputError, command
from feeders.feature_store import write_feature_store
from feeders.multimodal import read_strip
from llm_features.names import read_names
from model.rgb_encoder import DEFAULT_LAYOUT, DEFAULT_PANELS, LAYOUTS, FrozenClipImageEncoder


class StripImages(Dataset):
    """``<folder>/<name>.jpg`` preprocessed by the encoder's transform."""

    def __init__(self, folder: Path, names: list[str], preprocess) -> None:
        self.folder, self.names, self.preprocess = folder, names, preprocess
        missing = [name for name in names if not (folder / f"{name}.jpg").is_file()]
        if missing:
            raise InputError(f"{folder}: {len(missing)} of {len(names)} strips missing, e.g. {', '.join(missing[:3])}")

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, index: int) -> torch.Tensor:
        return read_strip(self.folder / f"{self.names[index]}.jpg", self.preprocess)


def extract(encoder: FrozenClipImageEncoder, folder: Path, names: list[str], batch_size: int, workers: int,
            device: torch.device) -> np.ndarray:
    """(len(names), encoder.output_dim) float32 features, in ``names`` order."""
    workers = worker_count(workers, math.ceil(len(names) / batch_size))
    loader = DataLoader(StripImages(folder, names, encoder.preprocess), batch_size=batch_size, num_workers=workers)
    encoder.to(device)
    parts = [encoder(batch.to(device)).cpu().numpy() for batch in tqdm(loader, desc="rgb features", disable=None)]
    return np.concatenate(parts).astype(np.float32)


@command
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", required=True, help="folder of <name>.jpg strips")
    parser.add_argument("--names", required=True, nargs="+", help="names file(s), one sample name a line")
    parser.add_argument("--out", required=True, help="feature store folder to write")
    parser.add_argument("--model", default="ViT-B-32", help="open_clip model name (default: %(default)s)")
    parser.add_argument("--pretrained", default="openai",
                        help="open_clip tag, local checkpoint file, or 'none' (default: %(default)s)")
    parser.add_argument("--image-size", type=int, default=None,
                        help="override the encoder's input size (default: the model's own)")
    parser.add_argument("--layout", choices=tuple(LAYOUTS), default=DEFAULT_LAYOUT,
                        help="how a strip meets the encoder's square input: panels (each panel encoded, features "
                             "concatenated, panels x D wide), strip (squashed whole, D wide), letterbox (shrunk "
                             f"whole and padded, D wide); default {DEFAULT_LAYOUT}")
    parser.add_argument("--panels", type=int, default=DEFAULT_PANELS,
                        help=f"panels per strip, used by layout 'panels' (default {DEFAULT_PANELS})")
    parser.add_argument("--batch-size", type=int, default=64, help="strips per forward pass (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=2,
                        help="DataLoader processes reading the strips (default: %(default)s)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                        help="torch device (default: cuda when available, else cpu)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the random initialisation of --pretrained none (default: %(default)s)")
    parser.add_argument("--float16", action="store_true",
                        help="store features as float16, half the disk (default: float32)")
    args = parser.parse_args(argv)
    out = Path(args.out)
    if (out / "meta.json").exists():
        raise InputError(f"{out} already holds a feature store: choose another --out or delete it")
    pretrained = None if args.pretrained.lower() == "none" else args.pretrained
    torch.manual_seed(args.seed)
    encoder = FrozenClipImageEncoder(args.model, pretrained, args.image_size, args.layout, args.panels)
    names = read_names(args.names)
    features = extract(encoder, Path(args.images), names, args.batch_size, args.workers, torch.device(args.device))
    write_feature_store(out, features.astype(np.float16 if args.float16 else np.float32), names,
                        {"kind": "rgb", "encoder": encoder.spec, "images": str(args.images)})
    print(f"wrote {len(names)} x {features.shape[1]} RGB features (layout {args.layout}) to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
