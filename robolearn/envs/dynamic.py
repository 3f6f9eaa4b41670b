"""Dynamic tasks: the world moves while the policy thinks, so a stale action can miss.

Push-T and the Fetch tasks are quasi-static: an action computed from an old observation is still
about right. These two MuJoCo tasks are not, which is where the choice of chunk executor under
inference delay (naive async, RTC, BID, temporal ensembling) decides success:

* ``cartpole``: balance a pole on a cart (an unstable system, 50 Hz control of the cart's force)
  from a random tilt and random velocities, for 4 s without the pole passing 0.4 rad or the cart
  leaving the track. Expert: LQR on the simulator's own linearization (finite differences of the
  MuJoCo transition at the upright state), discrete Riccati solved by iteration.
* ``catch``: a puck slides across a table toward the near edge, on a curved path (a constant
  lateral force, different per episode); the agent moves a paddle (velocity-commanded in x, y)
  and must touch the puck before it crosses the edge. Expert: predicts where the puck crosses
  the paddle's line from its privileged position, velocity and force, and servoes the paddle
  there; it acts only on the current state, so it labels any state a learner reaches.

Both: ``obs='state'`` gives ``{"state": ...}``; ``obs='image'`` adds ``img`` (a fixed camera,
``image_size`` square, uint8) and ``agent_pos`` (what the agent's own body is: cart position /
paddle position), as for the other tasks. Save/restore is exact (MuJoCo's integration state plus
the episode's step count and puck force). ``info``: ``is_success`` (at the end of a survived
cartpole episode; at the touch for catch) and ``score`` (the fraction of the episode survived /
1 at the touch, else how close the paddle came).
"""

from __future__ import annotations

import collections
import copy
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np

from robolearn.envs.base import EpisodeMode
from robolearn.errors import ConfigError
from robolearn.spec import ObsSpec, TaskSpec

CARTPOLE_XML = """
<mujoco model="cartpole">
  <option timestep="0.01"/>
  <visual><global offwidth="512" offheight="512"/></visual>
  <worldbody>
    <light pos="0 -2 3" dir="0 0.5 -1"/>
    <camera name="side" pos="0 -3.2 0.3" xyaxes="1 0 0 0 0 1"/>
    <geom name="floor" type="plane" size="3 1 0.1" pos="0 0 -0.3" rgba=".92 .92 .92 1"/>
    <geom name="rail" type="box" size="1.6 0.01 0.01" rgba=".3 .3 .3 1" contype="0" conaffinity="0"/>
    <body name="cart">
      <joint name="slider" type="slide" axis="1 0 0" damping="0.2"/>
      <geom name="cart" type="box" size="0.16 0.1 0.07" mass="1" rgba=".2 .4 .8 1" contype="0" conaffinity="0"/>
      <body name="pole">
        <joint name="hinge" type="hinge" axis="0 1 0" damping="0.005"/>
        <geom name="pole" type="capsule" fromto="0 0 0 0 0 {pole}" size="0.03" mass="0.25" rgba=".85 .3 .2 1"
              contype="0" conaffinity="0"/>
      </body>
    </body>
  </worldbody>
  <actuator><motor joint="slider" gear="12" ctrlrange="-1 1" ctrllimited="true"/></actuator>
</mujoco>
"""

