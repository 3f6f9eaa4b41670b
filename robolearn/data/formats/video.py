"""mp4 in and out through PyAV: frames as (N, H, W, 3) uint8 RGB."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

from robolearn.data.formats.common import need
from robolearn.errors import DataError


def read_frames(path: Path, size: int | None = None, start: int = 0, count: int | None = None) -> np.ndarray:
    """Frames ``start .. start+count-1`` of the first video stream (all when ``count`` is None),
    optionally resized to ``size`` x ``size``."""
    av = need("av", "lerobot")
    if not path.is_file():
        raise DataError(f"{path}: video file missing (the dataset's meta/info.json lists this camera)")
    out = []
    try:
        with av.open(str(path)) as c:
            for i, frame in enumerate(c.decode(video=0)):
                if i < start:
                    continue
                if count is not None and i >= start + count:
                    break
                if size:
                    frame = frame.reformat(width=size, height=size)
                out.append(frame.to_ndarray(format="rgb24"))
    except av.error.FFmpegError as e:
        raise DataError(f"{path}: expected a readable video, found a decoding error ({e})") from None
    if not out:
        return np.zeros((0, size or 0, size or 0, 3), np.uint8)
    return np.stack(out)


class VideoWriter:
    """Appends frames to one mp4 (yuv420p; ``libx264`` by default, ``libsvtav1`` as LeRobot writes)."""

    def __init__(self, path: Path, fps: float, width: int, height: int, codec: str = "libx264", crf: int = 18):
        av = need("av", "lerobot")
        path.parent.mkdir(parents=True, exist_ok=True)
        self.container = av.open(str(path), mode="w")
        self.stream = self.container.add_stream(codec, rate=Fraction(fps).limit_denominator(1000))
        self.stream.width, self.stream.height, self.stream.pix_fmt = width, height, "yuv420p"
        self.stream.options = {"crf": str(crf)} if codec in ("libx264", "libsvtav1") else {}
        if codec == "libx264":
            self.stream.options["g"] = "2"  # frequent key frames: episodes can be seeked into
        self._av = av
        self.frames = 0

    def write(self, frames: np.ndarray) -> None:
        for f in frames:
            frame = self._av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")
            for packet in self.stream.encode(frame):
                self.container.mux(packet)
            self.frames += 1

    def close(self) -> None:
        for packet in self.stream.encode():
            self.container.mux(packet)
        self.container.close()
