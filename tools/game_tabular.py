"""Known-answer results of imitation as a game on tabular MDPs (issue 28, item 3).

For the two-state MDP of the tests and random MDPs (Dirichlet transitions, one-hot state-action
features, an expert that is optimal for a hidden reward in the features' span):
  - the moment-matching game (multiplicative weights against exact best responses,
    ``robolearn.game.tabular.solve_game``): its duality gap after 10 / 100 / all iterations, the
    final moment gap ||mu_E - mu_pi||_inf, and the recovered mixed policy's value under the hidden
    reward against the expert's, with the bound the game guarantees (moment gap x ||w||_1);
  - MaxEnt IRL (``maxent_irl``): its final moment gap, and its soft-optimal policy's value.

    python tools/game_tabular.py --iterations 2000 --seeds 0 1 2 3 4 --plot docs/game_tabular.png

Exact linear algebra: no sampling, so the numbers are the same on every machine.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from robolearn.game.tabular import (  # noqa: E402
    TabularMDP,
    features,
    greedy,
    maxent_irl,
    occupancy,
    q_values,
    random_mdp,
    solve_game,
    value,
)


def two_state() -> tuple[TabularMDP, np.ndarray]:
    """States {0, 1}, actions {stay, switch}; the expert switches to 1 and stays (reward: be in 1)."""
    P = np.zeros((2, 2, 2))
    P[0, 0, 0] = P[0, 1, 1] = P[1, 0, 1] = P[1, 1, 0] = 1.0
    phi = np.zeros((2, 2, 2))
    phi[0, :, 0] = phi[1, :, 1] = 1.0
    return TabularMDP(P, np.array([1.0, 0.0]), 0.9, phi), np.array([0.0, 1.0])


def problems(seeds: list[int], n_states: int, n_actions: int, gamma: float):
    mdp, w = two_state()
    yield "two-state (S=2, A=2)", mdp, w
    for s in seeds:
        rng = np.random.default_rng(s)
        mdp = random_mdp(n_states, n_actions, gamma, rng)
        yield f"random seed {s} (S={n_states}, A={n_actions})", mdp, rng.normal(size=mdp.phi.shape[-1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--iterations", type=int, default=2000)
    p.add_argument("--maxent-iterations", type=int, default=500)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    p.add_argument("--states", type=int, default=8)
    p.add_argument("--actions", type=int, default=3)
    p.add_argument("--gamma", type=float, default=0.9)
    p.add_argument("--plot", type=Path, default=None)
    args = p.parse_args(argv)

    rows, curves = [], []
    for name, mdp, w in problems(args.seeds, args.states, args.actions, args.gamma):
        r = mdp.phi @ w
        expert = greedy(q_values(mdp, r))
        mu_e = features(mdp, expert)
        j_e = value(mdp, expert, r)
        game = solve_game(mdp, mu_e, iterations=args.iterations)
        j_game = float((game.policy_occupancy * r).sum())
        me = maxent_irl(mdp, mu_e, iterations=args.maxent_iterations)
        j_me = float((occupancy(mdp, me.policy) * r).sum())
        bound = game.moment_gap[-1] * np.abs(w).sum()
        rows.append(
            f"| {name} | {game.gap[9]:.4f} | {game.gap[99]:.4f} | {game.gap[-1]:.4f} | {game.moment_gap[-1]:.4f} "
            f"| {j_e:.4f} | {j_game:.4f} | {abs(j_e - j_game):.4f} <= {bound:.4f} "
            f"| {me.moment_gap[-1]:.4f} | {j_me:.4f} |"
        )
        curves.append((name, np.array(game.gap), np.array(me.moment_gap)))

    print(
        f"| MDP | game gap @10 | @100 | @{args.iterations} | moment gap | J expert | J game policy "
        f"| abs(regret) <= bound | MaxEnt moment gap @{args.maxent_iterations} | J MaxEnt policy |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(1, 2, figsize=(10, 3.8))
        t = np.arange(1, args.iterations + 1)
        for name, gap, _ in curves:
            ax[0].loglog(t, np.maximum(gap, 1e-12), label=name)
        ax[0].loglog(t, curves[-1][1][9] * np.sqrt(10 / t), "k--", lw=1, label="1/sqrt(t)")
        ax[0].set(xlabel="iteration", ylabel="duality gap", title="moment matching as a game (MW vs VI)")
        for name, _, mg in curves:
            ax[1].semilogy(np.arange(1, len(mg) + 1), np.maximum(mg, 1e-12), label=name)
        ax[1].set(xlabel="iteration", ylabel="||mu_E - mu_theta||_inf", title="MaxEnt IRL")
        ax[0].legend(fontsize=7)
        fig.tight_layout()
        args.plot.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(args.plot, dpi=110)
        print(f"plot: {args.plot}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