CATCH_XML = """
<mujoco model="catch">
  <option timestep="0.005" gravity="0 0 0"/>
  <visual><global offwidth="512" offheight="512"/></visual>
  <worldbody>
    <light pos="0 0.5 3" dir="0 0 -1"/>
    <camera name="top" pos="0 0.5 1.55" xyaxes="1 0 0 0 1 0"/>
    <geom name="table" type="box" size="0.55 0.55 0.01" pos="0 0.5 -0.03" rgba=".85 .8 .7 1" contype="0"
          conaffinity="0"/>
    <geom name="edge" type="box" size="0.55 0.004 0.001" pos="0 0 -0.02" rgba=".8 .1 .1 1" contype="0"
          conaffinity="0"/>
    <body name="puck" pos="0 0.9 0">
      <joint name="puck_x" type="slide" axis="1 0 0"/>
      <joint name="puck_y" type="slide" axis="0 1 0"/>
      <geom name="puck" type="cylinder" size="0.035 0.015" mass="0.1" rgba=".1 .1 .1 1"/>
    </body>
    <body name="paddle" pos="0 0.12 0">
      <joint name="paddle_x" type="slide" axis="1 0 0" damping="1"/>
      <joint name="paddle_y" type="slide" axis="0 1 0" damping="1"/>
      <geom name="paddle" type="box" size="{half_width} 0.015 0.015" mass="0.5" rgba=".2 .4 .8 1"/>
    </body>
  </worldbody>
  <actuator>
    <motor joint="paddle_x" gear="{gear}" ctrlrange="-1 1" ctrllimited="true"/>
    <motor joint="paddle_y" gear="{gear}" ctrlrange="-1 1" ctrllimited="true"/>
  </actuator>
</mujoco>
"""


class MjTaskEnv(gym.Env):
    """A MuJoCo model stepped ``frame_skip`` times per action, with dict observations keyed like
    the task's datasets, exact save/restore and optional offscreen camera images."""

    metadata = {"render_modes": ["rgb_array"]}

    def __init__(self, task: DynamicTask, render: bool):
        self.task = task
        self.model = mujoco.MjModel.from_xml_string(task.xml)
        self.data = mujoco.MjData(self.model)
        self.t = 0
        self.params: dict[str, Any] = {}
        self._obs_r = mujoco.Renderer(self.model, task.image_size, task.image_size) if task.obs == "image" else None
        self._video_r = mujoco.Renderer(self.model, task.render_size, task.render_size) if render else None
        self.action_space = gym.spaces.Box(task.spec.action_low, task.spec.action_high, dtype=np.float32)
        self.observation_space = gym.spaces.Dict(
            {
                k: gym.spaces.Box(0, 255, s.shape, np.uint8)
                if s.kind == "rgb"
                else gym.spaces.Box(-np.inf, np.inf, s.shape, np.float32)
                for k, s in task.spec.obs.items()
            }
        )

    def reset(self, *, seed: int | None = None, options=None):
        super().reset(seed=seed)
        mujoco.mj_resetData(self.model, self.data)
        self.t = 0
        self.params = self.task.init_episode(self.model, self.data, self.np_random)
        self.kick_rng = np.random.default_rng(self.np_random.integers(2**63))  # the episode's disturbances
        mujoco.mj_forward(self.model, self.data)
        self.done_info = {"is_success": False, "score": 0.0}
        return self.get_obs(), dict(self.done_info)

    def step(self, action):
        a = np.clip(np.asarray(action, np.float64), self.task.spec.action_low, self.task.spec.action_high)
        self.data.ctrl[:] = a
        self.task.before_step(self.model, self.data, self.params, self.kick_rng)
        for _ in range(self.task.frame_skip):
            self.task.before_substep(self.model, self.data, self.params)
            mujoco.mj_step(self.model, self.data)
        self.t += 1
        failed, success, score = self.task.judge(self.model, self.data, self.params, self.t)
        trunc = self.t >= self.task.spec.max_steps and not (failed or success)
        info = {"is_success": bool(success), "score": float(score)}
        return self.get_obs(), 0.0, bool(failed or success), bool(trunc), info

    def get_obs(self) -> dict[str, np.ndarray]:
        obs = {"state": self.task.state(self.model, self.data, self.params).astype(np.float32)}
        if self._obs_r is not None:
            obs["img"] = self._render(self._obs_r)
            obs["agent_pos"] = self.task.agent_pos(self.data).astype(np.float32)
        return obs

    def render(self):
        return self._render(self._video_r) if self._video_r is not None else None

    def _render(self, r: mujoco.Renderer) -> np.ndarray:
        r.update_scene(self.data, camera=self.task.camera)
        return r.render()

    # --- save / restore ---
    def get_sim_state(self) -> dict[str, Any]:
        phys = np.empty(mujoco.mj_stateSize(self.model, mujoco.mjtState.mjSTATE_INTEGRATION))
        mujoco.mj_getState(self.model, self.data, phys, mujoco.mjtState.mjSTATE_INTEGRATION)
        return {
            "physics": phys,
            "t": self.t,
            "params": {k: np.copy(v) for k, v in self.params.items()},
            "rng": copy.deepcopy(self.kick_rng.bit_generator.state),
        }

    def set_sim_state(self, state: dict[str, Any]) -> None:
        mujoco.mj_setState(
            self.model, self.data, np.asarray(state["physics"], np.float64), mujoco.mjtState.mjSTATE_INTEGRATION
        )
        self.t = int(state["t"])
        self.params = {k: np.copy(v) for k, v in state["params"].items()}
        self.kick_rng = np.random.default_rng()
        self.kick_rng.bit_generator.state = copy.deepcopy(state["rng"])
        mujoco.mj_forward(self.model, self.data)

    def close(self):
        for r in (self._obs_r, self._video_r):
            if r is not None:
                r.close()
        self._obs_r = self._video_r = None


