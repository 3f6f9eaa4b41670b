"""Push-T (gym-pusht ``PushT-v0``): push a T-shaped block into a fixed target pose.

Observations match the human dataset (``pusht_cchi_v7_replay.zarr``): ``state`` is
[agent x, y, block x, y, block angle mod 2pi] with the block position being the body origin,
exactly what the dataset recorded. The image variant gives the 96x96 render plus the agent
position. Actions are absolute agent targets in pixels, [0, 512]^2. There is no scripted
expert: demonstrations come from the dataset.

gym-pusht's own ``reset_to_state`` sets the block position before its angle, and the angle is
applied about the centre of gravity, so the block lands elsewhere than asked. ``reset_to_state``
here sets the angle first, so the env's first observation equals the given state.
"""
from __future__ import annotations

import os
import pickle
from typing import Any

os.environ.setdefault("PYGAME_HIDE_SUPPORT_PROMPT", "1")

import gymnasium as gym  # noqa: E402
import numpy as np  # noqa: E402
import pymunk  # noqa: E402
from gymnasium.wrappers import TimeLimit  # noqa: E402

from envs.base import ObsSpec, TaskSpec  # noqa: E402
from robolearn.errors import ConfigError  # noqa: E402

MAX_STEPS = 300
SUCCESS_COVERAGE = 0.95


class PushTEnv(gym.Wrapper):
    """Dict observations keyed like the dataset; ``coverage`` of the target pose, ``score`` =
    min(coverage / 0.95, 1) (Diffusion Policy's reported metric)."""

    def __init__(self, env: gym.Env, obs: str, image_size: int, render: bool = False):
        super().__init__(env)
        self._render_enabled = render
        self._u = env.unwrapped
        self._time_limit = _find(env, TimeLimit)
        self.obs_mode = obs
        spaces: dict[str, gym.spaces.Space] = {"state": gym.spaces.Box(-np.inf, np.inf, (5,), np.float32)}
        if obs == "image":
            spaces = {"img": gym.spaces.Box(0, 255, (image_size, image_size, 3), np.uint8),
                      "agent_pos": gym.spaces.Box(-np.inf, np.inf, (2,), np.float32)}
        self.observation_space = gym.spaces.Dict(spaces)

    def reset(self, **kwargs) -> tuple[dict[str, np.ndarray], dict]:
        _, info = self.env.reset(**kwargs)
        return self.get_obs(), self._info(info, self._u._get_coverage())

    def step(self, action) -> tuple[dict[str, np.ndarray], float, bool, bool, dict]:
        _, reward, term, trunc, info = self.env.step(np.asarray(action, dtype=np.float64))
        return self.get_obs(), float(reward), term, trunc, self._info(info, info["coverage"])

    def get_obs(self) -> dict[str, np.ndarray]:
        u = self._u
        if self.obs_mode == "image":
            return {"img": u._render(visualize=False), "agent_pos": np.array(u.agent.position, dtype=np.float32)}
        pos, blk = u.agent.position, u.block.position
        return {"state": np.array([pos[0], pos[1], blk[0], blk[1], u.block.angle % (2 * np.pi)], dtype=np.float32)}

    def render(self) -> np.ndarray | None:
        """A video frame with the action marker, or None when made without rendering."""
        return self._u.render() if self._render_enabled else None

    def reset_to_state(self, state: np.ndarray) -> tuple[dict[str, np.ndarray], dict]:
        """Start an episode at [agent x, y, block x, y, angle] exactly as the dataset recorded it."""
        s = np.asarray(state, dtype=np.float64)
        self.env.reset(options={"reset_to_state": s})
        u = self._u
        u.block.angle = float(s[4])  # angle first: it rotates about the centre of gravity
        u.block.position = (float(s[2]), float(s[3]))
        u.agent.position = (float(s[0]), float(s[1]))
        u.block.velocity = u.agent.velocity = (0.0, 0.0)
        u.block.angular_velocity = 0.0
        for shape in u.space.shapes:  # shapes cache world vertices; refresh them for rendering
            shape.cache_bb()
        return self.get_obs(), self._info({}, u._get_coverage())

    def get_sim_state(self) -> dict[str, Any]:
        """The whole pymunk space, contact cache included.

        A space rebuilt from a pickle solves its contacts in a different order than the live
        one (its collision tree is built afresh), which moves the block by ~0.01 px per step.
        So the live env also switches to a space rebuilt from the same bytes: continuing now
        and continuing after ``set_sim_state`` are then bit-identical."""
        u = self._u
        handler = u.collision_handeler
        cb, handler._post_solve = handler._post_solve, None
        try:
            space = pickle.dumps(u.space)
        finally:
            handler._post_solve = cb
        state = {"space": space, "block_pose": (*u.block.position, u.block.angle),
                 "elapsed_steps": self._time_limit._elapsed_steps,
                 "last_action": None if u._last_action is None else np.array(u._last_action)}
        self.set_sim_state(state)
        return state

    def set_sim_state(self, state: dict[str, Any]) -> None:
        u = self._u
        space: pymunk.Space = pickle.loads(state["space"])
        u.space = space
        u.agent = next(b for b in space.bodies if b.body_type == pymunk.Body.KINEMATIC)
        u.block = next(b for b in space.bodies if b.body_type == pymunk.Body.DYNAMIC)
        # pymunk restores a body's position before its centre of gravity, which shifts the block
        # by the cog offset; put the body origin back where it was
        x, y, angle = state["block_pose"]
        u.block.angle = angle
        u.block.position = (x, y)
        for shape in space.shapes:
            shape.cache_bb()
        # keep the keypoint order of gym-pusht (cross bar first, then stem): the bar is the wide one
        u._block_shapes = sorted(u.block.shapes, key=lambda sh: -_width(sh))
        u.collision_handeler = space.add_collision_handler(0, 0)
        u.collision_handeler.post_solve = u._handle_collision
        u._last_action = state["last_action"]
        self._time_limit._elapsed_steps = state["elapsed_steps"]

    @staticmethod
    def _info(info: dict, coverage: float) -> dict:
        # score is Diffusion Policy's Push-T metric: coverage / 0.95 clipped to [0, 1], so the
        # episode maximum is comparable with the paper's 0.91-0.95; the raw coverage stays too.
        score = min(max(coverage / SUCCESS_COVERAGE, 0.0), 1.0)
        return {**info, "coverage": float(coverage), "is_success": bool(coverage > SUCCESS_COVERAGE), "score": float(score)}


