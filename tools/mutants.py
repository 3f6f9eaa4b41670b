"""Do the tests catch wrong implementations? Each entry below is a one-line change to robolearn that a
plausible bug would make, and the test that must fail for it. The tool copies the checkout to a
temporary folder, applies one mutation at a time there (never in the checkout itself, so runs in
progress keep their code), runs the named tests against the copy, and reports caught / missed.

    python tools/mutants.py                 # every mutant (about 10 minutes on 2 cores)
    python tools/mutants.py --only ema lock # some, by name
    python tools/mutants.py --list

Exit status 1 if a mutant survives (a test that should have caught it passed) or if a mutation no
longer applies (the line it changes moved: update the entry).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# name: (file, line as it is, line as the bug would make it, tests that must fail, what the bug is)
MUTANTS: dict[str, tuple[str, str, str, list[str], str]] = {
    "wilson": (
        "robolearn/eval/metrics.py",
        "    lo, hi = wilson_interval(succ, n)",
        "    lo, hi = wilson_interval(succ, n + 1)",
        ["tests/test_train_eval.py::test_evaluation_writes_metrics"],
        "the summary's interval not computed from the episodes written",
    ),
    "ema": (
        "robolearn/train/trainer.py",
        "        pe.lerp_(pm.detach(), 1.0 - decay)",
        "        pe.lerp_(pm.detach(), decay)",
        ["tests/test_training_parts.py::test_ema_update_is_the_exponential_average"],
        "EMA weights the new parameters by decay instead of 1 - decay",
    ),
    "cosine": (
        "robolearn/train/trainer.py",
        "        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))",
        "        return 1.0",
        ["tests/test_training_parts.py::test_learning_rate_warms_up_linearly_then_follows_a_cosine_to_zero"],
        "no cosine decay after warm-up",
    ),
    "grad_clip": (
        "robolearn/train/trainer.py",
        "        gnorm = torch.nn.utils.clip_grad_norm_(policy.parameters(), float(algo.grad_clip))",
        '        gnorm = torch.nn.utils.clip_grad_norm_(policy.parameters(), float("inf"))',
        ["tests/test_training_parts.py::test_training_logs_the_unclipped_norm_and_clips"],
        "algo.grad_clip ignored",
    ),
    "atomic": (
        "robolearn/atomic.py",
        '    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp{path.suffix}")',
        "    tmp = path",
        ["tests/test_training_parts.py::test_atomic_write_keeps_the_old_file_when_the_writer_fails"],
        "writing in place: a failed writer leaves a half-written file",
    ),
    "lock": (
        "robolearn/locks.py",
        "                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino",
        "                same = True",
        ["tests/test_training_parts.py::test_lock_retries_when_its_file_was_replaced_between_open_and_lock"],
        "a lock taken on a file another process already replaced (two writers)",
    ),
    "frozen_prefix": (
        "robolearn/heads/flow.py",
        "            x = torch.where((w >= FROZEN)[..., None], prefix, x)",
        "            x = torch.where((w > 0)[..., None], prefix, x)",
        ["tests/test_heads.py::test_soft_prefix_weights_do_what_each_head_family_declares"],
        "every step with a soft weight copied from the prefix (free steps never react)",
    ),
    "rtc_guidance": (
        "robolearn/nets/denoiser.py",
        "        err = (prefix - est.detach()) * w[..., None]",
        "        err = prefix - est.detach()",
        ["tests/test_heads.py::test_rtc_guidance_is_the_vector_jacobian_product_of_a_linear_estimate"],
        "RTC guidance without the soft mask",
    ),
    "lipschitz": (
        "robolearn/dynamics.py",
        "            loss = loss + penalty * torch.relu(jac - lipschitz).pow(2).mean()",
        "            loss = loss",
        ["tests/test_dynamics.py::test_the_penalty_bounds_the_jacobian_where_the_data_is_steep"],
        "the dynamics model's Lipschitz penalty dropped",
    ),
    "bid_batch": (
        "robolearn/execution/bid.py",
        "        return out.reshape(b, n, self.H, self.A)",
        "        return out.reshape(n, b, self.H, self.A).transpose(1, 0, 2, 3)",
        ["tests/test_execution.py::test_bid_keeps_the_candidate_nearest_the_previous_plan"],
        "BID's candidates regrouped env-minor: env i judged on env j's chunks",
    ),
    "variant_sampling": (
        "robolearn/experiments/cells.py",
        "    policy = ChunkPolicy.load(ckpt, device=pick_device(str(cfg.device)), head_overrides=sample)",
        "    policy = ChunkPolicy.load(ckpt, device=pick_device(str(cfg.device)))",
        ["tests/test_ablate.py::test_tiny_grid_end_to_end_then_skips_finished_cells"],
        "an ablation variant's sampling options never reach the evaluated policy",
    ),
    "ddp_windows": (
        "robolearn/train/trainer.py",
        "        rng = np.random.default_rng(int(cfg.seed) if dist.world == 1 else [int(cfg.seed), dist.rank])",
        "        rng = np.random.default_rng(int(cfg.seed))",
        ["tests/test_distributed.py::test_one_ddp_step_is_the_average_of_the_ranks_gradients_on_their_own_windows"],
        "every rank draws the same windows (the global batch is one rank's batch twice)",
    ),
    "schema_algo": (
        "robolearn/config_schema.py",
        '    "bc": BCSchema,',
        '    "bc": DAggerSchema,',
        ["tests/test_config_schema.py::test_each_algorithm_has_its_own_keys"],
        "one merged algorithm schema: BC accepts DAgger's options that nothing reads",
    ),
    "schema_head": (
        "robolearn/config_check.py",
        '    if path == "policy.head":',
        '    if path == "policy.head" and False:',
        ["tests/test_config_schema.py::test_component_options_are_checked_on_compose"],
        "head options unchecked until the model is built",
    ),
    "schema_range": (
        "robolearn/config_schema.py",
        'PosInt = Annotated[int, Rule(lambda v: v >= 1, "a positive int")]',
        'PosInt = Annotated[int, Rule(lambda v: v >= 0, "a positive int")]',
        ["tests/test_config_strict.py"],
        "a range off by one (steps=0 accepted)",
    ),
    "schema_encoder": (
        "robolearn/config_check.py",
        "    return schema",
        "    return None",
        ["tests/test_config_schema.py::test_component_options_are_checked_on_compose"],
        "encoder options unchecked until the encoder is built (nested schemas not resolved)",
    ),
    "route_sign": (
        "robolearn/envs/dynamic.py",
        '    return "left" if m < -min_offset else "right" if m > min_offset else "direct"',
        '    return "right" if m < -min_offset else "left" if m > min_offset else "direct"',
        ["tests/test_modality.py::test_routes_of_catch_episodes_are_read_off_the_approach"],
        "catch's route classifier reads the waiting side mirrored",
    ),
    "head_overrides": (
        "robolearn/policy.py",
        '            meta["policy"] = {**meta["policy"], "head": {**meta["policy"]["head"], **dict(head_overrides)}}',
        "            pass",
        ["tests/test_cli_usability.py::test_head_sampling_options_and_step_limit_on_eval"],
        "eval's head.KEY=VALUE options checked, echoed, and never given to the loaded head",
    ),
    "nfe": (
        "robolearn/heads/base.py",
        "        return int(cls.option(options, cls.nfe_option)) if cls.nfe_option else 1",
        "        return int(cls.option(options, cls.nfe_option)) if cls.nfe_option else 2",
        ["tests/test_head_contract.py::test_network_evaluations_is_what_sampling_costs"],
        "the declared network passes per chunk (the cost tables' NFE) not what sampling costs",
    ),
    "audit": (
        "robolearn/algos/corrective/trust.py",
        "    err = np.sqrt(np.mean(np.square((reached - states[t + 1]) / scale), axis=-1))",
        "    err = np.sqrt(np.mean(np.square((reached - states[t]) / scale), axis=-1))",
        ["tests/test_corrective.py::test_audit_executes_labels_in_the_true_system"],
        "the audit of corrective labels compares where they lead with the current state, not the next",
    ),
    "cell_kind": (
        "robolearn/experiments/cells.py",
        "    return CELL_KINDS.get(str(cfg.algo.name), CellKind(policy_cell))",
        "    return CellKind(policy_cell)",
        ["tests/test_ablate.py::test_a_new_experiment_kind_is_a_schema_and_one_cell_function"],
        "the runner ignores registered cell kinds (every cell trained as a ChunkPolicy)",
    ),
    "error_key": (
        "robolearn/config_check.py",
        "        key = prefix + k",
        "        key = k",
        ["tests/test_fault_corpus.py::test_train_with_bad_options"],
        "a config error names the leaf (steps) instead of the key (algo.steps)",
    ),
    "unpaired": (
        "robolearn/experiments/delay.py",
        "                        diff = x - np.array([base[u] for u in common])",
        "                        diff = x - np.sort(np.array([base[u] for u in common]))",
        ["tests/test_delay_experiment.py::test_paired_statistics_pair_by_unit_and_average_over_s"],
        "the difference to naive async is not paired by (training seed, evaluation seed)",
    ),
    "game_gap": (
        "robolearn/game/tabular.py",
        "        logw += eta * (mu_e_signed - mu_signed)  # the adversary gains where the expert beats the learner",
        "        logw -= eta * (mu_e_signed - mu_signed)  # the adversary gains where the expert beats the learner",
        ["tests/test_game_tabular.py::test_the_two_state_game_has_the_known_equilibrium"],
        "the reward player descends instead of ascending (no longer an adversary)",
    ),
    "chunk_end": (
        "robolearn/algos/labelers.py",
        "                    if term or trunc:  # the episode ends inside the chunk (Meta-World refuses a step past",
        "                    if False:  # the episode ends inside the chunk (Meta-World refuses a step past",
        ["tests/test_metaworld.py::test_chunk_labels_near_the_episode_end_stop_at_it"],
        "expert chunk labels roll the simulator past the episode's end",
    ),
    "own_data": (
        "robolearn/experiments/cells.py",
        "        data = Path(str(given)) if given else data",
        "        data = data",
        ["tests/test_ablate.py::test_a_cell_trained_on_the_tasks_own_data_counts_its_steps_as_labels"],
        "a cell trained on the task's own data (human demos) reports no labels",
    ),
    "plan_prefix": (
        "tools/expert_plan_delay.py",
        "        pending = pending_prefix(self.buf[:, (k - 1) % self.ring], self.s)[0, : self.d]",
        "        pending = self.buf[0, (k - 1) % self.ring, : self.d]",
        ["tests/test_expert_plans.py"],
        "exact inpainting replays the previous chunk's first actions instead of the ones still pending",
    ),
    "cart_side": (
        "robolearn/envs/dynamic.py",
        '        return self.track(env, -self.target if self.mode(env) == "left" else self.target)',
        "        return self.track(env, self.target)",
        ["tests/test_dynamic_tasks.py::test_cartpole_multimodal_expert_balances_on_two_distinct_tracks"],
        "the multimodal cartpole expert ignores the side drawn for the episode",
    ),
    "render_fast": (
        "robolearn/envs/metaworld.py",
        '        fast = render_quality == "fast"',
        "        fast = False",
        ["tests/test_metaworld.py::test_fast_rendering_draws_the_same_scene_without_smoothing"],
        "render_quality=fast is accepted but the renderer keeps the full settings",
    ),
    "seed_resume": (
        "robolearn/experiments/spec.py",
        "    exp.seeds = old if old else new  # every other setting must match the finished cells",
        "    exp.seeds = new",
        ["tests/test_ablate.py::test_tiny_grid_end_to_end_then_skips_finished_cells"],
        "an experiment cannot be extended by training seeds into its --out (seeds=[1] after seeds=[0] refused)",
    ),
    "delay_shard": (
        "robolearn/experiments/delay.py",
        "    models = rank_share(exp, selected, rank, world)",
        "    models = selected",
        ["tests/test_distributed.py::test_two_rank_delay_sweep_splits_the_models_and_pools_the_tables"],
        "under torchrun every rank runs the whole delay sweep (each model trained by both ranks)",
    ),
    "variant_order": (
        "robolearn/experiments/spec.py",
        '        *(exp.get("train") or []),\n        *tv.train,',
        '        *tv.train,\n        *(exp.get("train") or []),',
        ["tests/test_ablate.py::test_a_variants_setting_wins_over_the_files_and_the_command_line_over_both"],
        "a variant's own setting (algo.steps=10000) is silently overridden by the file's common train:",
    ),
    "variants_filter": (
        "robolearn/experiments/spec.py",
        "        if (not only_variants or c[0] in only_variants)",
        "        if True",
        ["tests/test_ablate.py::test_expert_cells_give_the_reference_of_a_regret_table"],
        "--variants is checked but every variant's cells run",
    ),
}


def copy_checkout(dest: Path) -> None:
    skip = {".venv", ".git", "runs", "data", "__pycache__", ".pytest_cache", ".ruff_cache", "outputs"}
    shutil.copytree(ROOT, dest, symlinks=True, ignore=lambda d, names: [n for n in names if n in skip])


def pytest(tmp: Path, tests: list[str], timeout: int) -> tuple[int, str]:
    """Run ``tests`` against the copy (its robolearn first on the path, subprocesses included)."""
    env = {**os.environ, "PYTHONPATH": str(tmp), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
    try:
        r = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *tests],
            cwd=tmp,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return -1, "timeout"
    return r.returncode, (r.stdout.strip().splitlines() or [""])[-1]


def run_one(name: str, tmp: Path, timeout: int) -> tuple[str, float, str]:
    file, old, new, tests, _ = MUTANTS[name]
    path = tmp / file
    text = path.read_text()
    if text.count(old + "\n") != 1:
        return "stale", 0.0, f"{file}: the line to mutate is not there exactly once: {old.strip()!r}"
    path.write_text(text.replace(old + "\n", new + "\n"))
    t0 = time.perf_counter()
    try:
        rc, tail = pytest(tmp, tests, timeout)
    finally:
        path.write_text(text)
    status = {1: "caught", 0: "missed", -1: "timeout"}.get(rc, f"error rc={rc}")
    return status, time.perf_counter() - t0, tail


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", nargs="*", default=None, help="mutant names (default: all)")
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--timeout", type=int, default=900, help="seconds per mutant")
    a = ap.parse_args()
    if a.list:
        for n, (f, _, _, tests, why) in MUTANTS.items():
            print(f"{n:18} {f:34} {why}  [{', '.join(tests)}]")
        return 0
    names = a.only or list(MUTANTS)
    unknown = [n for n in names if n not in MUTANTS]
    if unknown:
        print(f"--only: unknown mutant(s) {unknown}; choose from {list(MUTANTS)}", file=sys.stderr)
        return 2
    bad = 0
    with tempfile.TemporaryDirectory(prefix="robolearn-mutants-") as d:
        tmp = Path(d) / "checkout"
        copy_checkout(tmp)
        tests = list(dict.fromkeys(t for n in names for t in MUTANTS[n][3]))
        rc, tail = pytest(tmp, tests, a.timeout * len(names))  # unmutated, the same tests must pass
        if rc != 0:
            print(f"the unmutated copy fails its tests ({tail}): nothing to conclude", file=sys.stderr)
            return 2
        print(f"unmutated copy: {tail}")
        print("| mutant | file | the bug | test | result | s |")
        print("|---|---|---|---|---|---|")
        for n in names:
            status, secs, tail = run_one(n, tmp, a.timeout)
            file, _, _, tests, why = MUTANTS[n]
            bad += status != "caught"
            shown = ", ".join(t.split("::")[-1] for t in tests)
            print(f"| {n} | {file} | {why} | {shown} | {status} | {secs:.0f} |", flush=True)
            if status != "caught" and tail:
                print(f"  ({tail})", flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