class DynamicTask:
    """What the two tasks share: spec, envs, save/restore. Subclasses give the model, the
    episode's random start, the observation, the judge and the expert."""

    xml: str
    camera: str
    frame_skip: int
    state_dim: int
    agent_dim: int
    action_dim: int
    max_steps: int
    fps: int

    def __init__(self, obs: str = "state", image_size: int = 96, render_size: int = 256):
        if obs not in ("state", "image"):
            raise ConfigError(f"task {self.name}: obs must be 'state' or 'image', got {obs!r}")
        if isinstance(image_size, bool) or not isinstance(image_size, int) or image_size < 8:
            raise ConfigError(f"task {self.name}: image_size must be an int >= 8, got {image_size!r}")
        self.obs, self.image_size, self.render_size = obs, image_size, render_size
        spec_obs = {"state": ObsSpec((self.state_dim,))}
        if obs == "image":
            spec_obs |= {
                "img": ObsSpec((image_size, image_size, 3), "uint8", "rgb"),
                "agent_pos": ObsSpec((self.agent_dim,)),
            }
        self.spec = TaskSpec(
            name=self.name if obs == "state" else f"{self.name}_image",
            obs=spec_obs,
            action_dim=self.action_dim,
            action_low=-np.ones(self.action_dim, np.float32),
            action_high=np.ones(self.action_dim, np.float32),
            max_steps=self.max_steps,
            extra={"fps": self.fps, "obs_mode": obs, "dynamic": True},
            data_keys=("state",) if obs == "state" else ("img", "agent_pos"),
        )

    EXPERTS: tuple[str, ...] = ()

    def _set_expert(self, expert: str, expert_seed: int) -> None:
        """The expert kind (one of ``EXPERTS``; a multimodal one draws its mode from ``expert_seed``)."""
        if expert not in self.EXPERTS:
            raise ConfigError(f"task {self.name}: expert must be one of {' | '.join(self.EXPERTS)}, got {expert!r}")
        self.expert_kind, self.expert_seed = expert, int(expert_seed)

    def make_env(self, render: bool = False) -> MjTaskEnv:
        return MjTaskEnv(self, render)

    def get_state(self, env: gym.Env) -> dict[str, Any]:
        return env.unwrapped.get_sim_state()

    # --- corrective labels (robolearn correct): the dataset's state vector is the whole state ---
    def correction_states(self, arrays: dict[str, np.ndarray]) -> np.ndarray:
        return np.asarray(arrays["state"], np.float64)

    def correction_state(self, env: gym.Env) -> np.ndarray:
        u = env.unwrapped
        return self.state(u.model, u.data, u.params).astype(np.float64)

    def set_correction_state(self, env: gym.Env, s: np.ndarray) -> None:
        """Put the simulator at state vector ``s``; the episode's disturbances restart from a fixed
        seed, so every action tried from ``s`` meets the same world."""
        u = env.unwrapped
        self.write_state(u.model, u.data, u.params, np.asarray(s, np.float64))
        u.t = min(int(round(u.data.time * self.fps)), self.max_steps - 1)
        u.kick_rng = np.random.default_rng(0)
        mujoco.mj_forward(u.model, u.data)

    def dataset_row(self, env: gym.Env) -> dict[str, np.ndarray]:
        return {"state": self.correction_state(env).astype(np.float32)}

    def set_state(self, env: gym.Env, state: dict[str, Any]) -> None:
        env.unwrapped.set_sim_state(state)

    # hooks
    def init_episode(self, model, data, rng: np.random.Generator) -> dict[str, Any]:
        raise NotImplementedError

    def before_step(self, model, data, params, rng: np.random.Generator) -> None:
        """Once per control step, before the physics: random disturbances of the episode."""

    def before_substep(self, model, data, params) -> None:
        pass


