"""Where the colour video of each sample is: NTU ``_rgb.avi`` and UTD-MHAD ``_color.avi`` files, or the
NW-UCLA release.

Both finders return ``{sample name: path}`` with names as the skeleton tools write them; a path is a
video file or (NW-UCLA) a folder of ``*_rgb.jpg`` frames. When a name is found twice, the first folder
given wins, and within a folder the first in sorted order.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

from engine.errors import InputError

NTU_VIDEO_SUFFIX = "_rgb.avi"
UTD_VIDEO_SUFFIX = "_color.avi"
VIDEO_EXTENSIONS = frozenset({".avi", ".mp4", ".mkv", ".mov", ".mpg", ".mpeg", ".webm"})
#: NW-UCLA: ``view_<V>/aAA_sSS_eEE/`` frame folders (the release) and ``aAA_sSS_eEE_vVV`` sample names.
_UCLA_VIEW_FOLDER = re.compile(r"view_?(\d+)", re.IGNORECASE)
_UCLA_SAMPLE_FOLDER = re.compile(r"a\d+_s\d+_e\d+")
_UCLA_NAME = re.compile(r"a\d+_s\d+_e\d+_v\d+")


def find_suffixed_videos(folders: Sequence[str | os.PathLike], suffix: str) -> dict[str, Path]:
    """Every ``NAME<suffix>`` directly in ``folders`` (not recursive): NTU's ``_rgb.avi``, UTD-MHAD's ``_color.avi``."""
    videos: dict[str, Path] = {}
    for folder in _directories(folders, f"{suffix} videos"):
        for name in sorted(entry.name for entry in os.scandir(folder)):
            if name.endswith(suffix):
                videos.setdefault(name[: -len(suffix)], folder / name)
    return videos


def find_ucla_sources(folders: Sequence[str | os.PathLike]) -> dict[str, Path]:
    """NW-UCLA colour sources under ``folders`` (searched recursively).

    - the release's frame folders ``view_<V>/aAA_sSS_eEE/`` (``frame_<k>_tc_<t>_rgb.jpg`` inside) give
      sample ``aAA_sSS_eEE_v<VV>`` (the view zero-padded to two digits, as in the skeleton JSON names);
    - video files named ``aAA_sSS_eEE_vVV.<ext>`` (``.avi``, ``.mp4``, ...) give the sample of their name.
    Frame folders are not descended into, so the walk stays cheap.
    """
    found: dict[str, Path] = {}
    for folder in _directories(folders, "NW-UCLA view_<V>/aAA_sSS_eEE frame folders or videos"):
        for root, subfolders, files in os.walk(folder):
            parent = Path(root)
            subfolders.sort()
            view = _UCLA_VIEW_FOLDER.fullmatch(parent.name)
            if view:
                samples = [name for name in subfolders if _UCLA_SAMPLE_FOLDER.fullmatch(name)]
                for sample in samples:
                    found.setdefault(f"{sample}_v{int(view.group(1)):02d}", parent / sample)
                subfolders[:] = [name for name in subfolders if name not in samples]
            for file in sorted(files):
                stem, extension = os.path.splitext(file)
                if extension.lower() in VIDEO_EXTENSIONS and _UCLA_NAME.fullmatch(stem):
                    found.setdefault(stem, parent / file)
    return found


def _directories(folders: Sequence[str | os.PathLike], content: str) -> list[Path]:
    paths = [Path(folder) for folder in folders]
    for path in paths:
        if not path.is_dir():
            raise InputError(f"{path}: not a directory of {content}")
    return paths
