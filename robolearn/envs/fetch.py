"""Fetch tasks (gymnasium-robotics v4: FetchReach, FetchPush, FetchPickAndPlace) and their experts.

The wrapper does three things and nothing else: it turns the goal-env observation into a dict
keyed like the zarr data, adds ``info["score"]``, and keeps MuJoCo's derived quantities (body
poses, site velocities) in sync with the integrated state after every step. The last point
matters for exact save/restore: ``mj_step`` leaves poses one substep stale, and the next action
is applied relative to those poses (``reset_mocap2body_xpos``), so a restored state would
otherwise drift. Reach and Push already re-run ``mj_forward`` after each step (their gripper is
blocked); PickAndPlace is made to do the same. The trajectory itself is unchanged, and state
and image observations see identical physics (rendering calls ``mj_forward`` too).
"""

from __future__ import annotations

import os
from typing import Any

os.environ.setdefault("MUJOCO_GL", "egl")  # headless offscreen rendering; must precede `import mujoco`

import gymnasium as gym  # noqa: E402
import mujoco  # noqa: E402
import numpy as np  # noqa: E402
from gymnasium.wrappers import TimeLimit  # noqa: E402

from robolearn.envs.base import EpisodeMode, ObsSpec, TaskSpec, TwoRenderers, find_wrapper  # noqa: E402
from robolearn.errors import ConfigError  # noqa: E402

GYM_IDS = {"fetch_reach": "FetchReach-v4", "fetch_push": "FetchPush-v4", "fetch_pick_place": "FetchPickAndPlace-v4"}
OBS_DIMS = {"fetch_reach": 10, "fetch_push": 25, "fetch_pick_place": 25}  # gymnasium-robotics `observation`
# A free camera in front-right of the robot that frames the whole table and the air above it
# (PickAndPlace goals reach 0.45 m above the table); chosen by eye and by checking that the
# red goal marker is visible for most seeds at 96x96.
CAMERA = {"lookat": (1.34, 0.75, 0.65), "distance": 1.35, "azimuth": 135.0, "elevation": -25.0}
MAX_STEPS = 50
STEP_M = 0.031  # metres the gripper moves per unit action per step (measured; 0.05 nominal, mocap lag)


def _register() -> None:
    try:  # gymnasium-robotics prints a notice about its Adroit tasks on import; robolearn uses none of them
        from farama_notifications import notifications

        notifications.pop("gymnasium_robotics", None)
    except ImportError:
        pass
    import gymnasium_robotics

    gym.register_envs(gymnasium_robotics)


