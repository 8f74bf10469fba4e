"""Data flows one way: load -> views -> detectors -> clusters -> decisions -> outputs, with
memorization joining at the report. This walks every module's imports to keep it that way."""

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
    "dedup_audit.pipeline": ("dedup_audit.training", "dedup_audit.commands", "dedup_audit.cli"),
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
