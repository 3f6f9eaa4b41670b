"""Executors: exact action sequences under delay, RTC's prefix and mask, ensembling, validation.

The fake policies below encode *when* a chunk was requested and *which* index an action is:
action i of the chunk requested at step r has value 100*r + i. So an executed value names the
chunk and index it came from, and the expected sequences are written out by hand.
"""

import math

import numpy as np
import pytest
import torch

from robolearn.errors import ConfigError
from robolearn.eval.smoothness import smoothness
from robolearn.execution import EXECUTORS, build_executor, rtc_weights


class StepPolicy:
    """Chunk value 100 * (request step) + index; the request step is read from obs['t'].

    Honours a prefix like a head would: where the weight is 1, the chunk equals the prefix."""

    def __init__(self, horizon=8, n_action_steps=3, action_dim=2):
        self.horizon, self.n_action_steps, self.action_dim, self.obs_horizon = horizon, n_action_steps, action_dim, 1
        self.calls: list[dict] = []

    def predict_chunk(self, obs, prefix=None, prefix_weights=None, generator=None):
        r = obs["t"][:, -1, 0]
        chunk = 100.0 * r[:, None, None] + np.arange(self.horizon)[None, :, None]
        chunk = np.repeat(chunk, self.action_dim, axis=2).astype(np.float32)
        chunk[:, :, 1] += obs["env"][:, -1, 0][:, None] * 0.5  # second dim: which env, to catch mixing
        self.calls.append(
            {
                "t": r.copy(),
                "prefix": None if prefix is None else np.array(prefix),
                "w": None if prefix_weights is None else np.array(prefix_weights),
                "out": chunk.copy(),
            }
        )
        if prefix is not None:
            w = np.broadcast_to(np.asarray(prefix_weights), chunk.shape[:2])
            chunk = np.where((w == 1)[..., None], prefix, chunk)
        return chunk


def run(executor, n_steps, n_envs=1):
    """Drive an executor like the rollout does; returns executed actions (T, B, A) and switches (T, B)."""
    executor.reset()
    acts, switches = [], []
    for t in range(n_steps):
        obs = {
            "t": np.full((n_envs, 1, 1), t, np.float32),
            "env": np.arange(n_envs, dtype=np.float32).reshape(n_envs, 1, 1),
        }
        acts.append(executor.act(obs))
        switches.append(executor.last_switch.copy())
    return np.stack(acts), np.stack(switches)


# ---- receding horizon / naive async / RTC: H=8, s=3 ---------------------------------------
# Chunk 0 is a synchronous first inference (runs from step 0); chunk k>=1 is requested at 3k
# and takes over d steps later, its first d indices skipped.
EXPECTED_S3 = {
    0: ([0, 1, 2, 300, 301, 302, 600, 601, 602, 900, 901, 902], [0, 3, 6, 9]),
    1: ([0, 1, 2, 3, 301, 302, 303, 601, 602, 603, 901, 902], [0, 4, 7, 10]),
    2: ([0, 1, 2, 3, 4, 302, 303, 304, 602, 603, 604, 902], [0, 5, 8, 11]),
}


@pytest.mark.parametrize("name,key", [("receding", "n_action_steps"), ("naive_async", "s"), ("rtc", "s")])
@pytest.mark.parametrize("d", [0, 1, 2])
def test_chunk_switching_executors_emit_the_expected_sequence(name, key, d):
    policy = StepPolicy(horizon=8, n_action_steps=5)  # the option, not the policy default, must win
    ex = build_executor({"name": name, key: 3, "delay": d}, policy, n_envs=3)
    acts, sw = run(ex, 12, n_envs=3)
    seq, switch_at = EXPECTED_S3[d]
    for b in range(3):
        np.testing.assert_array_equal(acts[:, b, 0], seq)
        np.testing.assert_array_equal(acts[:, b, 1], np.array(seq) + 0.5 * b)
        np.testing.assert_array_equal(np.flatnonzero(sw[:, b]), switch_at)
    # requests at 0, 3, 6, 9, each from the observation of its own step
    assert [int(c["t"][0]) for c in policy.calls] == [0, 3, 6, 9]


def test_default_execution_horizon_is_the_policys_n_action_steps():
    ex = build_executor({"name": "naive_async", "s": None, "delay": 0}, StepPolicy(horizon=8, n_action_steps=3), 1)
    acts, _ = run(ex, 12)
    np.testing.assert_array_equal(acts[:, 0, 0], EXPECTED_S3[0][0])


