"""A chain MDP where behaviour cloning's error compounds as eps*H^2 and DAgger's as eps*H.

The Ross & Bagnell lower-bound example, made small enough to solve exactly. The state is a
step index plus one bit: on the chain or off it. On the chain the expert takes action 0 and
stays on; any other action knocks the agent off. Off the chain every state looks the same
(the observation is just ``OFF``), the expert takes action 1 (recover) and returns, and every
other action keeps the agent off. The cost is 1 for each step spent off the chain.

A learner is a lookup table over observations plus an execution error: on a state it has a
label for it takes that label with probability 1 - eps, otherwise a uniformly random other
action. That is a classifier with error eps on its own training distribution. On a state it
has never seen it does what ``unseen`` says; the lower bound assumes the worst (``stay``).

- BC trains on expert trajectories, which never leave the chain, so ``OFF`` is never labelled:
  once the learner slips it stays off -> E[cost] = H - (1-eps)(1-(1-eps)^H)/eps ~ eps*H^2/2.
- DAgger rolls the learner out, labels the states *it* visits with the expert, aggregates and
  refits; ``OFF`` gets the label ``recover`` -> P(off at t) = eps for every t, E[cost] = eps*H.

Both learners have the same error (eps) on the expert's states; only on-policy data tells
them apart. ``exact_cost`` solves any tabular learner by dynamic programming over the
two-state distribution; ``simulate`` is the Monte-Carlo check of the same quantity.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

OFF = -1  # the observation of every off-chain state
N_ACTIONS = 2
ON_ACTION, RECOVER = 0, 1  # the expert's action on the chain / off the chain


@dataclass(frozen=True)
class ChainMDP:
    horizon: int

    def obs(self, t: int, on: bool) -> int:
        """On the chain the step index is visible; off it, all states look alike."""
        return t if on else OFF

    @staticmethod
    def step(on: np.ndarray, action: np.ndarray) -> np.ndarray:
        """Next on/off bit: stay on with action 0, come back with action 1, else (be) off."""
        return np.where(on, action == ON_ACTION, action == RECOVER)

    @staticmethod
    def expert(on: np.ndarray) -> np.ndarray:
        return np.where(on, ON_ACTION, RECOVER)


@dataclass
class TabularLearner:
    """Majority-vote table over observations + an execution error ``eps``.

    ``unseen`` decides the action on observations with no label: 'stay' (the adversarial
    default of the lower bound: off the chain, stay off), 'recover' (a learner that happens to
    generalise well) or 'random'.
    """

    eps: float
    table: dict[int, int] = field(default_factory=dict)
    unseen: str = "stay"

    def p_correct(self, obs: int, expert_action: int) -> float:
        """Probability that the learner takes ``expert_action`` at ``obs``."""
        if obs in self.table:
            return 1.0 - self.eps if self.table[obs] == expert_action else self.eps / (N_ACTIONS - 1)
        if self.unseen == "random":
            return 1.0 / N_ACTIONS
        default = {"stay": ON_ACTION if obs == OFF else RECOVER, "recover": RECOVER if obs == OFF else ON_ACTION}
        return float(default[self.unseen] == expert_action)

    def act(self, obs: np.ndarray, expert_action: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Vectorised sampling; with two actions, 'not the expert's' is the other action."""
        uniq, inv = np.unique(obs, return_inverse=True)
        p_by_action = np.array([[self.p_correct(int(o), a) for o in uniq] for a in range(N_ACTIONS)])
        p = p_by_action[expert_action, inv]
        right = rng.random(len(obs)) < p
        return np.where(right, expert_action, 1 - expert_action)

    def fit(self, obs: np.ndarray, actions: np.ndarray) -> TabularLearner:
        """Majority label per observation (ties go to the smaller action)."""
        table = {}
        for o in np.unique(obs):
            counts = np.bincount(actions[obs == o], minlength=N_ACTIONS)
            table[int(o)] = int(np.argmax(counts))
        return TabularLearner(self.eps, table, self.unseen)


def exact_cost(mdp: ChainMDP, learner: TabularLearner) -> float:
    """E[# steps off the chain in H steps], by forward DP over P(on chain at t)."""
    p_on, cost = 1.0, 0.0
    p_recover = learner.p_correct(OFF, RECOVER)  # the same at every step: OFF is one observation
    for t in range(mdp.horizon):
        p_stay = learner.p_correct(mdp.obs(t, True), ON_ACTION)
        p_on = p_on * p_stay + (1.0 - p_on) * p_recover
        cost += 1.0 - p_on
    return cost


