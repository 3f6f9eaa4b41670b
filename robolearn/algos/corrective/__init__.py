"""Corrective labels without an expert in the loop: from the simulator's true dynamics, or from a
learned dynamics model trusted only where it is accurate (CCIL, Ke et al. 2024).

BC sees only the demonstrated states; a learner that drifts off them has no label there. A
corrective label is a state near a demonstrated one and the action that brings the system back
onto the demonstrated next state. For a demonstrated transition (s*_t, a*_t, s*_{t+1}):

1. perturb: s_c = s*_t + noise * std * z (z standard normal; std the demonstrations' per-dim std;
   the same offset is applied to the ``obs_horizon`` - 1 states before it, so the observation
   history is the demonstration's, shifted);
2. search: the action a_c minimizing ||(step(s_c, a) - s*_{t+1}) / std|| (RMS over dims), by the
   cross-entropy method started at a*_t (or over a given candidate set when actions are discrete);
   ``step`` is the simulator (``dynamics: true``: the task puts the simulator at s_c, steps it and
   reads the state back) or a learned model (``dynamics: learned``);
3. keep the label only if the achieved error is below ``threshold`` and, for a learned model, the
   model's own error on that demonstrated transition (by a model that never saw its episode) is
   below ``trust``.

A chunked head predicts H actions, so the label is a chunk: a_c, then the demonstration's own
actions from t+1 (after a_c the system is back on the demonstration). The output zarr holds the
demonstrations and the corrective episodes (each the To perturbed states of one sample, every
step labelled), all with ``action_chunk``; train on it with ``algo.chunk_key=action_chunk``.
Provenance per step: ``corrective`` (0 demonstration, 1 generated) and ``label_error``.
"""

from robolearn.algos.corrective.driver import NEEDS, check_options, correct, write_dataset
from robolearn.algos.corrective.search import chunk_after, corrective_samples, demo_chunks, search_actions
from robolearn.algos.corrective.steps import ModelStep, SimStep
from robolearn.algos.corrective.trust import audit, keep_labels

__all__ = [
    "NEEDS",
    "ModelStep",
    "SimStep",
    "audit",
    "check_options",
    "chunk_after",
    "correct",
    "corrective_samples",
    "demo_chunks",
    "keep_labels",
    "search_actions",
    "write_dataset",
]
