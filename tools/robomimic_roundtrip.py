"""robolearn's robomimic import, checked against the real robomimic package's dataset reader.

Writes FetchReach expert demos as a robomimic hdf5 file (robomimic's layout, as
tools/interop_e2e.py does), converts it with `robolearn convert`, and reads the same file with
robomimic's ``SequenceDataset`` in robomimic's own environment (``--robomimic-python``: robomimic
pins its own torch stack); every demo's observations and actions must be equal, in robomimic's
demo order, and the ``valid`` filter key must select the same demos as robolearn's ``mask/valid``.

    python tools/robomimic_roundtrip.py --robomimic-python /path/to/venv/bin/python
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

CHILD = r"""
import json, sys
import numpy as np
import robomimic
import robomimic.utils.obs_utils as ObsUtils
from robomimic.utils.dataset import SequenceDataset
path, out = sys.argv[1], sys.argv[2]
ObsUtils.initialize_obs_modality_mapping_from_dict({"low_dim": ["state"]})
ds = SequenceDataset(hdf5_path=path, obs_keys=("state",), dataset_keys=("actions",), seq_length=1,
                     hdf5_cache_mode=None, hdf5_use_swmr=False, load_next_obs=False)
valid = SequenceDataset(hdf5_path=path, obs_keys=("state",), dataset_keys=("actions",), seq_length=1,
                        hdf5_cache_mode=None, hdf5_use_swmr=False, load_next_obs=False, filter_by_attribute="valid")
state = np.stack([ds[i]["obs"]["state"][0] for i in range(len(ds))])
action = np.stack([ds[i]["actions"][0] for i in range(len(ds))])
np.savez(out, state=state, action=action)
print(json.dumps({"version": robomimic.__version__, "demos": list(ds.demos), "valid": list(valid.demos),
                  "samples": len(ds)}))
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--robomimic-python", required=True, help="python of an environment with robomimic")
    ap.add_argument("--episodes", type=int, default=12)
    a = ap.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from interop_e2e import write_robomimic

    from robolearn.algos.collect import collect
    from robolearn.data.formats import convert
    from robolearn.data.replay_buffer import ReplayBuffer
    from robolearn.envs import make_task

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        collect(make_task("fetch_reach"), a.episodes, tmp / "src.zarr", progress=False)
        write_robomimic(tmp / "src.zarr", tmp / "demos.hdf5", valid_every=4)
        convert(tmp / "demos.hdf5", tmp / "back.zarr", progress=False)
        r = subprocess.run(
            [a.robomimic_python, "-c", CHILD, str(tmp / "demos.hdf5"), str(tmp / "vals.npz")],
            capture_output=True,
            text=True,
        )
        if r.returncode != 0:
            sys.exit(f"robomimic could not read the file:\n{r.stderr[-3000:]}")
        res = json.loads(r.stdout.strip().splitlines()[-1])
        theirs = np.load(tmp / "vals.npz")
        back = ReplayBuffer.open(tmp / "back.zarr")
        ours = back.load(["state", "action"])
        masks = dict(back.attrs.get("masks") or {})
        order = [int(d.split("_")[1]) for d in res["demos"]]
        checks = {
            "demo order (robomimic sorts demo_2 before demo_10)": order == sorted(order),
            "frames": int(back.n_steps) == res["samples"],
            "obs/state equal": np.array_equal(ours["state"], theirs["state"].astype(ours["state"].dtype)),
            "actions equal": np.array_equal(ours["action"], theirs["action"].astype(ours["action"].dtype)),
            "mask valid = filter_by_attribute valid": sorted(masks.get("valid", []))
            == sorted(int(d.split("_")[1]) for d in res["valid"]),
        }
        print(f"robomimic {res['version']}: {len(res['demos'])} demos, {res['samples']} samples")
        print("| check | result |\n|---|---|")
        for k, v in checks.items():
            print(f"| {k} | {'yes' if v else 'NO'} |")
        if not all(checks.values()):
            sys.exit(1)


if __name__ == "__main__":
    main()
