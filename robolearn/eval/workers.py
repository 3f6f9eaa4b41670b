"""Environments stepped in worker processes, behind the same interface as ``EnvBatch``.

Evaluation cost on CPU is mostly physics and rendering, one env after another. With free
cores, ``ProcEnvBatch`` splits the envs over worker processes (each owns a contiguous slice and
steps it while the others step theirs); the policy still runs once per step on the whole
batch in the parent. Each env is reset with its own seed and stepped with the same actions as
in-process, so per-episode results are identical to ``EnvBatch`` (a test checks it).

Workers are started with ``spawn`` (a fresh interpreter: no inherited torch threads, OpenGL
or MuJoCo contexts) and rebuild the task from its pickled object.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import traceback
from typing import Any

import numpy as np

from robolearn.errors import RobolearnError
from robolearn.eval.env_batch import stack_infos, stack_obs


def _serve(conn, task, indices: list[int], n_render: int) -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    try:
        envs = {i: task.make_env(render=i < n_render) for i in indices}
        conn.send(("ok", None))
    except Exception as e:  # report, do not hang the parent
        conn.send(("error", f"{type(e).__name__}: {e}"))
        return
    try:
        while True:
            cmd, arg = conn.recv()
            if cmd == "reset":
                conn.send(("ok", {i: envs[i].reset(seed=int(s)) for i, s in arg.items()}))
            elif cmd == "step":
                conn.send(("ok", {i: envs[i].step(a) for i, a in arg.items()}))
            elif cmd == "render":
                conn.send(("ok", envs[arg].render()))
            elif cmd == "close":
                for env in envs.values():
                    env.close()
                conn.send(("ok", None))
                return
    except (EOFError, KeyboardInterrupt):
        return
    except Exception:
        conn.send(("error", traceback.format_exc(limit=3).strip().splitlines()[-1]))


class ProcEnvBatch:
    """``n_envs`` envs of ``task`` over ``n_workers`` processes; same methods as ``EnvBatch``."""

    def __init__(self, task, n_envs: int, n_workers: int, n_render: int = 0):
        self.num_envs = n_envs
        n_workers = max(1, min(n_workers, n_envs))
        ctx = mp.get_context("spawn")
        slices = np.array_split(np.arange(n_envs), n_workers)
        self._owner = {int(i): w for w, sl in enumerate(slices) for i in sl}
        self._conns, self._procs = [], []
        for sl in slices:
            parent, child = ctx.Pipe()
            p = ctx.Process(target=_serve, args=(child, task, [int(i) for i in sl], n_render), daemon=True)
            p.start()
            child.close()
            self._conns.append(parent)
            self._procs.append(p)
        for c in self._conns:
            self._recv(c)
        self._last: list[Any] = [None] * n_envs

    def _recv(self, conn):
        try:
            status, val = conn.recv()
        except EOFError:
            self.close()
            raise RobolearnError("evaluation worker died (see its output above)") from None
        if status != "ok":
            self.close()
            raise RobolearnError(f"evaluation worker failed: {val}")
        return val

    def _scatter(self, cmd: str, per_env: dict[int, Any]) -> dict[int, Any]:
        by_worker: dict[int, dict[int, Any]] = {}
        for i, v in per_env.items():
            by_worker.setdefault(self._owner[i], {})[i] = v
        for w, arg in by_worker.items():
            self._conns[w].send((cmd, arg))
        out: dict[int, Any] = {}
        for w in by_worker:
            out.update(self._recv(self._conns[w]))
        return out

    def reset(self, seed: list[int]):
        res = self._scatter("reset", {i: s for i, s in enumerate(seed)})
        self._last = [res[i][0] for i in range(self.num_envs)]
        return stack_obs(self._last), stack_infos([res[i][1] for i in range(self.num_envs)])

    def step(self, actions: np.ndarray, alive: np.ndarray):
        n = self.num_envs
        rew, term, trunc, infos = np.zeros(n), np.ones(n, bool), np.zeros(n, bool), [{} for _ in range(n)]
        res = self._scatter("step", {int(i): actions[i] for i in np.flatnonzero(alive)})
        for i, (o, r, te, tr, inf) in res.items():
            self._last[i], rew[i], term[i], trunc[i], infos[i] = o, r, te, tr, inf
        return stack_obs(self._last), rew, term, trunc, stack_infos(infos)

    def render(self, i: int):
        self._conns[self._owner[i]].send(("render", i))
        return self._recv(self._conns[self._owner[i]])

    def close(self) -> None:
        for c, p in zip(self._conns, self._procs):
            if p.is_alive():
                try:
                    c.send(("close", None))
                    c.poll(5) and c.recv()
                except (BrokenPipeError, EOFError, OSError):
                    pass
            p.join(timeout=5)
            if p.is_alive():
                p.kill()
        self._procs = []


def free_cores() -> int:
    """Cores this process may use (affinity), a rough upper bound for evaluation workers."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1
