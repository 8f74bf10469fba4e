"""Data flows one way: load -> views -> detectors -> clusters -> decisions -> outputs, with
the training run joining at the memorization report. This walks every module's imports to keep
it that way, on both report sides (scan and memorization), with no import cycle and no private
name used across modules."""

from __future__ import annotations

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parent.parent / "dedup_audit"

# module prefix -> prefixes it must never import
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "dedup_audit.detect": (
        "dedup_audit.readers",
        "dedup_audit.writers",
        "dedup_audit.commands",
        "dedup_audit.cli",
        "dedup_audit.pipeline",
        "dedup_audit.training",
        "dedup_audit.reports.memorization",
    ),
    "dedup_audit.views": ("dedup_audit.detect", "dedup_audit.readers", "dedup_audit.pipeline"),
    "dedup_audit.clusters": ("dedup_audit.detect", "dedup_audit.decide", "dedup_audit.readers"),
    "dedup_audit.decide": (
        "dedup_audit.training",
        "dedup_audit.readers",
        "dedup_audit.writers",
    ),
    "dedup_audit.formats": (
        "dedup_audit.detect",
        "dedup_audit.pipeline",
        "dedup_audit.training",
    ),
    "dedup_audit.readers": (
        "dedup_audit.detect",
        "dedup_audit.pipeline",
        "dedup_audit.training",
    ),
    "dedup_audit.writers": (
        "dedup_audit.detect",
        "dedup_audit.pipeline",
        "dedup_audit.training",
    ),
    "dedup_audit.encoders": ("dedup_audit.detect", "dedup_audit.pipeline", "dedup_audit.readers"),
    "dedup_audit.pipeline": (
        "dedup_audit.training",
        "dedup_audit.commands",
        "dedup_audit.cli",
        "dedup_audit.reports",
        "dedup_audit.cleaning",
        "dedup_audit.api",
    ),
    # the scan report: built from a ScanResult (report_json), rendered (html), saved and read
    # back (saved, the one writer and reader), calibrated; never the CLI or the training side
    "dedup_audit.reports.scan": (
        "dedup_audit.commands",
        "dedup_audit.cli",
        "dedup_audit.api",
        "dedup_audit.cleaning",
        "dedup_audit.training",
        "dedup_audit.reports.memorization",
    ),
    "dedup_audit.reports.scan.report_json": (
        "dedup_audit.reports.scan.html",
        "dedup_audit.reports.scan.saved",
        "dedup_audit.writers",
    ),
    "dedup_audit.reports.scan.html": (
        "dedup_audit.reports.scan.saved",
        "dedup_audit.detect",
        "dedup_audit.engine",
        "dedup_audit.writers",
    ),
    # the memorization report reads a saved scan only through reports.scan.saved
    "dedup_audit.reports.memorization": (
        "dedup_audit.commands",
        "dedup_audit.cli",
        "dedup_audit.api",
        "dedup_audit.reports.scan.report_json",
        "dedup_audit.reports.scan.html",
    ),
    # the command list imports commands lazily by name; commands share commands.common
    "dedup_audit.cli": ("dedup_audit.commands",),
    "dedup_audit.commands": ("dedup_audit.cli",),
    "dedup_audit.api": ("dedup_audit.commands", "dedup_audit.cli"),
    "dedup_audit.training": (
        "dedup_audit.commands",
        "dedup_audit.cli",
        "dedup_audit.reports.memorization",
    ),
    # the HTML renders report.json; it computes nothing the JSON lacks
    "dedup_audit.reports.memorization.html": ("dedup_audit.training", "dedup_audit.pipeline"),
    "dedup_audit.reports.memorization.plots": ("dedup_audit.training", "dedup_audit.pipeline"),
}


def _module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def test_imports_follow_the_data_flow() -> None:
    modules = {_module_name(p): p for p in PKG.rglob("*.py")}
    assert (
        "dedup_audit.detect.minhash" in modules
        and "dedup_audit.reports.memorization.html" in modules
    )
    violations = []
    for name, path in sorted(modules.items()):
        for prefix, banned in FORBIDDEN.items():
            if name == prefix or name.startswith(prefix + "."):
                for imported in sorted(_imports(path)):
                    if any(imported == b or imported.startswith(b + ".") for b in banned):
                        violations.append(f"{name} imports {imported}")
    assert not violations, "\n".join(violations)


def test_the_walker_sees_a_violation(tmp_path: Path) -> None:
    bad = tmp_path / "x.py"
    bad.write_text("from dedup_audit.readers import load_dataset\nimport dedup_audit.cli\n")
    assert _imports(bad) == {"dedup_audit.readers", "dedup_audit.cli"}


def _graph() -> dict[str, set[str]]:
    """module -> the package modules it imports (lazy imports inside functions included; a
    package importing its own submodules is not an edge)."""
    modules = {_module_name(p): p for p in PKG.rglob("*.py")}

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                deps.update(filter(None, (resolve(a.name) for a in node.names)))
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("dedup_audit"):
                for a in node.names:
                    full = f"{node.module}.{a.name}"
                    dep = full if full in modules else resolve(str(node.module))
                    if dep:
                        deps.add(dep)
        graph[name] = {d for d in deps if d != name and not d.startswith(name + ".")}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    out: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
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
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_no_import_cycles() -> None:
    graph = _graph()
    assert "dedup_audit.reports.scan.saved" in graph["dedup_audit.commands.rethreshold"]
    assert not _cycles(graph), _cycles(graph)


def test_the_cycle_finder_sees_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_private_name_crosses_a_module() -> None:
    """`from dedup_audit.x import _name` couples modules through what x calls private."""
    crossings = []
    for path in PKG.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("dedup_audit"):
                for a in node.names:
                    # _native is the C extension, imported by the module that wraps it
                    if a.name.startswith("_") and a.name not in ("__version__", "_native"):
                        crossings.append(f"{_module_name(path)} imports {node.module}.{a.name}")
    assert not crossings, "\n".join(crossings)