def closed_form_costs(eps: float, horizon: int) -> dict[str, float]:
    """The two canonical learners in closed form (same eps on expert states).

    never recovers: sum_t 1-(1-eps)^t;  recovers with error eps: P(off at t) = eps."""
    q = 1.0 - eps
    never = horizon - q * (1.0 - q**horizon) / eps if eps > 0 else 0.0
    return {"bc_never_recovers": never, "dagger_recovers": eps * horizon}


def rollout(
    mdp: ChainMDP, learner: TabularLearner | None, n: int, rng: np.random.Generator, beta: float = 0.0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``n`` episodes at once. With prob ``beta`` the expert acts instead (DAgger's mixture;
    ``learner=None`` means the expert alone). Returns visited obs (n, H), expert labels (n, H)
    and the per-episode cost (n,)."""
    on = np.ones(n, bool)
    obs = np.empty((n, mdp.horizon), np.int64)
    labels = np.empty((n, mdp.horizon), np.int64)
    cost = np.zeros(n)
    for t in range(mdp.horizon):
        o = np.where(on, t, OFF)
        a_exp = ChainMDP.expert(on)
        obs[:, t], labels[:, t] = o, a_exp
        if learner is None:
            a = a_exp
        else:
            a = learner.act(o, a_exp, rng)
            if beta > 0:
                a = np.where(rng.random(n) < beta, a_exp, a)
        on = ChainMDP.step(on, a)
        cost += ~on
    return obs, labels, cost


def simulate(mdp: ChainMDP, learner: TabularLearner, n: int, seed: int = 0) -> tuple[float, float]:
    """Monte-Carlo E[cost] and its standard error."""
    _, _, cost = rollout(mdp, learner, n, np.random.default_rng(seed))
    return float(cost.mean()), float(cost.std(ddof=1) / np.sqrt(n))


def train_bc(mdp: ChainMDP, eps: float, n_demos: int, unseen: str = "stay") -> TabularLearner:
    """Fit the table on expert trajectories only (which never leave the chain)."""
    obs, labels, _ = rollout(mdp, None, n_demos, np.random.default_rng(0))
    return TabularLearner(eps, unseen=unseen).fit(obs.ravel(), labels.ravel())


def train_dagger(
    mdp: ChainMDP,
    eps: float,
    n_demos: int,
    rounds: int,
    rollouts_per_round: int,
    seed: int = 0,
    beta: float = 0.0,
    unseen: str = "stay",
) -> tuple[TabularLearner, list[dict]]:
    """Round 0 is BC; each round rolls out the current learner, labels every visited state
    with the expert, aggregates and refits. Returns the final learner and per-round records."""
    rng = np.random.default_rng(seed)
    obs, labels, _ = rollout(mdp, None, n_demos, rng)
    data_o, data_a = [obs.ravel()], [labels.ravel()]
    learner = TabularLearner(eps, unseen=unseen).fit(data_o[0], data_a[0])
    history = [{"round": 0, "labels": int(obs.size), "exact_cost": exact_cost(mdp, learner)}]
    for r in range(1, rounds + 1):
        o, a, _ = rollout(mdp, learner, rollouts_per_round, rng, beta=beta)
        data_o.append(o.ravel())
        data_a.append(a.ravel())
        learner = learner.fit(np.concatenate(data_o), np.concatenate(data_a))
        history.append(
            {
                "round": r,
                "labels": history[-1]["labels"] + int(o.size),
                "exact_cost": exact_cost(mdp, learner),
                "visited_off": bool((o == OFF).any()),
            }
        )
    return learner, history


def occupancy(mdp: ChainMDP, learner: TabularLearner) -> np.ndarray:
    """Expected visits of each (observation, action) over the H steps, executed with the learner's
    error: rows 0..H-1 the on-chain steps, row H the off-chain observation."""
    mu = np.zeros((mdp.horizon + 1, N_ACTIONS))
    p_on = 1.0
    for t in range(mdp.horizon):
        p0 = learner.p_correct(t, ON_ACTION)
        mu[t] += p_on * np.array([p0, 1.0 - p0])
        r0 = learner.p_correct(OFF, RECOVER)
        mu[mdp.horizon] += (1.0 - p_on) * np.array([1.0 - r0, r0])
        p_on = p_on * p0 + (1.0 - p_on) * r0
    return mu


def best_response(mdp: ChainMDP, w: np.ndarray, eps: float) -> TabularLearner:
    """The table that maximises the expected reward sum_(o, a) w[o, a] x visits, executed with error
    ``eps`` (the intended action with probability 1 - eps, the other one otherwise). The off-chain
    observation is one row for every step, so both of its actions are tried; given it, the
    on-chain actions follow by backward induction."""

    def executed(a: int) -> np.ndarray:
        return np.where(np.arange(N_ACTIONS) == a, 1.0 - eps, eps / (N_ACTIONS - 1))

    best, best_value = None, -np.inf
    for off_action in range(N_ACTIONS):
        p_off = executed(off_action)
        v_on = v_off = 0.0
        table = {OFF: off_action}
        for t in reversed(range(mdp.horizon)):
            nxt_off = float(p_off @ (w[mdp.horizon] + np.where(np.arange(N_ACTIONS) == RECOVER, v_on, v_off)))
            q = [
                float(executed(a) @ (w[t] + np.where(np.arange(N_ACTIONS) == ON_ACTION, v_on, v_off)))
                for a in range(N_ACTIONS)
            ]
            table[t] = int(np.argmax(q))
            v_on, v_off = max(q), nxt_off
        if v_on > best_value:
            best, best_value = TabularLearner(eps, table), v_on
    return best


def train_reward_moment(mdp: ChainMDP, eps: float, iters: int = 30, lr: float = 0.5) -> tuple[TabularLearner, list]:
    """Imitation by matching the reward moment, as a game: the adversary picks a reward over
    (observation, action) indicators in [-1, 1] by projected online gradient ascent on
    J_w(expert) - J_w(learner), the learner best-responds exactly (no expert query; the expert is
    seen only through its demonstrations' occupancy). Returns the final learner and, per iteration,
    the gap J_w(expert) - J_w(learner) and the learner's true cost."""
    mu_e = occupancy(mdp, TabularLearner(0.0, {t: ON_ACTION for t in range(mdp.horizon)} | {OFF: RECOVER}))
    w = np.zeros_like(mu_e)
    learner = best_response(mdp, w, eps)  # the reply to the zero reward: anything goes (here: stay off)
    history = [{"iter": 0, "gap": 0.0, "exact_cost": exact_cost(mdp, learner)}]
    for i in range(1, iters + 1):
        gap = mu_e - occupancy(mdp, learner)
        w = np.clip(w + lr * gap, -1.0, 1.0)
        learner = best_response(mdp, w, eps)
        history.append({"iter": i, "gap": float((w * gap).sum()), "exact_cost": exact_cost(mdp, learner)})
    return learner, history


def expert_state_error(mdp: ChainMDP, learner: TabularLearner) -> float:
    """Off-policy loss: mean disagreement with the expert on the expert's own states."""
    return float(np.mean([1.0 - learner.p_correct(t, ON_ACTION) for t in range(mdp.horizon)]))


def loglog_slope(x: np.ndarray, y: np.ndarray) -> float:
    return float(np.polyfit(np.log(x), np.log(y), 1)[0])


if __name__ == "__main__":
    eps = 1e-3
    print(f"{'H':>5} {'BC exact':>10} {'BC MC':>16} {'DAgger exact':>13} {'DAgger MC':>16} {'eps*H^2/2':>10}")
    for h in (10, 20, 50, 100, 200):
        mdp = ChainMDP(h)
        bc = train_bc(mdp, eps, n_demos=1)
        dag, _ = train_dagger(mdp, eps, n_demos=1, rounds=2, rollouts_per_round=int(np.ceil(50 / (eps * h))))
        bm, bs = simulate(mdp, bc, 200_000, seed=1)
        dm, ds = simulate(mdp, dag, 200_000, seed=2)
        print(
            f"{h:>5} {exact_cost(mdp, bc):>10.4f} {bm:>9.4f}±{bs:.4f} {exact_cost(mdp, dag):>13.4f}"
            f" {dm:>9.4f}±{ds:.4f} {eps * h * h / 2:>10.4f}"
        )