def _width(shape: pymunk.Poly) -> float:
    xs = [v.x for v in shape.get_vertices()]
    return max(xs) - min(xs)


def _find(env: gym.Env, cls: type) -> Any:
    e = env
    while not isinstance(e, cls):
        e = e.env
    return e


class PushTTask:
    """``pusht`` (state) or ``pusht_image`` (96x96 image + agent position)."""

    def __init__(self, obs: str = "state", image_size: int = 96, render_size: int = 384,
                 max_steps: int = MAX_STEPS):
        if obs not in ("state", "image"):
            raise ConfigError(f"task pusht: obs must be 'state' or 'image', got {obs!r}")
        self.obs, self.image_size, self.render_size, self.max_steps = obs, image_size, render_size, max_steps
        spec_obs = {"state": ObsSpec((5,))} if obs == "state" else \
            {"img": ObsSpec((image_size, image_size, 3), "uint8", "rgb"), "agent_pos": ObsSpec((2,))}
        self.spec = TaskSpec(name="pusht" if obs == "state" else "pusht_image", obs=spec_obs, action_dim=2,
                             action_low=np.zeros(2, np.float32), action_high=np.full(2, 512.0, np.float32),
                             max_steps=max_steps, extra={"fps": 10, "success_coverage": SUCCESS_COVERAGE})

    def make_env(self, render: bool = False) -> PushTEnv:
        import gym_pusht  # noqa: F401  (registers gym_pusht/PushT-v0)

        base = gym.make("gym_pusht/PushT-v0", max_episode_steps=self.max_steps, disable_env_checker=True,
                        obs_type="state", render_mode="rgb_array", observation_width=self.image_size,
                        observation_height=self.image_size, visualization_width=self.render_size,
                        visualization_height=self.render_size)
        return PushTEnv(base, self.obs, self.image_size, render)

    def get_state(self, env: gym.Env) -> dict[str, Any]:
        return _find(env, PushTEnv).get_sim_state()

    def set_state(self, env: gym.Env, state: dict[str, Any]) -> None:
        _find(env, PushTEnv).set_sim_state(state)

    def reset_to_state(self, env: gym.Env, state5: np.ndarray) -> tuple[dict[str, np.ndarray], dict]:
        return _find(env, PushTEnv).reset_to_state(state5)

    def expert(self, kind: str | None = None) -> None:
        return None
