"""Experiments: variants x tasks x seeds, trained and evaluated alike (``robolearn ablate``), and the
delay sweep over them (``robolearn delay``).

- ``spec.py``: the experiment file (load, validate, a suite's expansion, the cells it plans);
- ``cells.py``: one cell runner (collect, train or run rounds, evaluate, resume, shard over ranks);
- ``report.py``: pooling over seeds, Wilson intervals, CSV / Markdown tables, plots;
- ``delay.py``: the delay experiment's cells (executors x delays x horizons) on the same runner.

A new experiment kind is a spec (its file's keys, checked in ``spec.py``) and a cell function
registered for its ``algo.name`` (``@register_cell``, as the adversarial cell is); planning,
resuming, sharding and the results files come with the runner.


The grid answers Pan et al. (2025, "Much Ado About Noising"): when a generative head beats
regression, is it distribution fitting (C1), noise injected during training (C2) or iterative
refinement with supervision at every step (C3)? Every variant is a config over the existing
heads. A variant either trains its own model (``train:`` overrides) or re-samples another
variant's trained weights with different inference options (``from:`` + ``sample:``, e.g. flow
with z = 0, or with 1 / 2 / 3 / 9 network evaluations), so it costs an evaluation, not a run.

Layout under the experiment's ``out`` directory::

    data/<task>.zarr                 demos collected for tasks with a ``collect:`` block
    train/<variant>/<task>/s<seed>/  one training run (trainer resume files included)
    cells/<variant>/<task>/s<seed>/metrics.json   one evaluated cell
    results.csv, results.md, results.png

A cell whose ``metrics.json`` exists is never re-run; a killed training resumes from its last
checkpoint; demos are collected to a temporary store and renamed when complete. Re-running the
command after an interruption finishes the grid.

Under ``torchrun`` (or any launch that sets ``RANK`` / ``WORLD_SIZE``) the ranks split the grid:
the cells that share one trained model (a variant and those re-sampling it, per task and seed)
go to one rank, model m to rank m mod world, so no model is ever trained twice; rank 0 collects
the demos, and waits for every cell before writing the results. No process group is needed:
cells are independent runs.
"""

from robolearn.experiments.cells import CELL_KINDS, finished_rows, register_cell, run_experiment, train_cell
from robolearn.experiments.report import aggregate, markdown_table, results_table, suite_markdown, write_results
from robolearn.experiments.spec import cell_cfg, load_experiment, plan, trained_by

__all__ = [
    "aggregate",
    "cell_cfg",
    "finished_rows",
    "load_experiment",
    "markdown_table",
    "plan",
    "results_table",
    "run_experiment",
    "suite_markdown",
    "train_cell",
    "CELL_KINDS",
    "register_cell",
    "trained_by",
    "write_results",
]
