"""Meta-World v3 (50 Sawyer manipulation tasks, MuJoCo) as robolearn tasks: ``metaworld/<env>``.

Installed apart from robolearn's default dependencies (``pip install --no-deps metaworld==3.1.1
scipy``: metaworld 3.1.1 pins mujoco==3.3.0, robolearn runs it on the mujoco it already has).

What the wrapper fixes, as the benchmark does it:

- **Seeded goals.** ``reset(seed=s)`` seeds the env's generator and lets it draw the task's random
  vector (object and goal positions) the way Meta-World's own ``MT1`` task sampling does
  (``seeded_rand_vec``), so episode ``s`` has the same layout in every process and run, and
  rejection loops inside ``reset_model`` (goal too close to the object) still terminate.
- **Goal visible.** The 39-dim observation carries the goal position (``_partially_observable =
  False``, Meta-World's ``goal-observable`` variant, as behaviour-cloning work on Meta-World uses);
  the cached observation space is rebuilt so ``step`` does not clip the goal to zero.
- **Success** is ``info['success']``; an episode ends at its first success (the benchmark counts
  success once), or after ``max_steps`` (Meta-World's ``max_path_length``, 500).
- **Save / restore** covers the MuJoCo integration state (mocap included) and the env's own
  per-episode attributes (random vector, target, previous frame, step counter), so a restored
  env produces the same next observation bit for bit (DAgger labels from restored states).

The experts are Meta-World's scripted policies (``metaworld.policies``), fed the observation of
the current simulator state: Markovian, so any state a learner reaches can be labelled.

**Rendering on a CPU.** Without a GPU, EGL renders in software, and the scene's own settings (a
4096-pixel shadow map, 4x multisampling, reflections) cost about 0.15 s per 96x96 frame, which
makes image evaluation hours long. ``render_quality='fast'`` keeps the scene, lights and shadows but
renders a 512-pixel shadow map without multisampling or reflections: about 5x faster, the same
picture with jagged edges (``tools/bench_metaworld_render.py``). Collection, training and
evaluation of one run must use the same setting; ``full`` (the default) is the scene as shipped.
"""

from __future__ import annotations

import copy
import os
import warnings
from typing import Any

os.environ.setdefault("MUJOCO_GL", "egl")  # headless offscreen rendering; must precede `import mujoco`

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402

from robolearn.envs.base import ObsSpec, TaskSpec, TwoRenderers, find_wrapper  # noqa: E402
from robolearn.envs.suites import MT10, PREFIX, TASKS, check_name  # noqa: E402, F401
from robolearn.errors import ConfigError  # noqa: E402

INSTALL = "pip install --no-deps metaworld==3.1.1 scipy"
MAX_STEPS = 500  # Meta-World's max_path_length
CAMERA = "corner2"  # a fixed camera of every Meta-World scene (rolled 180 degrees: images are turned upright)
OBS_DIM = 39
RENDER_QUALITY = ("full", "fast")


def _import_metaworld():
    try:
        import metaworld  # noqa: F401
        from metaworld.env_dict import ALL_V3_ENVIRONMENTS
        from metaworld.policies import ENV_POLICY_MAP
    except ImportError as e:
        raise ConfigError(f"Meta-World tasks need the metaworld package ({e}); install it with: {INSTALL}") from None
    return ALL_V3_ENVIRONMENTS, ENV_POLICY_MAP


