"""Data parallelism on PyTorch's own engine: ``torchrun`` + ``DistributedDataParallel``.

Launched by ``torchrun`` (which sets ``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK`` and the rendezvous),
every process trains the same model on different windows; DDP averages the gradients, so all
ranks hold identical weights after every step. The backend follows the device: NCCL on CUDA,
gloo on CPU. Without torchrun nothing here starts a process group and ``Dist()`` is a world of
one, so a plain ``robolearn train`` runs exactly as a single process always did.

A collective that waits longer than ``timeout_s`` (a rank died or hangs) raises instead of
blocking forever; ``lost_rank_error`` turns that into one line for the user.
"""

from __future__ import annotations

import datetime
import os
from typing import Any

import torch

from robolearn.errors import ConfigError, RobolearnError


def launched() -> bool:
    """True inside a ``torchrun`` launch with more than one process."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


class Dist:
    """Rank, world size and the few collectives robolearn needs (all no-ops for a world of one)."""

    def __init__(self, rank: int = 0, world: int = 1, local_rank: int = 0, active: bool = False):
        self.rank, self.world, self.local_rank, self.active = rank, world, local_rank, active

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def mean(self, value: float) -> float:
        """The mean of a float over ranks."""
        if not self.active:
            return float(value)
        t = torch.tensor([float(value)], dtype=torch.float64, device=self._dev())
        torch.distributed.all_reduce(t)
        return float(t.item()) / self.world

    def gather(self, obj: Any) -> list[Any] | None:
        """Every rank's ``obj``, in rank order, on rank 0 (None elsewhere)."""
        if not self.active:
            return [obj]
        out = [None] * self.world if self.is_main else None
        torch.distributed.gather_object(obj, out, dst=0)
        return out

    def broadcast_module(self, module: torch.nn.Module) -> None:
        """Copy rank 0's parameters and buffers into ``module`` on every rank."""
        if not self.active:
            return
        for t in [*module.parameters(), *module.buffers()]:
            torch.distributed.broadcast(t.data, src=0)

    def barrier(self) -> None:
        if self.active:
            torch.distributed.barrier()

    def close(self) -> None:
        if self.active and torch.distributed.is_initialized():
            torch.distributed.destroy_process_group()
            self.active = False

    def _dev(self) -> torch.device:
        backend = torch.distributed.get_backend()
        return torch.device("cuda", torch.cuda.current_device()) if backend == "nccl" else torch.device("cpu")


def init(device: torch.device, timeout_s: float = 1800.0) -> Dist:
    """Join the process group torchrun set up (or a world of one without torchrun)."""
    if not launched():
        return Dist()
    if torch.distributed.is_initialized():
        return Dist(
            torch.distributed.get_rank(), torch.distributed.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)), True
        )
    if not isinstance(timeout_s, (int, float)) or isinstance(timeout_s, bool) or timeout_s <= 0:
        raise ConfigError(f"dist_timeout_s: expected seconds > 0, found {timeout_s!r}")
    backend = "nccl" if device.type == "cuda" else "gloo"
    torch.distributed.init_process_group(backend, timeout=datetime.timedelta(seconds=float(timeout_s)))
    return Dist(
        torch.distributed.get_rank(), torch.distributed.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)), True
    )


def lost_rank_error(dist: Dist, err: BaseException) -> RobolearnError:
    import re

    first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    first = re.sub(r"\[[^\]]*\.(cc|cpp|h):\d+\]\s*", "", first).split(". ")[0]  # drop C++ source locations
    return RobolearnError(
        f"another of the {dist.world} ranks stopped or stopped answering ({first[:120]}); this rank "
        "stops too. Re-launch the same command to resume from the last checkpoint"
    )


def shard_ranks() -> tuple[int, int]:
    """(rank, world) of a launch without a process group (e.g. ablation cells): from torchrun's
    environment, or (0, 1)."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