class FetchEnv(TwoRenderers, gym.Wrapper):
    """Dict observations keyed like the dataset, ``score`` in info, exact save/restore."""

    def __init__(self, env: gym.Env, name: str, obs: str, image_size: int, render_size: int | None):
        super().__init__(env)
        u = env.unwrapped
        self._u, self._model, self._data = u, u.model, u.data
        self._time_limit = find_wrapper(env, TimeLimit)
        self.obs_mode = obs
        if not u.block_gripper:  # see module docstring: keep derived quantities fresh after each step
            base_cb = u._step_callback

            def step_callback() -> None:
                base_cb()
                mujoco.mj_forward(self._model, self._data)

            u._step_callback = step_callback
        self._cam = mujoco.MjvCamera()
        self._cam.lookat[:] = CAMERA["lookat"]
        self._cam.distance, self._cam.azimuth, self._cam.elevation = (
            CAMERA["distance"],
            CAMERA["azimuth"],
            CAMERA["elevation"],
        )
        self._obs_renderer = mujoco.Renderer(self._model, image_size, image_size) if obs == "image" else None
        self._video_renderer = mujoco.Renderer(self._model, render_size, render_size) if render_size else None
        spaces: dict[str, gym.spaces.Space] = {
            "state": gym.spaces.Box(-np.inf, np.inf, (OBS_DIMS[name] + 3,), np.float32)
        }
        if obs == "image":
            spaces["img"] = gym.spaces.Box(0, 255, (image_size, image_size, 3), np.uint8)
            spaces["agent_pos"] = gym.spaces.Box(-np.inf, np.inf, (5,), np.float32)
            spaces["goal"] = gym.spaces.Box(-np.inf, np.inf, (3,), np.float32)
        self.observation_space = gym.spaces.Dict(spaces)

    def reset(self, **kwargs) -> tuple[dict[str, np.ndarray], dict]:
        raw, info = self.env.reset(**kwargs)
        self._sync_goal_marker()
        return self._convert(raw), self._info(raw, info)

    def step(self, action) -> tuple[dict[str, np.ndarray], float, bool, bool, dict]:
        raw, reward, term, trunc, info = self.env.step(np.asarray(action, dtype=np.float32))
        return self._convert(raw), float(reward), term, trunc, self._info(raw, info)

    def get_obs(self) -> dict[str, np.ndarray]:
        """The observation of the current simulator state (e.g. right after ``set_state``)."""
        return self._convert(self._u._get_obs())

    def close(self) -> None:
        self.close_renderers()
        super().close()

    # --- save / restore (used by FetchTask.get_state / set_state) ---
    def get_sim_state(self) -> dict[str, Any]:
        phys = np.empty(mujoco.mj_stateSize(self._model, mujoco.mjtState.mjSTATE_INTEGRATION))
        mujoco.mj_getState(self._model, self._data, phys, mujoco.mjtState.mjSTATE_INTEGRATION)
        return {"physics": phys, "goal": self._u.goal.copy(), "elapsed_steps": self._time_limit._elapsed_steps}

    def set_sim_state(self, state: dict[str, Any]) -> None:
        mujoco.mj_setState(
            self._model, self._data, np.asarray(state["physics"], dtype=np.float64), mujoco.mjtState.mjSTATE_INTEGRATION
        )
        self._u.goal = np.array(state["goal"], dtype=np.float64)
        mujoco.mj_forward(self._model, self._data)
        self._time_limit._elapsed_steps = state["elapsed_steps"]
        self._sync_goal_marker()

    # --- internals ---
    def _sync_goal_marker(self) -> None:
        if self._obs_renderer is not None or self._video_renderer is not None:
            self._u._render_callback()  # moves the goal site; its mj_forward is idempotent here

    def _render(self, renderer: mujoco.Renderer) -> np.ndarray:
        renderer.update_scene(self._data, camera=self._cam)
        return renderer.render()

    def _convert(self, raw: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        obs = {"state": np.concatenate([raw["observation"], raw["desired_goal"]]).astype(np.float32)}
        if self.obs_mode == "image":
            o = raw["observation"]
            fingers = o[3:5] if o.shape[0] == 10 else o[9:11]  # Reach has no object block in between
            obs["img"] = self._render(self._obs_renderer)
            obs["agent_pos"] = np.concatenate([o[:3], fingers]).astype(np.float32)
            obs["goal"] = raw["desired_goal"].astype(np.float32)
        return obs

    def _info(self, raw: dict, info: dict) -> dict:
        ok = bool(self._u._is_success(raw["achieved_goal"], raw["desired_goal"]))  # reset's info lacks it
        return {**info, "is_success": ok, "score": float(ok)}


class FetchTask:
    """One Fetch task. ``obs='state'``: ``{"state": observation ++ desired_goal}``.
    ``obs='image'`` adds ``img`` (the CAMERA view), ``agent_pos`` (gripper xyz + the two finger
    joints) and ``goal``; ``state`` stays, so an image dataset can also train state policies
    and the expert's privileged view is recorded next to the pixels."""

    def __init__(
        self,
        name: str,
        obs: str = "state",
        image_size: int = 96,
        render_size: int = 256,
        expert: str = "scripted",
        max_steps: int = MAX_STEPS,
        expert_seed: int = 0,
    ):
        if name not in GYM_IDS:
            raise ConfigError(f"fetch task: expected one of {sorted(GYM_IDS)}, got {name!r}")
        if obs not in ("state", "image"):
            raise ConfigError(f"task {name}: obs must be 'state' or 'image', got {obs!r}")
        kinds = ("scripted", "multimodal") if name == "fetch_push" else ("scripted",)
        if expert not in kinds:
            raise ConfigError(f"task {name}: expert must be one of {kinds}, got {expert!r}")
        self.name, self.obs, self.image_size, self.render_size = name, obs, image_size, render_size
        self.expert_kind, self.expert_seed, self.max_steps = expert, expert_seed, max_steps
        spec_obs = {"state": ObsSpec((OBS_DIMS[name] + 3,))}
        if obs == "image":
            spec_obs |= {
                "img": ObsSpec((image_size, image_size, 3), "uint8", "rgb"),
                "agent_pos": ObsSpec((5,)),
                "goal": ObsSpec((3,)),
            }
        self.spec = TaskSpec(
            name=name if obs == "state" else f"{name}_image",
            obs=spec_obs,
            action_dim=4,
            action_low=-np.ones(4, np.float32),
            action_high=np.ones(4, np.float32),
            max_steps=max_steps,
            extra={"fps": 25, "gym_id": GYM_IDS[name], "obs_mode": obs},
        )

    def make_env(self, render: bool = False) -> FetchEnv:
        _register()
        size = max(self.image_size, self.render_size if render else 0)
        base = gym.make(
            GYM_IDS[self.name],
            max_episode_steps=self.max_steps,
            disable_env_checker=True,
            width=max(size, 480),
            height=max(size, 480),
        )  # sets the offscreen buffer size
        return FetchEnv(base, self.name, self.obs, self.image_size, self.render_size if render else None)

    def get_state(self, env: gym.Env) -> dict[str, Any]:
        return find_wrapper(env, FetchEnv).get_sim_state()

    def set_state(self, env: gym.Env, state: dict[str, Any]) -> None:
        find_wrapper(env, FetchEnv).set_sim_state(state)

    def expert(self, kind: str | None = None) -> FetchExpert:
        kind = kind or self.expert_kind
        if kind == "multimodal":
            if self.name != "fetch_push":
                raise ConfigError(f"task {self.name}: only fetch_push has a multimodal expert")
            return MultimodalPushExpert(seed=self.expert_seed)
        if kind != "scripted":
            raise ConfigError(f"task {self.name}: expert kind must be 'scripted' or 'multimodal', got {kind!r}")
        return {"fetch_reach": ReachExpert, "fetch_push": PushExpert, "fetch_pick_place": PickPlaceExpert}[self.name]()


# ---------------------------------------------------------------------------------------------
# Scripted experts. Each reads positions from the simulator and returns one action; no phase
# variable is kept between steps, the phase is recomputed from geometry every time, so the
# expert can label any state a learner reaches (DAgger) and recovers after noise.
# ---------------------------------------------------------------------------------------------
class _Sim:
    """Privileged positions read straight from MjData (cheap: no observation vector built)."""

    def __init__(self, env: gym.Env):
        u = env.unwrapped
        m, d = u.model, u.data
        site = lambda n: mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_SITE, n)  # noqa: E731
        self.grip = d.site_xpos[site("robot0:grip")].copy()
        self.goal = np.asarray(u.goal, dtype=np.float64)
        self.obj = d.site_xpos[site("object0")].copy() if u.has_object else None
        if not u.block_gripper:
            jl = m.jnt_qposadr[mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, "robot0:l_gripper_finger_joint")]
            jr = m.jnt_qposadr[mujoco.mj_name2id(m, mujoco.mjtObj.mjOBJ_JOINT, "robot0:r_gripper_finger_joint")]
            self.width = float(d.qpos[jl] + d.qpos[jr])