# ---- cartpole --------------------------------------------------------------------------------
class CartPoleTask(DynamicTask):
    name = "cartpole"
    correction_dims = (2,)  # the cart's velocity: what one control step can undo
    xml = CARTPOLE_XML.replace("{pole}", "0.5")
    camera = "side"
    frame_skip = 2  # 50 Hz control
    state_dim = 4  # cart x, pole angle, their velocities
    agent_dim = 1
    action_dim = 1
    max_steps = 200  # 4 s
    fps = 50
    ANGLE_LIMIT, TRACK = 0.4, 1.5
    EXPERTS = ("lqr", "multimodal")

    def __init__(
        self,
        obs: str = "state",
        image_size: int = 96,
        render_size: int = 256,
        max_steps: int = 200,
        expert: str = "lqr",
        expert_seed: int = 0,
    ):
        """``max_steps``: the episode's horizon T in control steps (success = balanced for all T); the
        horizon axis of regret-against-T experiments. ``expert='multimodal'``: while balancing, the
        cart travels to 0.5 m left or right of the centre, one side drawn per episode
        (``MultimodalLQRExpert``)."""
        if isinstance(max_steps, bool) or not isinstance(max_steps, int) or max_steps < 1:
            raise ConfigError(f"task {self.name}: max_steps must be an int >= 1, got {max_steps!r}")
        self._set_expert(expert, expert_seed)
        self.max_steps = max_steps
        super().__init__(obs, image_size, render_size)

    def init_episode(self, model, data, rng):
        data.qpos[:] = [rng.uniform(-0.3, 0.3), rng.uniform(-0.15, 0.15)]
        data.qvel[:] = [rng.uniform(-0.3, 0.3), rng.uniform(-0.4, 0.4)]
        return {}

    def state(self, model, data, params) -> np.ndarray:
        return np.concatenate([data.qpos, data.qvel])

    def agent_pos(self, data) -> np.ndarray:
        return data.qpos[:1].copy()

    def write_state(self, model, data, params, s) -> None:
        data.qpos[:], data.qvel[:] = s[:2], s[2:4]
        data.time = 0.0

    def judge(self, model, data, params, t):
        x, th = data.qpos
        failed = abs(th) > self.ANGLE_LIMIT or abs(x) > self.TRACK
        return failed, (not failed) and t >= self.max_steps, t / self.max_steps

    def expert(self) -> LQRExpert:
        if self.expert_kind == "multimodal":
            return MultimodalLQRExpert(self, seed=self.expert_seed)
        return LQRExpert(self)


