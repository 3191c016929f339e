"""The layout's rules, checked on the import graph (every import, at module level or inside a
function): no cycles between modules, and no import in a forbidden direction.

Roles (docs/architecture.md): the core (contract, ports, settings, logs, hot path, batch path,
adapters, local stand-ins) never imports the composition root, the application layer, the dev
tools, the producer process, the Dagster code location or the dashboard; those outer parts may
import the core, and only the app layer and the dev tools may import the outer parts.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

from tests.support.paths import ROOT

PACKAGES = ("musicnft", "producer", "musicnft_dagster", "dashboard")
HANDLER = "lambda_handler"  # lambda/handler.py, loaded by path (as AWS does)

CORE = (
    "musicnft.contract",
    "musicnft.ports",
    "musicnft.settings",
    "musicnft.logs",
    "musicnft.stop_event",
    "musicnft.hotpath",
    "musicnft.batch",
    "musicnft.adapters",
    "musicnft.local",
)
# role prefix -> what it may import besides itself and the Python/third-party world
ALLOWED: dict[str, tuple[str, ...]] = {
    "musicnft.contract": (),
    "musicnft.ports": ("musicnft.contract",),
    "musicnft.settings": (),
    "musicnft.logs": (),
    # the stop flag a signal handler may set (standard library only)
    "musicnft.stop_event": (),
    "musicnft.hotpath": (
        "musicnft.contract",
        "musicnft.ports",
        "musicnft.settings",
        "musicnft.logs",
    ),
    "musicnft.batch": (
        "musicnft.contract",
        "musicnft.ports",
        "musicnft.hotpath",
        "musicnft.settings",
        "musicnft.logs",
    ),
    "musicnft.adapters": (
        "musicnft.contract",
        "musicnft.ports",
        "musicnft.settings",
        "musicnft.logs",
    ),
    "musicnft.local": (
        "musicnft.contract",
        "musicnft.ports",
        "musicnft.hotpath",
        "musicnft.adapters",
        "musicnft.settings",
        "musicnft.logs",
    ),
    # the sentiment model's training and serving (issue 15): outer, beside the app layer
    "musicnft.model": (
        "musicnft.contract",
        "musicnft.ports",
        "musicnft.hotpath",
        "musicnft.batch",
        "musicnft.settings",
        "musicnft.logs",
    ),
    # the Spark scoring job (issue 16): outer, zipped alone for EMR Serverless
    "musicnft.spark": (
        "musicnft.contract",
        "musicnft.ports",
        "musicnft.hotpath",
        "musicnft.batch",
        "musicnft.logs",
        "musicnft.stop_event",
    ),
    "musicnft.wiring": CORE,
    "producer": (*CORE, "musicnft.wiring"),
    "dashboard": (*CORE, "musicnft.wiring"),
    "musicnft_dagster": (*CORE, "musicnft.wiring", "musicnft.model", "musicnft.spark"),
    HANDLER: (*CORE, "musicnft.wiring"),
    "musicnft.app": (
        *CORE,
        "musicnft.wiring",
        "musicnft.model",
        "musicnft.spark",
        "musicnft.devtools",
        "producer",
        "musicnft_dagster",
        "dashboard",
    ),
    "musicnft.devtools": (
        *CORE,
        "musicnft.wiring",
        "musicnft.app",
        "producer",
        "musicnft.compiled",
    ),
    "musicnft.__main__": ("musicnft.app",),
    # the compiled builds' list and import guard: standard library only (setup.py reads it)
    "musicnft.compiled": (),
    "musicnft": ("musicnft.compiled",),  # the package's own __init__ installs the guard
}


def _modules() -> dict[str, Path]:
    out: dict[str, Path] = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            rel = path.relative_to(ROOT).with_suffix("")
            parts = list(rel.parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    out[HANDLER] = ROOT / "lambda" / "handler.py"
    return out


def _imports(path: Path, modules: dict[str, Path]) -> Iterator[str]:
    """The project modules `path` imports (anywhere in the file)."""
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from pkg import mod` names the module; `from mod import name` names mod
            names = [
                f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                for a in node.names
            ]
        for name in names:
            while name and name not in modules:
                name = name.rpartition(".")[0]
            if name:
                yield name


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        graph[name] = {m for m in _imports(path, modules) if m != name}
    # `from musicnft.x import y` also names the package `musicnft.x`: an __init__ is no edge back
    for name, deps in graph.items():
        graph[name] = {d for d in deps if not name.startswith(d + ".")}
    return graph


def _role(module: str) -> str:
    best = ""
    for role in ALLOWED:
        if (module == role or module.startswith(role + ".")) and len(role) > len(best):
            best = role
    assert best, f"{module} has no role in ALLOWED: add it (and to docs/architecture.md)"
    return best


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []
    counter = [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_module_imports_in_a_cycle() -> None:
    assert _cycles(_graph()) == []


def test_no_import_goes_in_a_forbidden_direction() -> None:
    wrong = []
    for module, deps in sorted(_graph().items()):
        role = _role(module)
        for dep in sorted(deps):
            dep_role = _role(dep)
            if dep_role != role and dep_role not in ALLOWED[role]:
                wrong.append(f"{module} -> {dep}")
    assert wrong == []


def _third_party(path: Path, module_level_only: bool) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    nodes = tree.body if module_level_only else list(ast.walk(tree))
    out: set[str] = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module.split(".")[0] if node.module != "google.cloud" else "google")
    return out


def test_the_core_never_imports_dagster_and_no_cloud_sdk_at_module_level() -> None:
    # DESIGN: the core imports neither Dagster nor cloud SDKs at module level, so the Lambda
    # bundle stays small; Dagster belongs to the code location, never to the core at all.
    wrong = []
    for module, path in sorted(_modules().items()):
        if _role(module) not in CORE:
            continue
        if "dagster" in _third_party(path, module_level_only=False):
            wrong.append(f"{module} imports dagster")
        cloud = _third_party(path, module_level_only=True) & {"boto3", "botocore", "google"}
        if cloud:
            wrong.append(f"{module} imports {sorted(cloud)} at module level")
    assert wrong == []


def test_the_checker_sees_cycles_and_forbidden_imports() -> None:
    # The checks above must be able to fail: a made-up graph with one cycle and one upward import
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]
    assert _role("musicnft.batch.window_pipeline") == "musicnft.batch"
    assert "musicnft_dagster" not in ALLOWED[_role("musicnft.batch.backfill")]


def test_the_core_package_has_few_top_level_modules() -> None:
    top = [p.name for p in (ROOT / "musicnft").glob("*.py")]
    assert len(top) <= 10, top