def _toward(target: np.ndarray, pos: np.ndarray, gain: float = 0.6) -> np.ndarray:
    """Action that moves ``gain`` of the way to ``target`` this step (clipped to the unit box)."""
    return np.clip((target - pos) * (gain / STEP_M), -1.0, 1.0)


def _action(xyz: np.ndarray, grip: float = 0.0) -> np.ndarray:
    return np.concatenate([xyz, [grip]]).astype(np.float32)


class FetchExpert:
    """Base: no per-episode randomness."""

    def reset(self, env: gym.Env) -> None:
        pass

    def act(self, env: gym.Env) -> np.ndarray:
        raise NotImplementedError


class ReachExpert(FetchExpert):
    def act(self, env: gym.Env) -> np.ndarray:
        s = _Sim(env)
        return _action(_toward(s.goal, s.grip))


class PushExpert(FetchExpert):
    """Go over the block to a point behind it on the goal->block line, lower, push toward the goal.

    Hysteresis without memory: a gripper already low behind the block keeps pushing with a looser
    lateral tolerance than the one needed to start descending, so small drifts are corrected by
    steering instead of a full re-approach.
    """

    back = 0.06  # pre-push point distance behind the block centre (half size 0.025 + finger)
    hover = 0.07  # travel height above the block centre
    done = 0.015  # stop pushing when the block is this close to the goal (success: 0.05)

    def act(self, env: gym.Env) -> np.ndarray:
        s = _Sim(env)
        u, v, ga, gl, dist = _push_frame(s)
        if dist < self.done:
            return _action(np.zeros(3))
        z_push, low = s.obj[2] - 0.005, s.grip[2] < s.obj[2] + 0.03
        if low and -0.1 < ga < -0.02 and abs(gl) < 0.02:
            return _action(_push_step(s, u, v, gl, dist, z_push))
        near = np.hypot(ga, gl) < 0.08
        if low and near:  # beside or in front of the block: lift straight up first
            return _action(_toward(np.r_[s.grip[:2], s.obj[2] + self.hover], s.grip))
        pre = s.obj[:2] - u * self.back
        if np.linalg.norm(s.grip[:2] - pre) < 0.012:
            return _action(_toward(np.r_[pre, z_push], s.grip))
        z = s.obj[2] + self.hover if (near or not low or _crosses(s, pre)) else s.grip[2]
        return _action(_toward(np.r_[pre, z], s.grip))


