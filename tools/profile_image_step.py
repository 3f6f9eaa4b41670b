"""The Push-T image training step by variant: the full step (encoder + flow head, backward, AdamW)
and the image encoder's forward alone, batch 64, one thread, median of rounds, variants in one
process. Variants: the recipe, + auxiliary keypoints, one observation frame, a half-width trunk,
a ResNet-10 trunk.

    OMP_NUM_THREADS=1 python tools/profile_image_step.py --rounds 6
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from robolearn.config import compose, to_dict
from robolearn.data.normalizer import Normalizer
from robolearn.policy import ChunkPolicy
from robolearn.spec import ObsSpec

VARIANTS = {
    "recipe (To = 2, width 16)": [],
    "+ aux keypoints": ["policy.aux_key=keypoint"],
    "To = 1": ["policy.obs_horizon=1"],
    "width 8": ["policy.encoder.rgb.width=8"],
    "resnet10 trunk": ["policy.encoder.rgb.backbone=resnet10"],
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--batch", type=int, default=64)
    a = ap.parse_args()
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    norm = Normalizer().fit(
        {
            "agent_pos": rng.uniform(0, 500, (100, 2)),
            "action": rng.uniform(0, 500, (100, 2)),
            "keypoint": rng.uniform(0, 500, (100, 9, 2)),
        }
    )
    spec = {"img": ObsSpec((96, 96, 3), "uint8", "rgb"), "agent_pos": ObsSpec((2,))}
    built = {}
    for name, over in VARIANTS.items():
        cfg = compose(["task=pusht_image", "policy=flow", *over])
        aux = 18 if cfg.policy.aux_key else None
        p = ChunkPolicy(to_dict(cfg.policy), spec, 2, norm, aux_dim=aux)
        To, B = int(cfg.policy.obs_horizon), a.batch
        batch = {
            "obs": {
                "img": torch.randint(0, 255, (B, To, 96, 96, 3), dtype=torch.uint8),
                "agent_pos": torch.rand(B, To, 2) * 500,
            },
            "action": torch.rand(B, 16, 2) * 500,
            "aux": torch.rand(B, To, 9, 2) * 500,
        }
        built[name] = (p, torch.optim.AdamW(p.parameters(), lr=1e-4), batch, {"step": [], "enc": []})
    for _ in range(a.rounds):  # interleaved: load from other jobs hits every variant alike
        for p, opt, batch, t in built.values():
            import time

            t0 = time.perf_counter()
            loss = p.compute_loss(batch)["loss"]
            opt.zero_grad()
            loss.backward()
            opt.step()
            t["step"].append(time.perf_counter() - t0)
            with torch.no_grad():
                t0 = time.perf_counter()
                p.encoder(p._prep_obs(batch["obs"]))
                t["enc"].append(time.perf_counter() - t0)
    print(f"| variant | training step (ms, batch {a.batch}) | encoder forward (ms) |\n|---|---|---|")
    for name, (_, _, _, t) in built.items():
        print(f"| {name} | {np.median(t['step'][1:]) * 1e3:.0f} | {np.median(t['enc'][1:]) * 1e3:.0f} |")


if __name__ == "__main__":
    main()
