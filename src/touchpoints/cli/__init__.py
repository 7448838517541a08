"""The ``touchpoints`` command: a thin face over the core (parse options, build, hand over).

Every command takes ``--data-dir`` (or TOUCHPOINTS_DATA_DIR). While a server owns the data
directory, commands go through its API; otherwise they open the DuckDB file directly.
"""

import os

# isort: off
# Importing the command modules registers their commands, in this order in --help.
from touchpoints.cli import server, data, identity, journeys, privacy, access  # noqa: F401
from touchpoints.cli import destinations, audiences, triggers, predict, assistant, placements, spark  # noqa: F401
from touchpoints.cli.base import app

# isort: on

__all__ = ["app", "main"]


def main() -> None:
    # Everything touchpoints writes is personal data (the database, its logs, exports, the
    # demo's files): readable by its owner only, whatever umask the shell has.
    os.umask(0o077)
    app()