def _push_frame(s: _Sim) -> tuple[np.ndarray, np.ndarray, float, float, float]:
    """Unit vector block->goal (u), its left normal (v), gripper coordinates in that frame."""
    d = s.goal[:2] - s.obj[:2]
    dist = float(np.linalg.norm(d))
    u = d / max(dist, 1e-9)
    v = np.array([-u[1], u[0]])
    rel = s.grip[:2] - s.obj[:2]
    return u, v, float(rel @ u), float(rel @ v), dist


def _push_step(s: _Sim, u: np.ndarray, v: np.ndarray, gl: float, dist: float, z_push: float) -> np.ndarray:
    """Advance along the block->goal line, steering back onto it; slow down near the goal."""
    speed = min(1.0, dist / STEP_M * 0.7 + 0.1)
    xy = u * speed - v * np.clip(gl / STEP_M, -1.0, 1.0) * 0.8
    z = np.clip((z_push - s.grip[2]) / STEP_M * 0.6, -1.0, 1.0)
    return np.clip(np.r_[xy, z], -1.0, 1.0)


def _crosses(s: _Sim, pre: np.ndarray, clearance: float = 0.06) -> bool:
    """Would a straight low move from the gripper to ``pre`` pass within ``clearance`` of the block?"""
    a, b, p = s.grip[:2], pre, s.obj[:2]
    ab = b - a
    t = np.clip((p - a) @ ab / max(ab @ ab, 1e-12), 0.0, 1.0)
    return bool(np.linalg.norm(a + t * ab - p) < clearance)


class MultimodalPushExpert(EpisodeMode, FetchExpert):
    """Push expert with two distinct routes to the pre-push point: it circles the block at
    pushing height, counter-clockwise ("left") or clockwise ("right") in the block->goal frame,
    until it is behind the block. The direction is drawn per episode at ``reset``; given
    (simulator state, direction) the action is deterministic."""

    modes = ("left", "right")
    back, orbit, done = 0.06, 0.075, 0.015

    def __init__(self, seed: int = 0):
        self.init_modes(seed)

    def act(self, env: gym.Env) -> np.ndarray:
        s = _Sim(env)
        u, v, ga, gl, dist = _push_frame(s)
        if dist < self.done:
            return _action(np.zeros(3))
        z_push = s.obj[2] - 0.005
        if -0.1 < ga < -0.02 and abs(gl) < 0.02:
            return _action(_push_step(s, u, v, gl, dist, z_push))
        phi, r = np.arctan2(gl, ga), np.hypot(ga, gl)  # phi = +-pi: straight behind the block
        if abs(phi) > np.pi - 0.35:
            target = s.obj[:2] - u * self.back
        else:  # orbit: advance the angle toward pi (left) or -pi (right), converge on the orbit radius
            sgn = 1.0 if self.mode(env) == "left" else -1.0
            phi_t = np.clip(phi + sgn * 0.7, -np.pi, np.pi)
            r_t = max(self.orbit, r - 0.03)
            target = s.obj[:2] + r_t * (np.cos(phi_t) * u + np.sin(phi_t) * v)
        return _action(_toward(np.r_[target, z_push], s.grip))


class PickPlaceExpert(FetchExpert):
    """Above the block with the gripper open, descend, close, then carry the block to the goal."""

    hover = 0.08

    def act(self, env: gym.Env) -> np.ndarray:
        s = _Sim(env)
        rel = s.obj - s.grip
        dxy, dz = float(np.linalg.norm(rel[:2])), float(rel[2])
        held = dxy < 0.02 and abs(dz) < 0.02 and s.width < 0.056
        if held:
            return _action(_toward(s.grip + (s.goal - s.obj), s.grip), -1.0)
        if np.linalg.norm(s.obj - s.goal) < 0.02:  # already placed (goal on the table), step away
            return _action(np.zeros(3), 1.0)
        if dxy < 0.012 and abs(dz) < 0.012:  # in the grasp pose: close
            return _action(_toward(s.obj, s.grip), -1.0)
        high = s.grip[2] > s.obj[2] + 0.06
        if dxy < (0.012 if high else 0.02):  # above the block (looser once descending): go down once open
            z = s.obj[2] if s.width > 0.08 else s.grip[2]
            return _action(_toward(np.r_[s.obj[:2], z], s.grip), 1.0)
        if dxy < 0.045 and not high:  # low beside the block: lift first, fingers would hit it
            return _action(_toward(np.r_[s.grip[:2], s.obj[2] + self.hover], s.grip), 1.0)
        return _action(_toward(np.r_[s.obj[:2], s.obj[2] + self.hover], s.grip), 1.0)