@pytest.mark.parametrize(
    "d, expected",
    [
        # stride 2 on H = 8: the chunk played back at 2x is indices 1, 3, 5, 7; default
        # n_action_steps = ceil(3 / 2) = 2 executed steps (the same stretch of the plan)
        (0, [1, 3, 201, 203, 401, 403]),
        # delay 1: the chunk requested at step 2 takes over at step 3, its index 0 skipped
        (1, [1, 3, 5, 203, 205, 403]),
    ],
)
def test_receding_stride_plays_the_chunk_back_faster(d, expected):
    ex = build_executor({"name": "receding", "stride": 2, "delay": d}, StepPolicy(horizon=8, n_action_steps=3), 1)
    assert ex.H == 4 and ex.s == 2
    acts, _ = run(ex, len(expected))
    assert acts[:, 0, 0].tolist() == expected


def test_receding_with_more_delay_than_steps_pipelines_requests():
    # n_action_steps=1, d=2: a request every step, each chunk arrives 2 steps later and runs
    # for one step at its index 2; chunk 0 (synchronous) covers steps 0..2.
    ex = build_executor({"name": "receding", "n_action_steps": 1, "delay": 2}, StepPolicy(horizon=4), 1)
    acts, sw = run(ex, 7)
    np.testing.assert_array_equal(acts[:, 0, 0], [0, 1, 2, 102, 202, 302, 402])
    np.testing.assert_array_equal(np.flatnonzero(sw[:, 0]), [0, 3, 4, 5, 6])


def test_reset_of_some_envs_restarts_only_their_episode():
    ex = build_executor({"name": "receding", "n_action_steps": 3, "delay": 1}, StepPolicy(horizon=8), 2)
    ex.reset()
    out = []
    for t in range(7):
        if t == 4:
            ex.reset(np.array([False, True]))
        obs = {"t": np.full((2, 1, 1), t, np.float32), "env": np.zeros((2, 1, 1), np.float32)}
        out.append(ex.act(obs)[:, 0])
    out = np.array(out)
    np.testing.assert_array_equal(out[:, 0], [0, 1, 2, 3, 301, 302, 303])
    # env 1 restarts at step 4 with a synchronous first chunk requested from obs_4
    np.testing.assert_array_equal(out[:, 1], [0, 1, 2, 3, 400, 401, 402])


# ---- real-time chunking ------------------------------------------------------------------
def test_rtc_weights_match_the_formula():
    e = math.e
    # H=8, s=3, d=2: frozen i<2; c_i = (5 - i) / 4 for 2 <= i < 5; free i >= 5
    c = np.array([3 / 4, 2 / 4, 1 / 4])
    np.testing.assert_allclose(rtc_weights(8, 3, 2), [1, 1, *(c * (np.exp(c) - 1) / (e - 1)), 0, 0, 0], rtol=1e-6)
    # d=0: no frozen step, decay starts at i=0 with c_0 = (H-s)/(H-s+1)
    c = np.array([4 / 5, 3 / 5, 2 / 5, 1 / 5])
    np.testing.assert_allclose(rtc_weights(6, 2, 0), [*(c * (np.exp(c) - 1) / (e - 1)), 0, 0], rtol=1e-6)
    # s + d = H: frozen then free, no decay region
    np.testing.assert_array_equal(rtc_weights(6, 4, 2), [1, 1, 0, 0, 0, 0])
    # s = H, d = 0: nothing overlaps, everything free
    np.testing.assert_array_equal(rtc_weights(5, 5, 0), np.zeros(5))
    # s = 1, d = 0, H = 2: one overlap step with c = 1/2
    np.testing.assert_allclose(rtc_weights(2, 1, 0), [0.5 * (math.exp(0.5) - 1) / (e - 1), 0], rtol=1e-6)
    for H, s, d in [(16, 8, 0), (16, 8, 3), (16, 5, 5), (10, 1, 1)]:
        w = rtc_weights(H, s, d)
        assert w.shape == (H,) and w.dtype == np.float32
        assert (w[:d] == 1).all() and (w[H - s :] == 0).all()
        assert (np.diff(w) <= 0).all() and (w[d : H - s] < 1).all() and (w[d : H - s] > 0).all()
    with pytest.raises(ConfigError):
        rtc_weights(8, 6, 3)


