"""Can the RTC paper's Kinetix experts be trained on this CPU? Measures the environment throughput of
one of the reference's levels (Physical-Intelligence/real-time-chunking-kinetix, `worlds/l/*.json`)
with its settings (symbolic observations, continuous actions, frame skip 2, the "large" static
parameters, 256 envs stepped in one vmapped, jitted call) and prints what its expert budget (1000 PPO
updates x 256 steps x 256 envs per seed, 8 seeds per level) would cost at that rate, before any PPO
network cost.

Runs in its own venv (kinetix-env pulls JAX; never needed by robolearn itself):
    python3 -m venv .kxvenv && .kxvenv/bin/pip install kinetix-env
    .kxvenv/bin/python tools/kinetix_probe.py --level /path/to/worlds/l/catapult.json [--envs 256]
"""

from __future__ import annotations

import argparse
import json
import sys
import time

LARGE = {"num_polygons": 12, "num_circles": 4, "num_joints": 6, "num_thrusters": 2, "num_motor_bindings": 4,
         "num_thruster_bindings": 2}  # fmt: skip
REFERENCE_STEPS_PER_SEED = 1000 * 256 * 256
REFERENCE_SEEDS = 8


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--level", required=True, help="a level JSON (the reference's worlds/l/<name>.json)")
    ap.add_argument("--envs", type=int, default=256)
    ap.add_argument("--iters", type=int, default=50, help="timed vmapped steps after compilation")
    a = ap.parse_args()
    try:
        import jax
        import jax.numpy as jnp
        from kinetix.environment.env import make_kinetix_env
        from kinetix.environment.env_state import EnvParams, StaticEnvParams
        from kinetix.environment.spaces import ActionType, ObservationType
        from kinetix.util.saving import expand_env_state, load_from_json_file
    except ImportError as e:
        print(f"kinetix_probe: expected kinetix-env in this Python ({sys.executable}), found {e}", file=sys.stderr)
        return 2
    static = StaticEnvParams(**LARGE, frame_skip=2)
    params = EnvParams()
    level, _, _ = load_from_json_file(a.level)
    level = expand_env_state(level, static)
    env = make_kinetix_env(ActionType.CONTINUOUS, ObservationType.SYMBOLIC_FLAT, None, params, static, auto_reset=False)
    reset = jax.jit(jax.vmap(lambda k: env.reset(k, params, override_reset_state=level)))
    step = jax.jit(jax.vmap(lambda k, s, u: env.step(k, s, u, params)))
    keys = jax.random.split(jax.random.PRNGKey(0), a.envs)
    obs, state = reset(keys)
    n_act = env.action_space(params).shape[0]
    t0 = time.perf_counter()
    u = jnp.zeros((a.envs, n_act))
    obs, state, *_ = step(keys, state, u)
    jax.block_until_ready(obs)
    compile_s = time.perf_counter() - t0
    rng = jax.random.PRNGKey(1)
    t0 = time.perf_counter()
    for _ in range(a.iters):
        rng, k1, k2 = jax.random.split(rng, 3)
        u = jax.random.uniform(k1, (a.envs, n_act), minval=-1.0, maxval=1.0)
        obs, state, *_ = step(jax.random.split(k2, a.envs), state, u)
    jax.block_until_ready(obs)
    secs = time.perf_counter() - t0
    rate = a.envs * a.iters / secs
    out = {
        "level": a.level,
        "envs": a.envs,
        "obs_dim": int(obs.shape[-1]),
        "action_dim": int(n_act),
        "compile_s": round(compile_s, 1),
        "env_steps_per_s": round(rate),
        "reference_steps_per_seed": REFERENCE_STEPS_PER_SEED,
        "hours_per_seed_env_only": round(REFERENCE_STEPS_PER_SEED / rate / 3600, 2),
        "hours_per_level_8_seeds_env_only": round(REFERENCE_SEEDS * REFERENCE_STEPS_PER_SEED / rate / 3600, 1),
        "devices": [str(d) for d in jax.devices()],
    }
    print(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