class MetaWorldEnv(TwoRenderers, gym.Env):
    """One Meta-World env with dict observations keyed like the dataset, seeded goals, ``score``
    and ``is_success`` in info, exact save/restore."""

    metadata = {"render_modes": ["rgb_array"]}

    def __init__(
        self, env_name: str, obs: str, image_size: int, render_size: int | None, max_steps: int,
        render_quality: str = "full",
    ):  # fmt: skip
        import mujoco

        envs, _ = _import_metaworld()
        u = envs[env_name]()
        u._partially_observable = False
        u.__dict__.pop("sawyer_observation_space", None)  # cached with the goal clipped to zero
        u._set_task_called = True
        u.seeded_rand_vec = True
        self.u, self.env_name, self.obs_mode, self.max_steps = u, env_name, obs, max_steps
        self._steps = 0
        fast = render_quality == "fast"
        if fast:  # read when a renderer's context is made
            u.model.vis.quality.shadowsize, u.model.vis.quality.offsamples = 512, 0
        self._obs_renderer = mujoco.Renderer(u.model, image_size, image_size) if obs == "image" else None
        self._video_renderer = mujoco.Renderer(u.model, render_size, render_size) if render_size else None
        for r in (self._obs_renderer, self._video_renderer) if fast else ():
            if r is not None:
                r.scene.flags[mujoco.mjtRndFlag.mjRND_REFLECTION] = 0
        spaces: dict[str, gym.spaces.Space] = {"state": gym.spaces.Box(-np.inf, np.inf, (OBS_DIM,), np.float32)}
        if obs == "image":
            spaces["img"] = gym.spaces.Box(0, 255, (image_size, image_size, 3), np.uint8)
            spaces["agent_pos"] = gym.spaces.Box(-np.inf, np.inf, (4,), np.float32)
        self.observation_space = gym.spaces.Dict(spaces)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (4,), np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        s = int(seed) if seed is not None else int(self.np_random.integers(2**31))
        self.u.seed(s)
        self.u._freeze_rand_vec = False  # draw this episode's layout from the seeded generator
        raw, _ = self.u.reset()
        self.u._freeze_rand_vec = True
        self._steps = 0
        return self._convert(raw), {"is_success": False, "score": 0.0}

    def step(self, action):
        a = np.clip(np.asarray(action, dtype=np.float32), -1.0, 1.0)
        raw, reward, _, _, info = self.u.step(a)
        self._steps += 1
        ok = bool(info.get("success", False))
        trunc = self._steps >= self.max_steps
        return self._convert(raw), float(reward), False, trunc, {"is_success": ok, "score": float(ok)}

    def expert_obs(self) -> np.ndarray:
        """The 39-dim observation of the current simulator state, without advancing the frame stack."""
        u = self.u
        return np.hstack((u._get_curr_obs_combined_no_goal(), u._prev_obs, u._get_pos_goal()))

    def get_obs(self) -> dict[str, np.ndarray]:
        """The observation of the current simulator state (e.g. right after ``set_sim_state``)."""
        return self._convert(self.expert_obs())

    def close(self) -> None:
        self.close_renderers()
        self.u.close()

    # --- save / restore ---
    def get_sim_state(self) -> dict[str, Any]:
        import mujoco

        m, d = self.u.model, self.u.data
        kind = mujoco.mjtState.mjSTATE_INTEGRATION  # qpos, qvel, act, mocap pose, ctrl, warm start, time
        phys = np.empty(mujoco.mj_stateSize(m, kind))
        mujoco.mj_getState(m, d, phys, kind)
        attrs = {k: copy.deepcopy(v) for k, v in vars(self.u).items() if _plain(v)}
        return {"physics": phys, "attrs": attrs, "steps": self._steps}

    def set_sim_state(self, state: dict[str, Any]) -> None:
        import mujoco

        m, d = self.u.model, self.u.data
        mujoco.mj_setState(m, d, np.asarray(state["physics"], np.float64), mujoco.mjtState.mjSTATE_INTEGRATION)
        for k, v in state["attrs"].items():
            setattr(self.u, k, copy.deepcopy(v))
        mujoco.mj_forward(m, d)
        for site in self.u._target_site_config:  # goal markers, as step() places them
            self.u._set_pos_site(*site)
        self._steps = int(state["steps"])

    # --- internals ---
    def _render(self, renderer) -> np.ndarray:
        renderer.update_scene(self.u.data, camera=CAMERA)
        return np.ascontiguousarray(renderer.render()[::-1, ::-1])  # the camera is rolled upside down

    def _convert(self, raw: np.ndarray) -> dict[str, np.ndarray]:
        obs = {"state": np.asarray(raw, np.float32)}
        if self.obs_mode == "image":
            obs["img"] = self._render(self._obs_renderer)
            obs["agent_pos"] = obs["state"][:4].copy()  # hand xyz, gripper opening
        return obs


