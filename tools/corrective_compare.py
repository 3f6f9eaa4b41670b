"""BC vs BC + corrective labels (true dynamics) vs BC + corrective labels (learned dynamics, CCIL)
at equal demonstrations, several training seeds, one evaluation protocol.

    python tools/corrective_compare.py --task catch --demos 20 --seeds 0 1 2 --out runs/corrective_catch \\
        -- policy=regression algo.steps=1500 algo.batch_size=256

Demonstrations: ``--demos`` scripted-expert episodes (seeds 0..); corrective labels from
``robolearn correct`` (``--samples`` each, default perturbation dims of the task); every model is
trained with the same overrides and evaluated on ``--episodes`` seeds from 100000. Prints one row per
method: success pooled over seeds with its 95% Wilson interval, per-seed successes, labels added."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from robolearn.eval.metrics import wilson_interval


def sh(*args: str) -> str:
    r = subprocess.run([sys.executable, "-m", "robolearn", *args], capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(f"robolearn {' '.join(args)} failed:\n{r.stderr[-2000:]}")
    return r.stdout


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", default="catch")
    p.add_argument("--demos", type=int, default=20)
    p.add_argument("--samples", type=int, default=2000)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--episodes", type=int, default=100)
    p.add_argument("--horizon", type=int, default=8)
    p.add_argument("--out", default="runs/corrective_compare")
    p.add_argument("overrides", nargs="*")
    a = p.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    demos = out / "demos.zarr"
    if not demos.exists():
        sh("collect", a.task, "--episodes", str(a.demos), "--out", str(demos))
    data = {"bc": (demos, [])}
    for dyn in ("true", "learned"):
        d = out / f"corrected_{dyn}.zarr"
        if not d.exists():
            print(sh("correct", a.task, "--data", str(demos), "--out", str(d), "--dynamics", dyn,
                     "--samples", str(a.samples), "--horizon", str(a.horizon)).strip())  # fmt: skip
        data[f"bc + {dyn} labels"] = (d, ["algo.chunk_key=action_chunk"])
    probe = ErrorProbe(a.task, a.horizon, out, a.episodes, a.overrides)
    rows = []
    for method, (path, extra) in data.items():
        wins, n, per_seed, offs, ons = 0, 0, [], [], []
        for seed in a.seeds:
            run = out / "runs" / method.replace(" ", "_").replace("+", "plus") / f"s{seed}"
            metrics = run / "eval" / "metrics.json"
            if not metrics.exists():
                sh("train", f"task={a.task}", f"data={path}", f"seed={seed}", f"run_dir={run}", "eval.workers=0",
                   f"policy.horizon={a.horizon}", *extra, *a.overrides, "--eval-episodes", str(a.episodes))  # fmt: skip
            m = json.loads(metrics.read_text())["summary"]
            k = round(m["success_rate"] * m["episodes"])
            wins, n = wins + k, n + m["episodes"]
            per_seed.append(m["success_rate"])
            off, on = probe(run, seed)
            offs.append(off)
            ons.append(on)
        lo, hi = wilson_interval(wins, n)
        rows.append((method, wins / n, lo, hi, per_seed, float(np.mean(offs)), float(np.mean(ons))))
    print(f"| method | success, {len(a.seeds)} seeds pooled [95% CI] | per seed | off-policy MSE | on-policy MSE |")
    print("|---|---|---|---|---|")
    for method, r, lo, hi, ps, off, on in rows:
        print(
            f"| {method} | {r:.2f} [{lo:.2f}, {hi:.2f}] | {', '.join(f'{x:.2f}' for x in ps)} | {off:.4f} | {on:.4f} |"
        )


class ErrorProbe:
    """The learner's first action against the scripted expert's: on held-out clean expert episodes
    (off-policy) and at the states the learner visits itself, same seeds and execution noise as the
    evaluation (on-policy); the expert never acts."""

    def __init__(self, task_name: str, horizon: int, out: Path, episodes: int, overrides: list[str]):
        from robolearn.algos.labelers import ScriptedLabeler
        from robolearn.algos.rounds import ensure_heldout
        from robolearn.envs import make_task

        self.task = make_task(task_name)
        self.labeler = ScriptedLabeler(self.task, horizon)
        self.heldout = ensure_heldout(self.task, self.labeler, out / "heldout.zarr", 10, progress=False)
        self.episodes = episodes
        noise = [o.split("=", 1)[1] for o in overrides if o.startswith("eval.action_noise=")]
        self.noise = float(noise[-1]) if noise else 0.0

    def __call__(self, run: Path, seed: int) -> tuple[float, float]:
        from robolearn.algos.accounting import evaluate_with_errors, mse, offpolicy_errors
        from robolearn.policy import ChunkPolicy

        cache = run / "error_probe.json"
        if cache.exists():
            d = json.loads(cache.read_text())
            return d["offpolicy_mse"], d["onpolicy_mse"]
        policy = ChunkPolicy.load(run / "checkpoints" / "last")
        spec = self.task.spec
        off = mse(offpolicy_errors(policy, self.heldout, (spec.action_low, spec.action_high), seed=seed))
        _, on = evaluate_with_errors(
            policy, self.task, self.labeler, {"name": "receding"}, self.episodes, 10, 100_000, seed=seed,
            action_noise=self.noise,
        )  # fmt: skip
        d = {"offpolicy_mse": off, "onpolicy_mse": mse(on)}
        cache.write_text(json.dumps(d))
        return d["offpolicy_mse"], d["onpolicy_mse"]


if __name__ == "__main__":
    main()
