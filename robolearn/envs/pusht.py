"""Push-T (gym-pusht ``PushT-v0``): push a T-shaped block into a fixed target pose.

Observations match the human dataset (``pusht_cchi_v7_replay.zarr``):

* ``pusht`` (``obs="state"``): ``state`` = [agent x, y, block x, y, block angle mod 2pi] with
  the block position being the body origin, exactly what the dataset recorded. With
  ``angle="cos_sin"`` the angle becomes (cos, sin): [agent x, y, block x, y, cos, sin]. The raw
  angle jumps at 0/2pi, 45 degrees from the goal pose (pi/4), and the demonstrations cross
  that jump often; cos/sin is continuous.
* ``pusht_keypoints`` (``obs="keypoints"``): Diffusion Policy's low-dim observation, the 9
  block keypoints of the dataset's ``keypoint`` key (9, 2) plus ``agent_pos`` (2,): 20 numbers.
* ``pusht_image`` (``obs="image"``): the 96x96 render plus the agent position.

Actions are absolute agent targets in pixels, [0, 512]^2. There is no scripted expert:
demonstrations come from the dataset.

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

from robolearn.envs.base import ObsSpec, TaskSpec, find_wrapper  # noqa: E402
from robolearn.errors import ConfigError  # noqa: E402

MAX_STEPS = 300
SUCCESS_COVERAGE = 0.95
ANGLES = ("raw", "cos_sin")
OBS_MODES = ("state", "keypoints", "image")

# The 9 keypoints of the T in the block's body frame (origin = the body position the dataset
# records, x/y in pixels). They are Diffusion Policy's keypoint map (farthest-point samples of
# the T's outline); recovered here from the human dataset, whose ``keypoint`` rows are this
# map rotated by the block angle and moved to the block position (median residual 2e-5 px).
BLOCK_KEYPOINTS = np.array(
    [
        [9.269787, 90.04097],
        [-60.98347, -1.1867294],
        [60.912758, -1.393364],
        [-0.27050352, 25.543625],
        [-14.064926, 122.81586],
        [39.00274, 32.857403],
        [-39.966415, 32.729656],
        [-16.824345, 62.86318],
        [23.541462, -1.7002878],
    ]
)


def block_keypoints(x: float, y: float, angle: float) -> np.ndarray:
    """(9, 2) world keypoints of a block at body position (x, y) and ``angle``."""
    c, s = np.cos(angle), np.sin(angle)
    rot = np.array([[c, -s], [s, c]])
    return (BLOCK_KEYPOINTS @ rot.T + np.array([x, y])).astype(np.float32)


class PushTEnv(gym.Wrapper):
    """Dict observations keyed like the dataset; ``coverage`` of the target pose, ``score`` =
    min(coverage / 0.95, 1) (Diffusion Policy's reported metric)."""

    def __init__(self, env: gym.Env, spec: TaskSpec, obs: str, angle: str = "raw", render: bool = False):
        super().__init__(env)
        self._render_enabled = render
        self._u = env.unwrapped
        self._time_limit = find_wrapper(env, TimeLimit)
        self.obs_mode, self.angle = obs, angle
        self.observation_space = gym.spaces.Dict(
            {
                k: gym.spaces.Box(0, 255, s.shape, np.uint8)
                if s.kind == "rgb"
                else gym.spaces.Box(-np.inf, np.inf, s.shape, np.float32)
                for k, s in spec.obs.items()
            }
        )

    def reset(self, **kwargs) -> tuple[dict[str, np.ndarray], dict]:
        _, info = self.env.reset(**kwargs)
        return self.get_obs(), self._info(info, self._u._get_coverage())

    def step(self, action) -> tuple[dict[str, np.ndarray], float, bool, bool, dict]:
        _, reward, term, trunc, info = self.env.step(np.asarray(action, dtype=np.float64))
        return self.get_obs(), float(reward), term, trunc, self._info(info, info["coverage"])

    def get_obs(self) -> dict[str, np.ndarray]:
        u = self._u
        pos, blk = u.agent.position, u.block.position
        agent_pos = np.array(pos, dtype=np.float32)
        if self.obs_mode == "image":
            return {"img": u._render(visualize=False), "agent_pos": agent_pos}
        if self.obs_mode == "keypoints":
            return {"keypoint": block_keypoints(blk[0], blk[1], u.block.angle), "agent_pos": agent_pos}
        a = u.block.angle
        ang = [a % (2 * np.pi)] if self.angle == "raw" else [np.cos(a), np.sin(a)]
        return {"state": np.array([pos[0], pos[1], blk[0], blk[1], *ang], dtype=np.float32)}

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
        state = {
            "space": space,
            "block_pose": (*u.block.position, u.block.angle),
            "elapsed_steps": self._time_limit._elapsed_steps,
            "last_action": None if u._last_action is None else np.array(u._last_action),
        }
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
        return {
            **info,
            "coverage": float(coverage),
            "is_success": bool(coverage > SUCCESS_COVERAGE),
            "score": float(score),
        }


def _width(shape: pymunk.Poly) -> float:
    xs = [v.x for v in shape.get_vertices()]
    return max(xs) - min(xs)


class PushTTask:
    """``pusht`` (state), ``pusht_keypoints`` (9 block keypoints + agent position) or
    ``pusht_image`` (96x96 image + agent position).

    ``spec.data_keys`` says how each observation is read from the human dataset (the entries a
    task config's ``obs_keys`` defaults to): the raw-angle state is ``state`` as stored, the
    cos/sin state is derived from it, keypoints are the dataset's ``keypoint`` key."""

    def __init__(
        self,
        obs: str = "state",
        angle: str = "raw",
        image_size: int = 96,
        render_size: int = 384,
        max_steps: int = MAX_STEPS,
    ):
        if obs not in OBS_MODES:
            raise ConfigError(f"task pusht: obs must be one of {list(OBS_MODES)}, got {obs!r}")
        if angle not in ANGLES:
            raise ConfigError(f"task pusht: angle must be one of {list(ANGLES)}, got {angle!r}")
        if angle != "raw" and obs != "state":
            raise ConfigError(f"task pusht: angle={angle!r} applies to obs='state' only, got obs={obs!r}")
        self.obs, self.angle = obs, angle
        self.image_size, self.render_size, self.max_steps = image_size, render_size, max_steps
        if obs == "state":
            spec_obs = {"state": ObsSpec((5,) if angle == "raw" else (6,))}
            data_keys = ("state",) if angle == "raw" else ("state=cos_sin(state, 4)",)
        elif obs == "keypoints":
            spec_obs = {"keypoint": ObsSpec((9, 2)), "agent_pos": ObsSpec((2,))}
            data_keys = ("keypoint", "agent_pos=state[0:2]")
        else:
            spec_obs = {"img": ObsSpec((image_size, image_size, 3), "uint8", "rgb"), "agent_pos": ObsSpec((2,))}
            data_keys = ("img", "agent_pos=state[0:2]")
        name = {"state": "pusht", "keypoints": "pusht_keypoints", "image": "pusht_image"}[obs]
        self.spec = TaskSpec(
            name=name,
            obs=spec_obs,
            action_dim=2,
            action_low=np.zeros(2, np.float32),
            action_high=np.full(2, 512.0, np.float32),
            max_steps=max_steps,
            extra={"fps": 10, "success_coverage": SUCCESS_COVERAGE},
            data_keys=data_keys,
        )

    def make_env(self, render: bool = False) -> PushTEnv:
        import gym_pusht  # noqa: F401  (registers gym_pusht/PushT-v0)

        base = gym.make(
            "gym_pusht/PushT-v0",
            max_episode_steps=self.max_steps,
            disable_env_checker=True,
            obs_type="state",
            render_mode="rgb_array",
            observation_width=self.image_size,
            observation_height=self.image_size,
            visualization_width=self.render_size,
            visualization_height=self.render_size,
        )
        return PushTEnv(base, self.spec, self.obs, self.angle, render)

    def get_state(self, env: gym.Env) -> dict[str, Any]:
        return find_wrapper(env, PushTEnv).get_sim_state()

    def set_state(self, env: gym.Env, state: dict[str, Any]) -> None:
        find_wrapper(env, PushTEnv).set_sim_state(state)

    def reset_to_state(self, env: gym.Env, state5: np.ndarray) -> tuple[dict[str, np.ndarray], dict]:
        return find_wrapper(env, PushTEnv).reset_to_state(state5)

    def expert(self, kind: str | None = None) -> None:
        return None

    # --- corrective labels (robolearn correct): agent and block pose, the angle as (cos, sin) ---
    correction_dims = (0, 1)  # the agent's position: the block moves only when pushed

    def correction_states(self, arrays: dict[str, np.ndarray]) -> np.ndarray:
        s = np.asarray(arrays["state"], np.float64)
        return np.concatenate([s[:, :4], np.cos(s[:, 4:5]), np.sin(s[:, 4:5])], axis=1)

    def correction_state(self, env: gym.Env) -> np.ndarray:
        u = find_wrapper(env, PushTEnv)._u
        a = u.block.angle
        return np.array([*u.agent.position, *u.block.position, np.cos(a), np.sin(a)], np.float64)

    def set_correction_state(self, env: gym.Env, s: np.ndarray) -> None:
        """Agent and block where ``s`` says, at rest (the dataset records no velocities)."""
        s = np.asarray(s, np.float64)
        self.reset_to_state(env, np.array([*s[:4], np.arctan2(s[5], s[4])]))

    def dataset_row(self, env: gym.Env) -> dict[str, np.ndarray]:
        """The current state in the Push-T dataset's keys: ``state`` and ``keypoint``."""
        u = find_wrapper(env, PushTEnv)._u
        (bx, by), a = u.block.position, u.block.angle
        state = np.array([*u.agent.position, bx, by, a % (2 * np.pi)], np.float32)
        return {"state": state, "keypoint": block_keypoints(bx, by, a)}
