"""The architecture as docs/architecture.md draws it is the one the checks enforce."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "touchpoints"
# SQL statements, as a store writes them: what no module outside storage may hold.
_SQL = re.compile(
    r"\b(SELECT\b[^\n]*\bFROM|INSERT INTO|DELETE FROM|CREATE (?:TEMP |OR REPLACE )?TABLE|"
    r"UPDATE \w+ SET|BEGIN TRANSACTION)\b"
)


def _documented_layers() -> list[str]:
    text = (ROOT / "docs" / "architecture.md").read_text()
    section = text.split("## The layers", 1)[1]
    block = section.split("```", 2)[1]
    layers = []
    for line in block.strip().splitlines():
        modules = re.findall(r"touchpoints\.\w+", line)
        layers.append(" | ".join(modules))
    return layers


def test_the_documented_layers_are_the_checked_ones() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (contract,) = config["contracts"]
    assert contract["type"] == "layers"
    assert _documented_layers() == contract["layers"]


def test_every_package_and_module_is_in_a_layer() -> None:
    layered = {name for line in _documented_layers() for name in line.split(" | ")}
    found = {
        f"touchpoints.{path.stem if path.is_file() else path.name}"
        for path in PACKAGE.iterdir()
        if (path.is_dir() and (path / "__init__.py").exists())
        or (path.suffix == ".py" and path.stem not in ("__init__", "__main__"))
    }
    assert found == layered


def test_sql_is_written_only_in_storage() -> None:
    """SQL text lives in the warehouse and in the parts' stores, nowhere else."""
    outside = []
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE)
        if relative.parts[0] == "warehouse" or path.name == "store.py" or "store" in relative.parts:
            continue
        if _SQL.search(path.read_text()):
            outside.append(str(relative))
    assert outside == []
