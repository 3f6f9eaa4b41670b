"""How many CPU threads torch uses when the user has not said.

torch's default is one thread per core. On a machine where other processes already keep cores
busy, OpenMP's worker threads then wait on each other behind those processes: measured here,
the README's quickstart took 13.4 min instead of 61 s with torch's default threads while two
other jobs ran (BENCHMARKS.md, "Threads under load"). So the default is the number of cores
that are free right now (cores minus the 1-minute load average, at least 1); OMP_NUM_THREADS
or ROBOLEARN_THREADS, when set, decide instead.
"""

from __future__ import annotations

import os


def free_cores() -> int:
    n = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        busy = os.getloadavg()[0]
    except OSError:  # no load average on this platform: trust the core count
        busy = 0.0
    return max(1, min(n, n - int(busy + 0.5)))


def choose_threads() -> int | None:
    """Set torch's intra-op threads for this process unless the user set them; returns the count
    set, or None when the environment decides."""
    explicit = os.environ.get("ROBOLEARN_THREADS")
    if explicit is None and "OMP_NUM_THREADS" in os.environ:
        return None
    import torch

    if explicit is not None and not explicit.strip().isdigit():
        from robolearn.errors import ConfigError

        raise ConfigError(f"ROBOLEARN_THREADS: expected a positive int (torch threads), found {explicit!r}")
    n = free_cores() if explicit is None else max(1, int(explicit))
    torch.set_num_threads(n)
    return n
