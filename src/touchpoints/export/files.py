"""The files of an export directory: checking that it can be written, a run's staging
directory, moving finished Parquet files into place, and clearing what a stopped run left.

A file is written under a staging directory (``.staging-RUN/``, which no reader lists: Spark
and Hive skip names that start with ``.``, and a reader of ``events/**/*.parquet`` never
looks there), flushed to disk, and renamed into its table's directory only when complete; so
no reader ever opens a half-written file. Until the manifest lists it, it is not part of
the export (see :mod:`.manifest`).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable, Iterator
from pathlib import Path

import pyarrow.parquet as pq

from touchpoints.errors import InvalidRequest
from touchpoints.export.manifest import MANIFEST, FileEntry

STAGING_PREFIX = ".staging-"
_PROBE = ".touchpoints-probe"


def prepare(directory: Path) -> None:
    """Make sure ``directory`` exists and this process can write in it, or refuse with what
    is wrong. A directory that holds files but no manifest is refused too: the export deletes
    files it does not know of in its tables' directories, and they might be someone's."""
    if not directory.is_absolute():
        raise InvalidRequest(f"to: give an absolute path, not {str(directory)!r}")
    if directory.exists() and not directory.is_dir():
        raise InvalidRequest(f"{directory} is a file, not a directory")
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        probe = directory / _PROBE
        probe.write_bytes(b"")
        probe.unlink()
    except PermissionError:
        raise InvalidRequest(
            f"cannot write to {directory}: permission denied (this process runs as user "
            f"{os.getuid()}); choose a directory it may write, or change the permissions"
        ) from None
    except OSError as exc:
        raise InvalidRequest(f"cannot write to {directory}: {exc.strerror or exc}") from None
    if not (directory / MANIFEST).exists():
        others = [p.name for p in directory.iterdir() if not p.name.startswith(STAGING_PREFIX)]
        if others:
            shown = ", ".join(sorted(others)[:5])
            raise InvalidRequest(
                f"{directory} holds other files ({shown}) and no touchpoints export manifest; "
                "export into a new or empty directory"
            )


def clear_leftovers(directory: Path, tables: Iterable[str], listed: set[str]) -> int:
    """Delete what a stopped run left: staging directories, a manifest being written, and
    Parquet files in the tables' directories that the manifest does not list (renamed into
    place by a run that stopped before it committed). Returns the files deleted."""
    removed = 0
    for staging in directory.glob(f"{STAGING_PREFIX}*"):
        removed += sum(1 for p in staging.rglob("*") if p.is_file())
        shutil.rmtree(staging, ignore_errors=True)
    leftover = directory / (MANIFEST + ".tmp")
    if leftover.exists():
        leftover.unlink()
        removed += 1
    for table in tables:
        root = directory / table
        if not root.is_dir():
            continue
        for path in root.rglob("*.parquet"):
            if path.relative_to(directory).as_posix() not in listed:
                path.unlink()
                removed += 1
        prune_empty(root)
    return removed


def prune_empty(root: Path) -> None:
    """Remove the empty partition directories under ``root`` (a partition all of whose rows
    went: an erasure, retention)."""
    for path in sorted(root.glob("*"), reverse=True):
        if path.is_dir() and not any(path.iterdir()):
            path.rmdir()


def staged_files(staging: Path) -> Iterator[tuple[str, Path]]:
    """The Parquet files DuckDB wrote under ``staging``: (partition, path); the partition is
    the value of the ``event_date=…`` directory a file is in, ``""`` for a file at the top."""
    for path in sorted(staging.rglob("*.parquet")):
        parent = path.parent
        partition = parent.name.split("=", 1)[1] if parent != staging else ""
        yield partition, path


def place(directory: Path, staged: Path, relative: str) -> FileEntry:
    """Move a finished file from staging to ``relative`` (inside ``directory``): flushed to
    disk first, readable by its owner only (personal data), renamed in one step."""
    with staged.open("rb+") as handle:
        os.fsync(handle.fileno())
    staged.chmod(0o600)
    rows = pq.ParquetFile(staged).metadata.num_rows
    size = staged.stat().st_size
    target = directory / relative
    private_dirs(directory, target.parent)
    os.replace(staged, target)
    return FileEntry(path=relative, rows=rows, bytes=size)


def private_dirs(directory: Path, inside: Path) -> None:
    """``inside`` and the directories between it and ``directory`` made as needed, each
    readable by its owner only (``mkdir(parents=True)`` would give the parents the umask's
    mode)."""
    current = directory
    for part in inside.relative_to(directory).parts:
        current = current / part
        if not current.is_dir():
            current.mkdir(mode=0o700, exist_ok=True)


def delete(directory: Path, entries: Iterable[FileEntry]) -> int:
    """Delete files the manifest no longer lists; return how many there were."""
    removed = 0
    for entry in entries:
        path = directory / entry.path
        if path.exists():
            path.unlink()
            removed += 1
    return removed