def test_rtc_passes_the_previous_chunks_remaining_actions_and_the_soft_mask():
    class ConstantFirst(StepPolicy):  # the first chunk is constant 7.0
        def predict_chunk(self, obs, prefix=None, prefix_weights=None, generator=None):
            out = super().predict_chunk(obs, prefix, prefix_weights, generator)
            return np.full_like(out, 7.0) if obs["t"][0, -1, 0] == 0 else out

    H, s, d = 8, 4, 2
    policy = ConstantFirst(horizon=H)
    ex = build_executor({"name": "rtc", "s": s, "delay": d}, policy, n_envs=2)
    acts, _ = run(ex, 12, n_envs=2)
    first, second, third = policy.calls
    assert first["prefix"] is None
    np.testing.assert_array_equal(second["prefix"], np.full((2, H, 2), 7.0))
    np.testing.assert_allclose(second["w"], rtc_weights(H, s, d))
    # the chunk from step 4 honoured the frozen prefix, so steps 4, 5 stayed on the old plan
    np.testing.assert_array_equal(acts[:6, :, 0], np.full((6, 2), 7.0))
    # third request (step 8): prefix = chunk 1 shifted by s, i.e. its indices 4..7, then padding
    chunk1 = second["out"].copy()
    chunk1[:, :d] = 7.0  # what the policy returned: frozen steps replaced by the prefix
    np.testing.assert_array_equal(third["prefix"][:, : H - s], chunk1[:, s:])
    # chunk 1 runs steps 6..9 (indices 2..5), chunk 2 takes over at step 10 at index d
    np.testing.assert_array_equal(acts[6:10, :, 0], np.repeat(chunk1[:1, d : d + s, 0].T, 2, axis=1))
    np.testing.assert_array_equal(acts[10:12, :, 0], [[802, 802], [803, 803]])


def test_rtc_hard_mask_ties_only_the_frozen_steps():
    policy = StepPolicy(horizon=8)
    run(build_executor({"name": "rtc", "s": 2, "delay": 2, "mask": "hard"}, policy, 1), 9)
    soft = rtc_weights(8, 2, 2)
    for c in policy.calls[1:]:
        np.testing.assert_array_equal(c["w"], [1, 1, 0, 0, 0, 0, 0, 0])
    assert soft[2] > 0  # the soft mask would have tied step 2 too
    with pytest.raises(ConfigError, match="exec.mask: expected soft or hard"):
        build_executor({"name": "rtc", "mask": "medium"}, policy, 1)


def test_naive_async_requests_without_a_prefix():
    policy = StepPolicy(horizon=8)
    run(build_executor({"name": "naive_async", "s": 3, "delay": 2}, policy, 1), 9)
    assert all(c["prefix"] is None for c in policy.calls)


def test_rtc_with_a_real_regression_policy_keeps_the_frozen_prefix():
    from robolearn.data.normalizer import Normalizer
    from robolearn.policy import ChunkPolicy
    from robolearn.spec import ObsSpec

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    norm = Normalizer().fit({"state": rng.normal(size=(100, 3)), "action": rng.uniform(-2, 5, size=(100, 2))})
    cfg = {
        "obs_horizon": 2,
        "horizon": 8,
        "n_action_steps": 4,
        "encoder": {"lowdim": {"hidden": []}},
        "head": {"name": "regression", "hidden": [32]},
    }
    policy = ChunkPolicy(cfg, {"state": ObsSpec(shape=(3,))}, 2, norm).eval()

    chunks = []

    class Recorder:  # forwards to the real policy, keeps what it returned
        def __getattr__(self, k):
            return getattr(policy, k)

        def predict_chunk(self, obs, prefix=None, prefix_weights=None, generator=None):
            out = policy.predict_chunk(obs, prefix, prefix_weights, generator)
            chunks.append(out)
            return out

    s, d = 4, 2
    for name in ("rtc", "naive_async"):
        chunks.clear()
        ex = build_executor({"name": name, "s": s, "delay": d}, Recorder(), n_envs=3)
        ex.reset()
        acts = np.stack([ex.act({"state": rng.normal(size=(3, 2, 3)).astype(np.float32)}) for _ in range(14)])
        assert len(chunks) == 4 and acts.shape == (14, 3, 2)
        gap = [np.abs(new[:, :d] - old[:, s : s + d]).max() for old, new in zip(chunks, chunks[1:])]
        if name == "rtc":  # frozen steps survive normalize -> head blend -> unnormalize
            assert max(gap) < 1e-4, gap
        else:  # without a prefix a new observation gives a different chunk
            assert min(gap) > 1e-3, gap
        # executed: chunk 0 for steps 0..5, then chunk k's indices d..d+s-1
        np.testing.assert_allclose(acts[:6], chunks[0][:, :6].transpose(1, 0, 2))
        np.testing.assert_allclose(acts[6:10], chunks[1][:, d : d + s].transpose(1, 0, 2))


