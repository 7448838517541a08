"""The data directory holds personal data: only its owner may read it, whatever the umask
of whoever ran ``touchpoints`` (directories 0700, files 0600), and an install made before
this is put right when it is next opened."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from conftest import start_server
from touchpoints.config import load_settings
from touchpoints.core import Touchpoints

pytestmark = pytest.mark.e2e


@contextmanager
def umask(mask: int) -> Iterator[None]:
    previous = os.umask(mask)
    try:
        yield
    finally:
        os.umask(previous)


def modes(data_dir: Path) -> dict[str, str]:
    """Every path under ``data_dir`` (and it) with its permission bits, as octal text."""
    found = {".": oct(stat.S_IMODE(data_dir.stat().st_mode))}
    for path in sorted(data_dir.rglob("*")):
        found[str(path.relative_to(data_dir))] = oct(stat.S_IMODE(path.lstat().st_mode))
    return found


def private(found: dict[str, str], data_dir: Path) -> list[str]:
    """The paths whose modes let anyone but the owner in."""
    wrong = []
    for name, mode in found.items():
        expected = "0o700" if (data_dir / name).is_dir() else "0o600"
        if mode != expected:
            wrong.append(f"{name} {mode}")
    return wrong


def test_init_and_serve_make_everything_private_whatever_the_umask(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    env = {**os.environ, "TOUCHPOINTS_DATA_DIR": str(data_dir)}
    with umask(0o000):  # the loosest: every file made 0666, every directory 0777
        made = subprocess.run(
            [sys.executable, "-m", "touchpoints", "init"], env=env, capture_output=True
        )
        assert made.returncode == 0, made.stderr
        assert private(modes(data_dir), data_dir) == []
        server = start_server(data_dir)
    try:
        batch = [{"type": "track", "userId": f"u{i}", "event": "E"} for i in range(50)]
        assert server.post("/v1/batch", json={"batch": batch}, auth=(server.write_key, ""))
        server.wait_for_count(50)
        found = modes(data_dir)
        assert {"touchpoints.duckdb", "touchpoints.toml", "server.json", "wal"} <= set(found)
        assert private(found, data_dir) == []
    finally:
        server.stop()
    assert private(modes(data_dir), data_dir) == []


def test_opening_an_install_made_before_puts_its_permissions_right(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with umask(0o022), Touchpoints.open(load_settings(data_dir)) as tp:
        tp.keys.create("write")
    (data_dir / "touchpoints.toml").write_text("")
    (data_dir / "wal").mkdir(exist_ok=True)
    (data_dir / "wal" / "segment-000000001.log").write_text("")
    for path in [data_dir, *data_dir.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    assert private(modes(data_dir), data_dir) != []
    with Touchpoints.open(load_settings(data_dir)):
        pass
    assert private(modes(data_dir), data_dir) == []


def test_the_server_file_and_its_token_are_private(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data")
    try:
        info = server.data_dir / "server.json"
        assert oct(stat.S_IMODE(info.stat().st_mode)) == "0o600"
        assert httpx.get(f"{server.url}/health").status_code == 200
    finally:
        server.stop()
