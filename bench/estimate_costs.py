"""GPU cost of each step of the two MMCL set-ups, estimated from FLOPs (no GPU here: an estimate, not a timing).

    python -m bench.estimate_costs [--strip 224x1120] [--rate 40 80] [--fp32-rate 10 19.5]

FLOPs per sample are counted by ``torch.utils.flop_counter`` (a multiply-add = 2 FLOPs), forward plus backward
for what trains:

* the skeleton backbone's training step (CTR-GCN for J/B/JM/BM, HD-GCN for HDJ/HDB) at NTU size, and its
  evaluation, counted on a real sample on the CPU;
* the released code's online RGB encoder: torchvision's Inception-V3 (auxiliary head included, as the public
  model builds it) trained on the strip resized to shorter side 299, counted on the meta device;
* this project's default instead encodes each strip once, before training: the frozen open_clip ViT-B/32 on the
  5 panels (224 px);
* the FRM input, once per strip either way: BLIP's ViT-B/16 vision tower at 480 px (its question encoder and
  the 3-beam answer of at most 10 tokens add a few per cent, left out).

Times divide FLOPs by an effective throughput range (``--rate``, TFLOP/s): 40–80 is 25–50 % of an A100's dense
TF32 peak (156), which cuDNN's convolutions use by default; GCN layers, with their small channel counts, reach
less, so the backbone's real time is longer than its figure here. BLIP runs in float32 as the public script ran
it, and PyTorch's matrix products do not use TF32 by default: ``--fp32-rate`` (10–19.5, 50–100 % of the A100's
float32 peak) applies to it. The per-sample cost of reading and resizing
a strip on the CPU (online mode only) is measured here, on this machine.
"""
from __future__ import annotations

import argparse
import io
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch
from PIL import Image
from torch.utils.flop_counter import FlopCounterMode

from model.ctrgcn import Model as CTRGCN
from model.hdgcn import Model as HDGCN
from model.rgb_encoder import InceptionV3Encoder

#: Training samples per epoch, test samples, and epochs of the CTR-GCN (J, B, JM, BM) and HD-GCN (HDJ, HDB) streams.
BENCHMARKS = {
    "NTU60 X-Sub": (40_091, 16_487, 110, 90),
    "NTU60 X-View": (37_646, 18_932, 110, 90),
    "NTU120 X-Sub": (63_026, 50_919, 110, 90),
    "NTU120 X-Set": (54_468, 59_477, 110, 90),
    "NW-UCLA": (5 * 1_020, 464, 65, 65),
}
PANELS = 5


def counted(run: Callable[[], object]) -> float:
    """FLOPs of ``run()``."""
    with FlopCounterMode(display=False) as counter:
        run()
    return float(counter.get_total_flops())


def backbone_flops(model: torch.nn.Module) -> tuple[float, float]:
    """(training step, evaluation) FLOPs per sample of ``model`` on one NTU-size sample (T 64, V 25, M 2)."""
    sample = torch.randn(2, 3, 64, 25, 2)
    model.train()
    train = counted(lambda: model(sample).sum().backward()) / 2
    model.eval()
    with torch.no_grad():
        evaluate = counted(lambda: model(sample)) / 2
    return train, evaluate


def inception_train_flops(height: int, width: int) -> float:
    """FLOPs of one training step of torchvision's Inception-V3 (with its auxiliary head) on a strip of
    ``height`` × ``width`` resized to shorter side 299, on the meta device."""
    from torchvision.models import inception_v3

    scale = 299 / min(height, width)
    with torch.device("meta"):
        net = inception_v3(weights=None, aux_logits=True, init_weights=False)
        images = torch.zeros(2, 3, round(height * scale), round(width * scale))  # training BN needs 2
    net.train()
    return counted(lambda: net(images).logits.sum().backward()) / 2


def clip_panels_flops() -> float:
    """FLOPs of the frozen open_clip ViT-B/32 image tower on the 5 panels of one strip."""
    import open_clip

    tower = open_clip.create_model("ViT-B-32", pretrained=None, device="meta").visual
    return counted(lambda: tower(torch.zeros(PANELS, 3, 224, 224, device="meta")))


def blip_vision_flops() -> float:
    """FLOPs of BLIP's ViT-B/16 vision tower on one strip squashed to 480 × 480."""
    from transformers import BlipVisionConfig, BlipVisionModel

    with torch.device("meta"):
        tower = BlipVisionModel(BlipVisionConfig(image_size=480))
    return counted(lambda: tower(pixel_values=torch.zeros(1, 3, 480, 480, device="meta")))