# ---- temporal ensembling -----------------------------------------------------------------
def test_ensemble_plain_average_and_delay():
    P = StepPolicy(horizon=4)
    # m = 0, d = 0: step t averages chunk r's index t - r over the last H requests
    acts, sw = run(build_executor({"name": "ensemble", "m": 0.0, "delay": 0}, P, 1), 5)
    np.testing.assert_allclose(
        acts[:, 0, 0], [0, (1 + 100) / 2, (2 + 101 + 200) / 3, (3 + 102 + 201 + 300) / 4, (103 + 202 + 301 + 400) / 4]
    )
    assert sw[:, 0].all()
    # d = 1: chunk r joins at step r + 1 (chunk 0 is synchronous)
    acts, sw = run(build_executor({"name": "ensemble", "m": 0.0, "delay": 1}, P, 1), 5)
    np.testing.assert_allclose(acts[:, 0, 0], [0, 1, (2 + 101) / 2, (3 + 102 + 201) / 3, (103 + 202 + 301) / 3])
    np.testing.assert_array_equal(sw[:, 0], [1, 0, 1, 1, 1])
    # d = 2: chunk r joins at step r + 2
    acts, sw = run(build_executor({"name": "ensemble", "m": 0.0, "delay": 2}, P, 1), 6)
    np.testing.assert_allclose(acts[:, 0, 0], [0, 1, 2, (3 + 102) / 2, (103 + 202) / 2, (203 + 302) / 2])
    np.testing.assert_array_equal(sw[:, 0], [1, 0, 0, 1, 1, 1])


def test_ensemble_weights_favour_the_oldest_prediction():
    # m = ln 2: weights 1, 1/2, 1/4, 1/8 from the oldest prediction on
    acts, _ = run(build_executor({"name": "ensemble", "m": math.log(2)}, StepPolicy(horizon=4), 2), 5, n_envs=2)
    expected = [
        0,
        (1 + 100 / 2) / 1.5,
        (2 + 101 / 2 + 200 / 4) / 1.75,
        (3 + 102 / 2 + 201 / 4 + 300 / 8) / 1.875,
        (103 + 202 / 2 + 301 / 4 + 400 / 8) / 1.875,
    ]
    np.testing.assert_allclose(acts[:, 0, 0], expected, rtol=1e-6)
    np.testing.assert_allclose(acts[:, 1, 1], np.array(expected) + 0.5, rtol=1e-6)


# ---- delay: auto, validation, smoothness -------------------------------------------------
def test_delay_auto_measures_once_and_converts_with_control_hz(monkeypatch):
    import robolearn.execution.delay as delay

    now = [0.0]
    monkeypatch.setattr(delay, "CLOCK", lambda: now[0])  # an injected clock: no sleep, no load dependence

    class Slow(StepPolicy):
        def predict_chunk(self, obs, prefix=None, prefix_weights=None, generator=None):
            now[0] += 0.03  # 0.03 s at 40 Hz = 1.2 steps
            return super().predict_chunk(obs, prefix, prefix_weights, generator)

    P = Slow(horizon=8)
    ex = build_executor({"name": "naive_async", "s": 3, "delay": "auto", "control_hz": 40}, P, 1)
    run(ex, 4)
    assert ex.d == 1  # floor(1.2)
    ex2 = build_executor({"name": "naive_async", "s": 3, "delay": "auto", "control_hz": 40}, P, 1)
    n = len(P.calls)
    run(ex2, 1)
    assert ex2.d == 1 and len(P.calls) == n + 1  # cached: no second measurement