class LQRExpert:
    """u = -K s on the simulator's own linearization at the upright state (one control step =
    ``frame_skip`` MuJoCo steps with the control held), clipped to the actuator range."""

    def __init__(self, task: CartPoleTask, q=(1.0, 20.0, 0.5, 1.0), r=4.0):
        model = mujoco.MjModel.from_xml_string(task.xml)
        data = mujoco.MjData(model)
        mujoco.mj_forward(model, data)
        nx, nu = 2 * model.nv, model.nu
        A, B = np.zeros((nx, nx)), np.zeros((nx, nu))
        mujoco.mjd_transitionFD(model, data, 1e-6, True, A, B, None, None)
        Ad, Bd = np.eye(nx), np.zeros((nx, nu))
        for _ in range(task.frame_skip):  # control held for frame_skip steps
            Ad, Bd = A @ Ad, A @ Bd + B
        Q, R = np.diag(q), np.array([[r]])
        P = Q.copy()
        for _ in range(5000):
            K = np.linalg.solve(R + Bd.T @ P @ Bd, Bd.T @ P @ Ad)
            P_next = Q + Ad.T @ P @ (Ad - Bd @ K)
            if np.max(np.abs(P_next - P)) < 1e-10:
                break
            P = P_next
        self.K = K

    def reset(self, env: gym.Env) -> None:
        pass

    def act(self, env: gym.Env) -> np.ndarray:
        return self.track(env, 0.0)

    def track(self, env: gym.Env, x_goal: float) -> np.ndarray:
        """Balance the pole with the cart held about ``x_goal``."""
        d = env.unwrapped.data
        s = np.concatenate([d.qpos, d.qvel]) - np.array([x_goal, 0.0, 0.0, 0.0])
        return np.clip(-self.K @ s, -1.0, 1.0).astype(np.float32)


class MultimodalLQRExpert(EpisodeMode, LQRExpert):
    """Two ways to balance: the cart travels to ``target`` m left or right of the centre while the
    pole stays up, one side drawn per episode at ``reset``; given (simulator state, side) the action
    is deterministic. Softer than the single expert (r = 20 instead of 4): on a state 4 steps old,
    with the agent's 0.1 noise, the single expert's loop balances 0.44 of its episodes, this one
    all (RESULTS.md, issue 27), so staleness alone does not decide an episode."""

    modes = ("left", "right")

    def __init__(self, task: CartPoleTask, seed: int = 0, target: float = 0.5, r: float = 20.0):
        super().__init__(task, r=r)
        self.target = target
        self.init_modes(seed)

    def act(self, env: gym.Env) -> np.ndarray:
        return self.track(env, -self.target if self.mode(env) == "left" else self.target)


