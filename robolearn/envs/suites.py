"""Names of the task suites robolearn runs (Meta-World v3), without importing their simulators:
config composition and error messages check and list them cheaply."""

from __future__ import annotations

import difflib

from robolearn.errors import ConfigError

# Meta-World v3's 50 environments (``metaworld.env_dict.ALL_V3_ENVIRONMENTS``, same order); kept
# here so names can be checked and listed without importing metaworld. A test compares the two.
TASKS = (
    "assembly-v3", "basketball-v3", "bin-picking-v3", "box-close-v3", "button-press-topdown-v3",
    "button-press-topdown-wall-v3", "button-press-v3", "button-press-wall-v3", "coffee-button-v3",
    "coffee-pull-v3", "coffee-push-v3", "dial-turn-v3", "disassemble-v3", "door-close-v3", "door-lock-v3",
    "door-open-v3", "door-unlock-v3", "hand-insert-v3", "drawer-close-v3", "drawer-open-v3",
    "faucet-open-v3", "faucet-close-v3", "hammer-v3", "handle-press-side-v3", "handle-press-v3",
    "handle-pull-side-v3", "handle-pull-v3", "lever-pull-v3", "pick-place-wall-v3", "pick-out-of-hole-v3",
    "pick-place-v3", "plate-slide-v3", "plate-slide-side-v3", "plate-slide-back-v3",
    "plate-slide-back-side-v3", "peg-insert-side-v3", "peg-unplug-side-v3", "soccer-v3", "stick-push-v3",
    "stick-pull-v3", "push-v3", "push-wall-v3", "push-back-v3", "reach-v3", "reach-wall-v3",
    "shelf-place-v3", "sweep-into-v3", "sweep-v3", "window-open-v3", "window-close-v3",
)  # fmt: skip
MT10 = (
    "reach-v3", "push-v3", "pick-place-v3", "door-open-v3", "drawer-open-v3", "drawer-close-v3",
    "button-press-topdown-v3", "peg-insert-side-v3", "window-open-v3", "window-close-v3",
)  # fmt: skip
PREFIX = "metaworld/"
PRESETS = {"MT10": MT10, "MT50": TASKS}


def check_name(env_name: str) -> None:
    """One line naming the close matches for an unknown Meta-World task."""
    if env_name not in TASKS:
        close = difflib.get_close_matches(env_name, TASKS, n=4, cutoff=0.5)
        hint = f"close matches: {', '.join(PREFIX + c for c in close)}" if close else "see robolearn.envs.suites.TASKS"
        raise ConfigError(f"task {PREFIX}{env_name}: not one of Meta-World v3's 50 tasks; {hint}")