@pytest.mark.parametrize(
    "cfg",
    [
        {"name": "receding", "delay": 8},  # d >= H
        {"name": "receding", "n_action_steps": 6, "delay": 3},  # s + d > H
        {"name": "naive_async", "s": 0},  # s < 1
        {"name": "rtc", "s": 9},  # s > H
        {"name": "rtc", "s": 2, "delay": 3},  # RTC: d > s
        {"name": "ensemble", "m": -0.1},  # m < 0
        {"name": "ensemble", "delay": 8},
        {"name": "receding", "n_action_steps": 0},
        {"name": "receding", "n_action_steps": 9},
        {"name": "receding", "stride": 0},
        {"name": "receding", "stride": 2, "n_action_steps": 5},  # the 2x chunk has 4 steps
        {"name": "receding", "delay": -1},
        {"name": "receding", "delay": "auto"},  # auto without control_hz
        {"name": "receding", "delay": 1.5},
        {"name": "beam_search"},  # unknown executor
        {"name": "ensemble", "s": 3},  # option of another executor
        {"name": "bid", "n_samples": 0},
        {"name": "bid", "n_samples": 2.5},
        {"name": "bid", "s": 6, "delay": 3},  # the delay does not fit the chunk: s + d > H
    ],
)
def test_bad_options_fail_before_any_step(cfg):
    P = StepPolicy(horizon=8)
    with pytest.raises(ConfigError) as e:
        build_executor(cfg, P, 2)
    assert "\n" not in str(e.value) and "exec" in str(e.value)
    assert P.calls == []


def test_yaml_configs_build_every_executor():
    from robolearn.config import load_group, to_dict

    for name in EXECUTORS:
        cfg = to_dict(load_group("exec", name))
        assert cfg["_name"] == name and cfg.get("delay") == 0
        ex = build_executor(cfg, StepPolicy(horizon=8, n_action_steps=3), 2)
        assert type(ex) is EXECUTORS[name]


