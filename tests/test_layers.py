"""The library is a one-way house: no module imports one that imports it back, none imports
from a layer above its own, and none knows Snakemake (its entry points in workflow/scripts/
unpack ``snakemake.*`` into plain arguments)."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO

LIBRARY = REPO / "scripts" / "ocrkie"

# Top to bottom. A module imports from its own layer or those below, never above. The test
# fakes (ocrkie.testing) stand apart: they may import anything, and nothing imports them.
LAYERS = [
    ["planner"],  # the submitting Snakemake, once per run
    ["jobs"],  # a shard job
    ["stages", "worker"],
    ["engines"],
    ["learn", "report", "review", "lmdbset", "summary", "breaker", "outcome"],
    ["plan", "usage", "rules", "progress"],
    ["results", "cache", "tables", "agreement", "text", "evaluate", "evidence"],
    ["storage", "fields", "formats", "exports", "images", "inputs", "upstage", "secrets"],
    [
        "awscheck",
        "logs",
        "s3",
        "ratelimit",
        "errors",
        "gpu",
        "page",
        "normalize",
        "settings",
        "commands",
        "",
    ],
]


def modules() -> dict[str, Path]:
    found = {}
    for path in LIBRARY.rglob("*.py"):
        parts = path.relative_to(LIBRARY.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The library modules ``name`` imports (at any depth of its code)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            parts = package.split(".")
            base = ".".join([*parts[: len(parts) - node.level + 1], node.module or ""])
            target = base.strip(".") if node.level else node.module or ""
            candidates = [target, *(f"{target}.{alias.name}" for alias in node.names)]
        elif isinstance(node, ast.Import):
            candidates = [alias.name for alias in node.names]
        else:
            continue
        found |= {c for c in candidates if c in known and c != name}
    return found


def graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imports(name, path, set(found)) for name, path in found.items()}


def layer(module: str) -> int:
    """The layer of a library module (its top-level room under ``ocrkie``)."""
    room = module.removeprefix("ocrkie").lstrip(".").split(".")[0]
    for index, rooms in enumerate(LAYERS):
        if room in rooms:
            return index
    raise AssertionError(f"{module} is in no layer: give it one in LAYERS")


def test_no_module_imports_one_that_imports_it_back():
    edges = graph()
    cycles = []
    for start in edges:
        stack, seen = [(start, [start])], set()
        while stack:
            node, path = stack.pop()
            for nxt in edges.get(node, ()):
                if nxt == start:
                    cycles.append(" -> ".join([*path, start]))
                elif nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, [*path, nxt]))
    assert cycles == []


def test_no_module_imports_from_a_layer_above_its_own():
    climbing = [
        f"{module} imports {target}"
        for module, targets in graph().items()
        if not module.startswith("ocrkie.testing")
        for target in targets
        if target.startswith("ocrkie.testing") or layer(target) < layer(module)
    ]
    assert climbing == []


def test_the_library_knows_nothing_of_snakemake():
    users = [
        name
        for name, path in modules().items()
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Import | ast.ImportFrom)
        and any(
            (getattr(node, "module", None) or alias.name).split(".")[0] == "snakemake"
            for alias in node.names
        )
    ]
    assert users == []