def _plain(v: Any) -> bool:
    """Per-episode attributes worth saving: arrays and numbers (not the model, data or renderers)."""
    return isinstance(v, np.ndarray | bool | int | float | np.floating | np.integer) or v is None


class MetaWorldExpert:
    """Meta-World's scripted policy for the task, acting on the current simulator state."""

    def __init__(self, env_name: str):
        _, policies = _import_metaworld()
        if env_name not in policies:
            raise ConfigError(f"task {PREFIX}{env_name}: the installed metaworld has no scripted policy for it")
        self.policy = policies[env_name]()

    def reset(self, env: gym.Env) -> None:
        pass

    def act(self, env: gym.Env) -> np.ndarray:
        with warnings.catch_warnings():  # "Constant(s) may be too high": the env clips, as intended
            warnings.simplefilter("ignore", UserWarning)
            a = self.policy.get_action(find_wrapper(env, MetaWorldEnv).expert_obs())
        return np.clip(np.asarray(a, np.float32), -1.0, 1.0)


class MetaWorldTask:
    """``metaworld/<env>``: ``obs='state'`` gives ``{"state": 39-dim}``; ``obs='image'`` adds
    ``img`` (camera ``corner2``) and ``agent_pos`` (hand xyz + gripper opening). ``render_quality``:
    ``full`` (the scene as shipped) or ``fast`` (see the module's notes on rendering on a CPU)."""

    def __init__(
        self, name: str, obs: str = "state", image_size: int = 96, render_size: int = 256, max_steps: int = MAX_STEPS,
        render_quality: str = "full",
    ):  # fmt: skip
        env_name = name.removeprefix(PREFIX)
        check_name(env_name)
        if obs not in ("state", "image"):
            raise ConfigError(f"task {name}: obs must be 'state' or 'image', got {obs!r}")
        if render_quality not in RENDER_QUALITY:
            raise ConfigError(
                f"task {name}: render_quality must be one of {list(RENDER_QUALITY)}, got {render_quality!r}"
            )
        self.render_quality = render_quality
        if not 1 <= int(max_steps) <= MAX_STEPS:
            raise ConfigError(f"task {name}: max_steps must be in [1, {MAX_STEPS}], got {max_steps}")
        self.env_name, self.obs, self.image_size, self.render_size = env_name, obs, image_size, render_size
        self.max_steps = int(max_steps)
        spec_obs = {"state": ObsSpec((OBS_DIM,))}
        if obs == "image":
            spec_obs |= {"img": ObsSpec((image_size, image_size, 3), "uint8", "rgb"), "agent_pos": ObsSpec((4,))}
        self.spec = TaskSpec(
            name=PREFIX + env_name + ("_image" if obs == "image" else ""),
            obs=spec_obs,
            action_dim=4,
            action_low=-np.ones(4, np.float32),
            action_high=np.ones(4, np.float32),
            max_steps=self.max_steps,
            extra={"fps": 20, "suite": "metaworld", "obs_mode": obs},
        )

    def make_env(self, render: bool = False) -> MetaWorldEnv:
        size = self.render_size if render else None
        return MetaWorldEnv(self.env_name, self.obs, self.image_size, size, self.max_steps, self.render_quality)

    def get_state(self, env: gym.Env) -> dict[str, Any]:
        return find_wrapper(env, MetaWorldEnv).get_sim_state()

    def set_state(self, env: gym.Env, state: dict[str, Any]) -> None:
        find_wrapper(env, MetaWorldEnv).set_sim_state(state)

    def expert(self) -> MetaWorldExpert:
        return MetaWorldExpert(self.env_name)
