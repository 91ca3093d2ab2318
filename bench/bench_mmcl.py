"""What MMCL costs on top of the plain backbone: training-step time per RGB mode, and checkpoint sizes.

    python -m bench.bench_mmcl [--quick]

All rows run in one process, on the same batch (CPU, batch 16, T=64, V=25, M=2, K=120 by default):
  * baseline      CTR-GCN + cross-entropy
  * cached        MMCL with FAM + FRM on precomputed RGB (512-d) and text (512-d) features
  * online CLIP   MMCL with a frozen open_clip ViT-B-32 encoding the strips inside the step
  * Inception-V3  MMCL as the public code runs it: a trainable Inception-V3 on the strip resized to 299 px
Then the size of an MMCL training checkpoint (no frozen encoder inside) and of the skeleton-only export.
"""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

from engine.checkpoint import save_checkpoint, save_weights
from engine.objective import ClassificationObjective
from model.ctrgcn import Model
from model.mmcl import MMCLObjective
from model.rgb_encoder import FrozenClipImageEncoder, InceptionV3Encoder


def time_steps(objective: torch.nn.Module, batch: tuple, repeats: int, warmup: int = 1) -> float:
    """Median seconds of one training step (prepare inputs, forward, backward, SGD update)."""
    parameters = [p for p in objective.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(parameters, lr=0.01, momentum=0.9, nesterov=True)
    objective.train()
    data, label, *extras = batch
    times = []
    for i in range(warmup + repeats):
        start = time.perf_counter()
        inputs = objective.prepare_inputs(list(extras))
        _, losses = objective(data, label, *inputs)
        optimizer.zero_grad(set_to_none=True)
        sum(losses.values()).backward()
        optimizer.step()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def backbone(num_class: int) -> Model:
    torch.manual_seed(0)
    return Model(num_class=num_class, num_point=25, num_person=2, graph="graph.ntu_rgb_d.Graph")


def mmcl(num_class: int, rgb_dim: int, **encoders) -> MMCLObjective:
    net = backbone(num_class)
    return MMCLObjective(net, num_class, net.fc.in_features, rgb_dim=rgb_dim, text_dim=512, **encoders)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repeats, skip Inception-V3 (default: the full run)")
    parser.add_argument("--batch", type=int, default=16, help="batch size (default: %(default)s)")
    parser.add_argument("--classes", type=int, default=120, help="classes, K (default: %(default)s)")
    parser.add_argument("--panels", type=int, default=5, help="panels per RGB strip (default: %(default)s)")
    args = parser.parse_args(argv)
    repeats = 3 if args.quick else 7
    n, k = args.batch, args.classes
    torch.manual_seed(0)
    data, label = torch.randn(n, 3, 64, 25, 2), torch.randint(0, k, (n,))
    text = torch.randn(n, 512)

    rows = []
    base = time_steps(ClassificationObjective(backbone(k)), (data, label), repeats)
    rows.append(("baseline CTR-GCN", base))
    rows.append(("MMCL, cached RGB + text", time_steps(mmcl(k, 512), (data, label, torch.randn(n, 512), text), repeats)))

    clip = FrozenClipImageEncoder("ViT-B-32", pretrained=None, layout="strip")
    strips = torch.randn(n, 3, 224, 224)
    online = mmcl(k, clip.output_dim, frozen_rgb_encoder=clip)
    rows.append(("MMCL, online frozen ViT-B-32", time_steps(online, (data, label, strips, text), max(1, repeats // 2))))
    if not args.quick:
        inception = mmcl(k, 1000, trainable_rgb_encoder=InceptionV3Encoder())
        wide = torch.randn(n, 3, 299, 299 * args.panels)
        rows.append(("MMCL, trainable Inception-V3 (public)", time_steps(inception, (data, label, wide, text), 1)))

    print(f"training step, CPU, {torch.get_num_threads()} threads, batch {n}, T=64, V=25, M=2, K={k}")
    print(f"{'objective':40s} {'s/step':>8s} {'samples/s':>10s} {'vs baseline':>12s}")
    for name, seconds in rows:
        print(f"{name:40s} {seconds:8.3f} {n / seconds:10.1f} {seconds / base:11.2f}x")
    cached, clip_row = rows[1][1], rows[2][1]
    print(f"online CLIP / cached: {clip_row / cached:.2f}x" +
          (f"; Inception-V3 / cached: {rows[3][1] / cached:.2f}x" if len(rows) > 3 else ""))

    with tempfile.TemporaryDirectory() as tmp:
        objective = mmcl(k, 512)
        optimizer = torch.optim.SGD(objective.parameters(), lr=0.1, momentum=0.9)
        _, losses = objective(data, label, torch.randn(n, 512), text)
        sum(losses.values()).backward()
        optimizer.step()  # fills the momentum buffers, as in a real checkpoint
        save_checkpoint(Path(tmp) / "last.pt", {"model": objective.state_dict(), "optimizer": optimizer.state_dict()})
        save_weights(Path(tmp) / "skeleton.pt", objective.backbone)
        for name in ("last.pt", "skeleton.pt"):
            print(f"{name:12s} {(Path(tmp) / name).stat().st_size / 2**20:6.2f} MB")


if __name__ == "__main__":
    main()
