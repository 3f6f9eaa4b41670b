"""Expert success of the dynamic tasks, with and without execution noise, and when the expert acts
on a state d control steps old (the staleness an inference delay of d steps causes).

    python tools/dynamic_experts.py [--episodes 100] [--tasks cartpole,catch,catch_multimodal] [--delays 0,1,2,3,4,5,6]

Tasks are task configs (configs/task/<name>.yaml: catch_multimodal is catch without the puck's
wander, with the two-route expert).

Episodes use seeds 1000.. (disjoint from collection, 0.., and evaluation, 100000..); execution
noise is Gaussian with std 0.1 of the half action range, as in the RTC benchmark."""

from __future__ import annotations

import argparse

from robolearn.config import compose
from robolearn.envs.dynamic import delayed_expert_success
from robolearn.eval.metrics import wilson_interval
from robolearn.train.data import make_task_from


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--episodes", type=int, default=100)
    p.add_argument("--tasks", default="cartpole,catch")
    p.add_argument("--delays", default="0,1,2,3,4,5,6")
    a = p.parse_args()
    delays = [int(d) for d in a.delays.split(",")]
    print("| task | execution noise | " + " | ".join(f"d = {d}" for d in delays) + " |")
    print("|---|---|" + "---|" * len(delays))
    for name in a.tasks.split(","):
        task = make_task_from(compose([f"task={name}"]))
        for noise in (0.0, 0.1):
            cells = []
            for d in delays:
                r = delayed_expert_success(task, a.episodes, noise, d)
                lo, hi = wilson_interval(round(r * a.episodes), a.episodes)
                cells.append(f"{r:.2f} [{lo:.2f}, {hi:.2f}]")
            print(f"| {name} | {noise} | " + " | ".join(cells) + " |", flush=True)


if __name__ == "__main__":
    main()
