"""``robolearn inspect``: describe a zarr dataset, verify that every chunk reads, render an episode."""

from __future__ import annotations

import sys
from pathlib import Path

from robolearn.data.dataset import describe
from robolearn.data.replay_buffer import ReplayBuffer


def inspect_dataset(
    path: str | Path,
    verify: bool = False,
    video: int | None = None,
    key: str = "img",
    out: str | Path | None = None,
    fps: int = 10,
) -> int:
    """Print the description (and the problems of ``verify``, one per line on stderr); write episode
    ``video``'s frames of ``key`` to ``out``. Returns the exit code: 2 when verify found problems."""
    if verify:
        problems = ReplayBuffer.open(path).verify()
        for p in problems:
            print(p, file=sys.stderr)
        print(f"verify: {len(problems)} problem(s) in {path}" if problems else f"verify: every chunk of {path} reads")
        if problems:
            return 2
    print(describe(path))
    if video is not None:
        from robolearn.eval.rollout import write_video

        frames = ReplayBuffer.open(path).get_episode(video, keys=[key])[key]
        if frames.dtype != "uint8":
            frames = frames.clip(0, 255).astype("uint8")
        dest = Path(out or f"episode_{video}.mp4")
        write_video(list(frames), dest, fps=fps)
        print(f"video: {dest} ({len(frames)} frames of {key})")
    return 0