# ---- catch -----------------------------------------------------------------------------------
class CatchTask(DynamicTask):
    name = "catch"
    correction_dims = (7, 8)  # the paddle's velocity: what one control step can undo
    xml = CATCH_XML.replace("{gear}", "10").replace("{half_width}", "0.07")
    camera = "top"
    frame_skip = 4  # 50 Hz control
    state_dim = 10  # puck xy, puck velocity xy, puck lateral force, paddle xy, paddle velocity xy, time
    agent_dim = 2
    action_dim = 2
    max_steps = 100  # 2 s; the puck reaches the edge in about 0.8-1.4 s
    fps = 50
    X_LIMIT, PADDLE_LINE, EDGE = 0.5, 0.12, 0.0
    EXPERTS = ("scripted", "multimodal")

    def __init__(
        self,
        obs: str = "state",
        image_size: int = 96,
        render_size: int = 256,
        wander: float = 0.03,
        expert: str = "scripted",
        expert_seed: int = 0,
    ):
        """``wander``: std (m/s) of the puck's random lateral kick per control step (0: the only
        randomness is the initial state, and the agent's own action noise when asked for).
        ``expert='multimodal'``: the paddle approaches the interception point from the left or from
        the right, one side drawn per episode (``MultimodalInterceptExpert``)."""
        if isinstance(wander, bool) or not isinstance(wander, int | float) or not 0 <= wander < 1:
            raise ConfigError(f"task catch: wander must be a number in [0, 1) (m/s per step), got {wander!r}")
        self._set_expert(expert, expert_seed)
        self.wander = float(wander)
        super().__init__(obs, image_size, render_size)

    def init_episode(self, model, data, rng):
        x0 = rng.uniform(-0.35, 0.35)
        cross = rng.uniform(-0.3, 0.3)  # where the curved path meets the edge (before the wander)
        speed = rng.uniform(0.65, 1.0)
        force = rng.uniform(-0.05, 0.05)  # N on a 0.1 kg puck: up to 0.5 m/s^2 sideways (a curve)
        aim = cross
        for _ in range(3):  # aim so that the curve lands at `cross`
            d = np.array([aim - x0, -0.9])
            v = speed * d / np.linalg.norm(d)
            tc = 0.9 / -v[1]
            aim = cross - 0.5 * (force / 0.1) * tc * tc
        data.qpos[:] = [x0, 0.0, rng.uniform(-0.2, 0.2), 0.0]  # joint offsets from the bodies' frames
        data.qvel[:] = [v[0], v[1], 0.0, 0.0]
        return {"force": np.array([force])}

    def before_step(self, model, data, params, rng) -> None:
        if self.wander > 0:  # the table is not perfect: the puck wanders
            data.qvel[0] += self.wander * rng.standard_normal()

    def before_substep(self, model, data, params) -> None:
        data.qfrc_applied[0] = params["force"][0]

    def _pos(self, data):
        puck = np.array([data.qpos[0], 0.9 + data.qpos[1]])
        paddle = np.array([data.qpos[2], self.PADDLE_LINE + data.qpos[3]])
        return puck, paddle

    def state(self, model, data, params) -> np.ndarray:
        puck, paddle = self._pos(data)
        return np.concatenate([puck, data.qvel[:2], params["force"], paddle, data.qvel[2:], [data.time]])

    def agent_pos(self, data) -> np.ndarray:
        return self._pos(data)[1]

    def write_state(self, model, data, params, s) -> None:
        data.qpos[:] = [s[0], s[1] - 0.9, s[5], s[6] - self.PADDLE_LINE]
        data.qvel[:] = [s[2], s[3], s[7], s[8]]
        params["force"] = np.array([s[4]])
        data.time = float(s[9])

    def judge(self, model, data, params, t):
        puck, paddle = self._pos(data)
        touched = any(
            {c.geom1, c.geom2} == {model.geom("puck").id, model.geom("paddle").id} for c in data.contact[: data.ncon]
        )
        lost = puck[1] < self.EDGE or abs(puck[0]) > self.X_LIMIT + 0.1
        gap = max(0.0, np.linalg.norm(puck - paddle) - 0.07)
        return lost and not touched, touched, 1.0 if touched else float(np.exp(-gap / 0.1))

    def expert(self) -> InterceptExpert:
        if self.expert_kind == "multimodal":
            return MultimodalInterceptExpert(self, seed=self.expert_seed)
        return InterceptExpert(self)


class InterceptExpert:
    """Predict where the puck crosses a line just above the paddle (its current velocity plus the
    known lateral force; the random wander is unknowable), then drive the paddle there with a PD
    law on the paddle's force: x toward the crossing point, y toward the line (and onto the puck
    once it is close)."""

    def __init__(self, task: CatchTask, kp: float = 14.0, kd: float = 1.5):
        self.task, self.kp, self.kd = task, kp, kd

    def reset(self, env: gym.Env) -> None:
        pass

    def predict(self, env: gym.Env) -> tuple[float, float]:
        """(time to contact, x where the puck crosses the line above the paddle)."""
        u = env.unwrapped
        d = u.data
        puck, _ = self.task._pos(d)
        v = d.qvel[:2]
        acc = u.params["force"][0] / 0.1
        line = self.task.PADDLE_LINE + 0.05
        if v[1] < -1e-3 and puck[1] > line:
            tc = (puck[1] - line) / -v[1]
            return tc, puck[0] + v[0] * tc + 0.5 * acc * tc * tc
        return 0.0, puck[0]

    def drive(self, env: gym.Env, x_goal: float, tc: float) -> np.ndarray:
        d = env.unwrapped.data
        _, paddle = self.task._pos(d)
        y_goal = self.task.PADDLE_LINE if tc > 0.25 else self.task.PADDLE_LINE + 0.03
        cmd = self.kp * (np.array([x_goal, y_goal]) - paddle) - self.kd * d.qvel[2:]
        return np.clip(cmd, -1.0, 1.0).astype(np.float32)

    def act(self, env: gym.Env) -> np.ndarray:
        tc, x_hit = self.predict(env)
        return self.drive(env, x_hit, tc)


