"""The ``touchpoints`` command: a thin face over the core (parse options, build, hand over).

Every command takes ``--data-dir`` (or TOUCHPOINTS_DATA_DIR). While a server owns the data
directory, commands go through its API; otherwise they open the DuckDB file directly.
"""

# isort: off
# Importing the command modules registers their commands, in this order in --help.
from touchpoints.cli import server, data, identity, journeys, access  # noqa: F401
from touchpoints.cli.base import app

# isort: on

__all__ = ["app", "main"]


def main() -> None:
    app()
