"""robolearn: learn robot policies from demonstrations (see README.md and docs/DESIGN.md).

``robolearn.evaluate(run_or_ckpt, ...)`` evaluates a run or checkpoint as `robolearn eval` does."""


def evaluate(*args, **kwargs):
    """See :func:`robolearn.eval.api.evaluate` (imported on first use: ``import robolearn`` stays light)."""
    from robolearn.eval.api import evaluate as _evaluate

    return _evaluate(*args, **kwargs)