class MultimodalInterceptExpert(EpisodeMode, InterceptExpert):
    """Two ways to the same catch: while the puck is more than ``switch`` seconds away the paddle
    waits ``offset`` to the left or to the right of the interception point, then closes in. The
    side is drawn per episode at ``reset``; given (simulator state, side) the action is
    deterministic, so the expert still labels any state (DAgger) and chunks from a state differ only
    by the side: the demonstrations are multimodal in time, as the RTC paper's are."""

    modes = ("left", "right")
    RAMP = 0.2  # seconds over which the offset shrinks to zero, ending ``switch`` seconds before contact

    def __init__(
        self,
        task: CatchTask,
        seed: int = 0,
        offset: float = 0.15,
        switch: float = 0.35,
        kp: float = 10.0,
        kd: float = 2.5,
    ):
        super().__init__(task, kp, kd)  # softer than the single expert's gains: robust to a state 4 steps old
        self.offset, self.switch = offset, switch
        self.init_modes(seed)

    def act(self, env: gym.Env) -> np.ndarray:
        tc, x_hit = self.predict(env)
        side = -1.0 if self.mode(env) == "left" else 1.0
        share = float(np.clip((tc - self.switch) / self.RAMP, 0.0, 1.0))  # closes in smoothly, not in one jump
        x_goal = float(np.clip(x_hit + side * self.offset * share, -self.task.X_LIMIT, self.task.X_LIMIT))
        return self.drive(env, x_goal, tc)


def approach_offset(task: CatchTask, env: gym.Env, window: tuple[float, float] = (0.35, 0.75)) -> float | None:
    """Catch: the paddle's x minus the predicted interception x while the time to contact is inside
    ``window`` seconds (None outside it, or when no contact is predicted): where a policy waits just
    before it closes in (the two-route expert holds 0.15 m out until 0.55 s and closes by 0.35 s).
    The prediction is the intercept expert's, used here only as a measure."""
    tc, x_hit = InterceptExpert.predict(InterceptExpert(task), env)
    if not window[0] < tc < window[1]:
        return None
    _, paddle = task._pos(env.unwrapped.data)
    return float(paddle[0] - x_hit)


def classify_route(offsets: list[float | None], min_offset: float = 0.05) -> str:
    """One episode's route from its approach offsets: ``left`` / ``right`` when the median offset is
    beyond ``min_offset`` on that side (the two-route expert waits 0.15 m out), ``direct`` otherwise
    (also when the episode had no approach phase)."""
    xs = [o for o in offsets if o is not None]
    if not xs:
        return "direct"
    m = float(np.median(xs))
    return "left" if m < -min_offset else "right" if m > min_offset else "direct"


# ---- staleness -------------------------------------------------------------------------------
def delayed_expert_success(task, n: int, noise: float, d: int, seed0: int = 1000) -> float:
    """Success of ``task``'s expert over ``n`` seeded episodes when it acts on the simulator state
    of ``d`` control steps ago (restored, asked, put back: the staleness an inference delay of d
    steps means), with execution noise of std ``noise`` half action ranges."""
    env, ex, ok = task.make_env(), task.expert(), 0
    lo, hi = task.spec.action_low, task.spec.action_high
    try:
        for i in range(n):
            rng = np.random.default_rng(i)
            env.reset(seed=seed0 + i)
            ex.reset(env)
            past = collections.deque(maxlen=d + 1)
            while True:
                now = task.get_state(env)
                past.append(now)
                task.set_state(env, past[0])
                a = ex.act(env)
                task.set_state(env, now)
                a = np.clip(a + noise * (hi - lo) / 2 * rng.standard_normal(a.shape), lo, hi)
                _, _, term, trunc, info = env.step(a)
                if term or trunc:
                    break
            ok += bool(info["is_success"])
    finally:
        env.close()
    return ok / n