# ---- bidirectional decoding -------------------------------------------------------------------
class CandidatePolicy:
    """Candidate j of every request is the chunk i + OFFSETS[j] (whatever the step), so a chosen
    candidate is named by its offset; rows of a batch arrive env-major, n_samples per env."""

    OFFSETS = [0.0, 3.0, 7.0, -2.0]

    def __init__(self, horizon=8, n_action_steps=3):
        self.horizon, self.n_action_steps, self.action_dim, self.obs_horizon = horizon, n_action_steps, 1, 1
        self.batches: list[int] = []

    def predict_chunk(self, obs, prefix=None, prefix_weights=None, generator=None):
        assert prefix is None  # BID never asks the head to inpaint
        n = len(obs["t"])
        self.batches.append(n)
        off = np.tile(self.OFFSETS, n // len(self.OFFSETS))
        return (np.arange(self.horizon)[None, :, None] + off[:, None, None]).astype(np.float32)


@pytest.mark.parametrize("d", [0, 1, 2])
def test_bid_keeps_the_candidate_nearest_the_previous_plan(d):
    """s=3: the previous chunk plans i + s + off_prev for the new chunk's step i, so the candidate
    kept is the one whose offset is nearest off_prev + 3: 0 (first) -> 3 -> 7 (nearest 6) -> 7."""
    P = CandidatePolicy()
    ex = build_executor({"name": "bid", "s": 3, "n_samples": 4, "delay": d}, P, n_envs=2)
    acts, _ = run(ex, 12, n_envs=2)
    assert set(P.batches) == {8}  # one batched call: 4 candidates x 2 envs
    chosen = {0: 0.0, 1: 3.0, 2: 7.0, 3: 7.0}  # chunk k -> offset kept
    running = [0 if t < 3 + d else (t - d) // 3 for t in range(12)]
    want = [t - 3 * k + chosen[k] for t, k in enumerate(running)]
    for b in range(2):
        np.testing.assert_array_equal(acts[:, b, 0], want)


def test_bid_distance_is_the_weighted_squared_error():
    from robolearn.execution.bid import closest_to_prefix

    rng = np.random.default_rng(0)
    cands, prefix, w = rng.normal(size=(5, 6, 8, 2)), rng.normal(size=(5, 8, 2)), rng.uniform(size=8)
    brute = [
        min(range(6), key=lambda j, b=b: sum(w[i] * np.sum((cands[b, j, i] - prefix[b, i]) ** 2) for i in range(8)))
        for b in range(5)
    ]
    np.testing.assert_array_equal(closest_to_prefix(cands, prefix, w), brute)


@pytest.mark.parametrize("d", [0, 2])
def test_bid_with_one_candidate_is_naive_async(d):
    a, _ = run(build_executor({"name": "bid", "s": 3, "n_samples": 1, "delay": d}, StepPolicy(), 3), 12, 3)
    b, _ = run(build_executor({"name": "naive_async", "s": 3, "delay": d}, StepPolicy(), 3), 12, 3)
    np.testing.assert_array_equal(a, b)


def test_bid_with_a_real_flow_policy_runs_batched_and_seeded():
    """A sampling head: the same generator seed gives the same executed actions."""
    from robolearn.data.normalizer import Normalizer
    from robolearn.policy import ChunkPolicy
    from robolearn.spec import ObsSpec

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    norm = Normalizer().fit({"x": rng.normal(size=(50, 3)), "action": rng.uniform(-1, 1, (50, 2))})
    cfg = {
        "horizon": 8,
        "obs_horizon": 1,
        "n_action_steps": 3,
        "head": {"name": "flow", "down_dims": [16, 32], "num_steps": 2},
    }
    pol = ChunkPolicy(cfg, {"x": ObsSpec((3,))}, 2, norm).eval()
    batches = []
    real = pol.predict_chunk
    pol.predict_chunk = lambda obs, *a, **k: batches.append(len(obs["x"])) or real(obs, *a, **k)
    obs = rng.normal(size=(9, 2, 1, 3)).astype(np.float32)  # a different observation every step, per env
    outs = []
    for seed in (3, 3, 4):
        ex = build_executor(
            {"name": "bid", "n_samples": 5, "delay": 1}, pol, 2, generator=torch.Generator().manual_seed(seed)
        )
        ex.reset()
        outs.append(np.stack([ex.act({"x": obs[t]}) for t in range(9)]))
    np.testing.assert_array_equal(outs[0], outs[1])  # same seed, same executed actions
    assert not np.array_equal(outs[0], outs[2])  # the generator is what decides the samples
    assert outs[0].shape == (9, 2, 2)
    # batched: every request is one call with all candidates of both envs (2 envs x 5 samples)
    assert batches and set(batches) == {10}, batches


def test_smoothness_metrics():
    a = np.array([[0.0], [1.0], [2.0], [6.0], [7.0], [8.0]])
    sw = np.array([1, 0, 0, 1, 0, 0], bool)
    m = smoothness(a, sw)
    # differences of 0,1,2,6,7,8: 1st 1,1,4,1,1; 2nd 0,3,-3,0; 3rd 3,-6,3
    assert m["mean_abs_jerk"] == pytest.approx(4.0)
    assert m["boundary_jump"] == pytest.approx(4.0)  # only step 3 counts (step 0 has no predecessor)
    assert m["step_change"] == pytest.approx(1.0)
    two_d = smoothness(np.array([[0.0, 0.0], [3.0, 4.0]]), np.array([0, 1], bool))
    assert two_d["boundary_jump"] == pytest.approx(5.0) and two_d["mean_abs_jerk"] == 0.0


def test_delay_auto_that_does_not_fit_says_what_was_measured(monkeypatch):
    """An injected clock that each chunk request advances by 20 ms: no sleep, an exact answer."""
    import robolearn.execution.delay as delay

    now = [0.0]
    monkeypatch.setattr(delay, "CLOCK", lambda: now[0])

    class Slow(StepPolicy):
        def predict_chunk(self, obs, prefix=None, prefix_weights=None, generator=None):
            now[0] += 0.020
            return super().predict_chunk(obs, prefix, prefix_weights, generator)

    # 20 ms at 1000 Hz is 20 steps, more than the chunk holds
    ex = build_executor({"name": "ensemble", "delay": "auto", "control_hz": 1000}, Slow(horizon=8), 1)
    with pytest.raises(ConfigError, match=r"delay=auto measured 20\.0 ms = 20 steps at 1000 Hz"):
        run(ex, 1)
    # at 100 Hz the same 20 ms is 2 steps: it fits, and the executor runs with d = 2
    ex = build_executor({"name": "ensemble", "delay": "auto", "control_hz": 100}, Slow(horizon=8), 1)
    run(ex, 1)
    assert ex.d == 2


# ---- delay sweep on a real simulator -----------------------------------------------------
def test_delay_sweep_rows_smoothness_and_plot(tmp_path):
    pytest.importorskip("mujoco")
    from robolearn.data.normalizer import Normalizer
    from robolearn.envs import make_task
    from robolearn.eval.rollout import rollout
    from robolearn.experiments.sweep import sweep
    from robolearn.policy import ChunkPolicy

    torch.manual_seed(0)
    task = make_task("fetch_reach", obs="state", max_steps=15)
    rng = np.random.default_rng(0)
    dim = task.spec.obs["state"].shape[0]
    norm = Normalizer().fit({"state": rng.normal(size=(50, dim)), "action": rng.uniform(-1, 1, size=(50, 4))})
    cfg = {
        "obs_horizon": 2,
        "horizon": 8,
        "n_action_steps": 4,
        "encoder": {"lowdim": {"hidden": []}},
        "head": {"name": "regression", "hidden": [32]},
    }
    policy = ChunkPolicy(cfg, task.spec.obs, 4, norm).eval()
    execs = [
        {"name": "receding", "n_action_steps": 4, "label": "receding"},
        {"name": "naive_async", "s": 4},
        {"name": "rtc", "s": 4},
        {"name": "ensemble", "m": 0.01},
    ]
    with pytest.raises(ConfigError):  # rtc with s < delay is refused before any rollout
        sweep(policy, task, [{"name": "rtc", "s": 1}], [0, 2], n_episodes=2, n_envs=2, progress=False)
    rows = sweep(policy, task, execs, [0, 2], n_episodes=3, n_envs=2, out_dir=tmp_path, progress=False)
    assert [(r["executor"], r["delay"]) for r in rows] == [
        (e, d) for e in ("receding", "naive_async(s=4)", "rtc(s=4)", "ensemble(m=0.01)") for d in (0, 2)
    ]
    by = {(r["executor"], r["delay"]): r for r in rows}
    # receding horizon under delay *is* naive async: same seeds, same actions, same numbers
    for d in (0, 2):
        assert by[("receding", d)] == {**by[("naive_async(s=4)", d)], "executor": "receding"}
    # delay changes what is executed
    assert by[("receding", 0)]["mean_abs_jerk"] != by[("receding", 2)]["mean_abs_jerk"]
    assert all(r["episodes"] == 3 and r["boundary_jump"] > 0 for r in rows)
    assert (tmp_path / "delay_sweep.json").exists() and (tmp_path / "delay_sweep.png").stat().st_size > 0

    # rollout records the executed stream: its smoothness equals a recomputation from the actions
    from robolearn.eval.smoothness import smoothness

    log = []
    records = rollout(
        lambda n, w: build_executor({"name": "rtc", "s": 4, "delay": 2}, policy, n),
        task,
        3,
        2,
        obs_horizon=2,
        progress=False,
        on_step=lambda venv, obs, act, alive: log.append((act, alive)),
    )
    first = [(a[0], al[0]) for a, al in log if al[0]][: records[0]["length"]]
    acts = np.stack([a for a, _ in first])
    assert records[0]["mean_abs_jerk"] == pytest.approx(smoothness(acts, np.zeros(len(acts), bool))["mean_abs_jerk"])
    assert all("boundary_jump" in r and "step_change" in r for r in records)


def test_a_new_executor_is_one_class_and_one_yaml(tmp_path, monkeypatch):
    """The extension seam: a class with @register_executor and configs/exec/<name>.yaml (here in
    a --config-dir) are all it takes for build_executor, `robolearn list` and the CLI's --exec."""
    from robolearn.cli import catalogue
    from robolearn.config import add_config_dir, load_group, to_dict
    from robolearn.execution import register_executor
    from robolearn.execution.base import EXECUTORS
    from robolearn.execution.receding import RecedingHorizon

    @register_executor("first_only")
    class FirstOnly(RecedingHorizon):
        """Replan every step and execute the chunk's first action (receding horizon with s = 1)."""

        def __init__(self, policy, n_envs, delay=0, control_hz=None, generator=None):
            super().__init__(policy, n_envs, n_action_steps=1, delay=delay, control_hz=control_hz, generator=generator)

    try:
        (tmp_path / "exec").mkdir()
        (tmp_path / "exec" / "first_only.yaml").write_text("name: first_only\ndelay: 0\n")
        monkeypatch.setattr("robolearn.config_files._EXTRA_DIRS", [])
        add_config_dir(tmp_path)
        ex = build_executor(to_dict(load_group("exec", "first_only")), StepPolicy(horizon=8), 2)
        assert type(ex) is FirstOnly
        acts, switches = run(ex, 3, n_envs=2)
        assert switches.all()  # a new chunk every step: its first action, always
        assert "first_only" in catalogue()["executors (--exec / exec=)"]
    finally:
        EXECUTORS.pop("first_only", None)
