"""The ``touchpoints`` command: a thin face over the core (parse options, build, hand over).

Every command takes ``--data-dir`` (or TOUCHPOINTS_DATA_DIR). While a server owns the data
directory, commands go through its API; otherwise they open the DuckDB file directly.

The commands are registered when ``app`` is first asked for (or ``main`` runs), not when the
package is imported: a collector process runs a module of this package
(``python -m touchpoints.cli.collectors``) and needs none of them, nor the application they
import.
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import typer

__all__ = ["app", "main"]


# The command modules, in the order of their commands in --help: importing one registers its
# commands on the app.
_COMMAND_MODULES = (
    "server",
    "data",
    "identity",
    "journeys",
    "privacy",
    "access",
    "destinations",
    "audiences",
    "triggers",
    "predict",
    "assistant",
    "placements",
    "spark",
)


def _commands() -> typer.Typer:
    """The Typer app with every command registered."""
    for name in _COMMAND_MODULES:
        importlib.import_module(f"touchpoints.cli.{name}")
    from touchpoints.cli.base import app

    return app


def __getattr__(name: str) -> Any:
    if name == "app":
        return _commands()
    raise AttributeError(f"module 'touchpoints.cli' has no attribute {name!r}")


def main() -> None:
    # Everything touchpoints writes is personal data (the database, its logs, exports, the
    # demo's files): readable by its owner only, whatever umask the shell has.
    os.umask(0o077)
    _commands()()
