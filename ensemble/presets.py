"""Named ensemble weights (docs/method.md §8): the streams a preset expects, in order, and their weights."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Preset:
    """Weights of a published ensemble; ``streams`` names the score file each weight belongs to."""

    streams: tuple[str, ...]
    weights: tuple[float, ...]
    source: str


PRESETS = {
    "ctrgcn-4s": Preset(("J", "B", "JM", "BM"), (0.6, 0.6, 0.4, 0.4), "CTR-GCN 4-stream, every benchmark"),
    "mmcl-ntu120-xsub-6s": Preset(
        ("J", "B", "JM", "BM", "HDJ", "HDB"),
        (2.361693262051476, 4.35402786600752, 3.6038236890242237, 1.0158095311333564, 3.0574845840597544, 5.0),
        "MMCL 6-stream, NTU120 X-Sub",
    ),
}


@dataclass(frozen=True)
class Benchmark:
    """A ``--benchmark`` of the upstream ensemble script: its class count and published preset, if any."""

    num_class: int
    preset: str | None


#: The upstream script's benchmark names (and NW-UCLA); only NTU120 X-Sub has published weights.
BENCHMARKS = {
    "NTU120XSub": Benchmark(120, "mmcl-ntu120-xsub-6s"),
    "NTU120XSet": Benchmark(120, None),
    "NTU60XSub": Benchmark(60, None),
    "NTU60XView": Benchmark(60, None),
    "NWUCLA": Benchmark(10, None),
}

#: The upstream script's score options, in its order: ``--J_Score`` ... ``--HDB_Score``.
UPSTREAM_STREAMS = ("J", "B", "JM", "BM", "HDJ", "HDB")


def describe_presets() -> str:
    """One line per preset for ``--help``: name, streams with their weights, where the weights come from."""
    lines = ["presets (score files in this order):"]
    for name, preset in PRESETS.items():
        pairs = " ".join(f"{stream}={weight:g}" for stream, weight in zip(preset.streams, preset.weights))
        lines.append(f"  {name:20s} {pairs}  ({preset.source})")
    return "\n".join(lines)