def strip_loading_ms(height: int, width: int, repeats: int = 30) -> float:
    """Median milliseconds to decode one JPEG strip and make its Inception-V3 input on one thread, as a DataLoader
    worker does (the caller's thread count is restored)."""
    rng = np.random.default_rng(0)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).save(buffer, "JPEG", quality=90)
    threads, times = torch.get_num_threads(), []
    torch.set_num_threads(1)
    try:
        for _ in range(repeats):
            start = time.perf_counter()
            with Image.open(io.BytesIO(buffer.getvalue())) as strip:
                InceptionV3Encoder.preprocess(strip)
            times.append(time.perf_counter() - start)
    finally:
        torch.set_num_threads(threads)
    return 1e3 * statistics.median(times)


def minutes(flops: float, rate: float) -> float:
    return flops / (rate * 1e12) / 60


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--strip", default="224x1120",
                        help="strip height x width in pixels (default: %(default)s, 5 panels of 224 as "
                             "tools.make_rgb_strips makes them)")
    parser.add_argument("--rate", nargs=2, type=float, default=(40.0, 80.0), metavar=("LOW", "HIGH"),
                        help="effective TFLOP/s range of one GPU (default: 40 80, an A100 at 25-50%% of TF32 peak)")
    parser.add_argument("--fp32-rate", nargs=2, type=float, default=(10.0, 19.5), metavar=("LOW", "HIGH"),
                        help="the same for BLIP's float32 matrix products (default: 10 19.5, an A100 at 50-100%% "
                             "of its float32 peak)")
    args = parser.parse_args(argv)
    height, width = (int(part) for part in args.strip.lower().split("x"))
    low, high = args.rate
    ctr_train, ctr_eval = backbone_flops(CTRGCN(num_class=120, graph="graph.ntu_rgb_d.Graph"))
    hd_train, hd_eval = backbone_flops(HDGCN(num_class=120))
    inception = inception_train_flops(height, width)
    clip, blip = clip_panels_flops(), blip_vision_flops()
    loading = strip_loading_ms(height, width)
    print(f"GFLOPs per sample: CTR-GCN training step {ctr_train / 1e9:.1f}, evaluation {ctr_eval / 1e9:.2f}; "
          f"HD-GCN {hd_train / 1e9:.1f}, {hd_eval / 1e9:.2f}; Inception-V3 training step on a {height}x{width} strip "
          f"{inception / 1e9:.1f} ({inception / ctr_train:.0f}x CTR-GCN's); once per strip: ViT-B/32 on "
          f"{PANELS} panels {clip / 1e9:.1f}, BLIP vision at 480 px {blip / 1e9:.1f}")
    print(f"strip read + resize for Inception-V3 on this CPU: {loading:.1f} ms per sample per core")
    print(f"\nOne GPU at {low:g}-{high:g} TFLOP/s (BLIP: {args.fp32_rate[0]:g}-{args.fp32_rate[1]:g}); "
          "PFLOP = 1e15 FLOPs")
    print("| benchmark | backbone epoch, PFLOP (train + eval) | online Inception-V3 per epoch, PFLOP | its time per "
          "epoch | its time over the six streams (4 CTR-GCN + 2 HD-GCN schedules) "
          "| default instead: ViT-B/32 features, once | BLIP token ids, once "
          "| strip loading per epoch, CPU core-min |")
    print("|---|---|---|---|---|---|---|---|")
    for name, (train_n, test_n, ctr_epochs, hd_epochs) in BENCHMARKS.items():
        strips = train_n // (5 if name == "NW-UCLA" else 1)  # NW-UCLA's training set is repeated 5x an epoch
        extra = train_n * inception

        def span(flops: float, unit: float = 1.0, rates: tuple[float, float] = (low, high)) -> str:
            return f"{minutes(flops, rates[1]) / unit:.1f}-{minutes(flops, rates[0]) / unit:.1f}"

        epochs = 4 * ctr_epochs + 2 * hd_epochs
        print(f"| {name} | {(train_n * ctr_train + test_n * ctr_eval) / 1e15:.2f} | {extra / 1e15:.1f} "
              f"| {span(extra)} min | {span(epochs * extra, 60)} h ({epochs} epochs) | {span(strips * clip)} min "
              f"| {span(strips * blip, rates=args.fp32_rate)} min | {train_n * loading / 6e4:.0f} |")

if __name__ == "__main__":
    main()
