"""The package's modules form no import cycle (every import counts, at module level or inside a
function), so the layers stay one-way: data -> encoders -> heads -> policy -> execution -> eval,
with algorithms and the CLI on top."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def import_graph() -> dict[str, set[str]]:
    files = [*ROOT.glob("robolearn/**/*.py")]  # robolearn/envs included (envs/ is a link to it)
    mods = {}
    for p in files:
        parts = p.relative_to(ROOT).with_suffix("").parts
        mods[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = p

    def owner(name: str) -> str | None:
        while name:
            if name in mods:
                return name
            name = name.rpartition(".")[0]
        return None

    graph: dict[str, set[str]] = {m: set() for m in mods}
    for m, p in mods.items():
        for node in ast.walk(ast.parse(p.read_text())):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                targets = [f"{node.module}.{a.name}" for a in node.names]
            for t in targets:
                o = owner(t)
                if o and o != m:
                    graph[m].add(o)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles():
    graph = import_graph()
    assert len(graph) > 50  # the walk found the package
    assert cycles(graph) == []


def test_the_cycle_finder_finds_cycles():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_model_side_never_imports_orchestration():
    """Heads, encoders, nets, data and executors never import algorithms, training, evaluation or
    the CLI (the one-way flow of docs/DESIGN.md)."""
    graph = import_graph()
    lower = (
        "robolearn.heads",
        "robolearn.encoders",
        "robolearn.nets",
        "robolearn.data",
        "robolearn.execution",
        "robolearn.policy",
        "robolearn.dynamics",
    )
    upper = (
        "robolearn.algos",
        "robolearn.train",
        "robolearn.eval",
        "robolearn.cli",
        "robolearn.experiments",
        "robolearn.experiments.delay",
        "robolearn.config",  # composition: the model side gets plain dicts (config_files is a leaf)
    )
    bad = [(m, t) for m, ts in graph.items() if m.startswith(lower) for t in ts if t in upper or t.startswith(upper)]
    bad = [(m, t) for m, t in bad if t != "robolearn.config_files" and not t.startswith("robolearn.config_check")]
    assert bad == []
