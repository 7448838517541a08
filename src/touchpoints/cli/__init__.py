"""The ``touchpoints`` command: a thin face over the core (parse options, build, hand over).

Every command takes ``--data-dir`` (or TOUCHPOINTS_DATA_DIR). While a server owns the data
directory, commands go through its API; otherwise they open the DuckDB file directly.

The commands are registered when ``app`` is first asked for (or ``main`` runs), not when the
package is imported: a collector process runs a module of this package
(``python -m touchpoints.cli.collectors``) and needs none of them, nor the application they
import.
"""

from __future__ import annotations

import atexit
import importlib
import os
import sys
import threading
from typing import TYPE_CHECKING, Any, NoReturn

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
    try:
        _commands()()
    except SystemExit as done:  # how every command ends (click's standalone mode)
        _leave(done.code)


def _leave(code: object) -> NoReturn:
    """End the process as the interpreter would, without its teardown: the other
    (non-daemon) threads joined, the ``atexit`` functions run (logging's flush, Spark's
    gateway, temporary directories), the streams flushed; then ``os._exit``.

    The teardown is where a thread still inside DuckDB's C++ code aborts the process (exit
    code -6, "terminate called after throwing an instance of '' / FATAL: exception not
    rethrown", once the command's work is done): once the interpreter is finalising, a
    thread other than the main one that asks for the GIL back is ended by ``pthread_exit``,
    whose unwinding meets a C++ ``catch (...)`` or destructor. A daemon thread in a DuckDB
    query at ``sys.exit`` does it every time (tests/unit/test_cli_exit.py); a command did it
    about once in a few hundred runs on a loaded machine, once in CI. Without the teardown
    no thread is ever ended that way; what the command wrote was closed by the command."""
    # What the interpreter does first on its way out: thread pools told to stop, then every
    # non-daemon thread joined (a private function of threading, the interpreter's own).
    threading._shutdown()  # type: ignore[attr-defined]
    atexit._run_exitfuncs()
    if code is None:
        status = 0
    elif isinstance(code, int):
        status = code
    else:  # as the interpreter does with sys.exit("message")
        print(code, file=sys.stderr)
        status = 1
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can be said there
            pass
    os._exit(status)
