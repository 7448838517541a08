"""Cached profile lookups through the server's app in process: what one lookup costs on the
event loop, without a network or a second process (to measure a change to the lookup route,
e.g. the audit line each lookup records).

    .venv/bin/python benchmarks/lookup.py [--lookups 2000] [--persons 200] [--rounds 5]

Stores ``--persons`` identified persons, starts the app's writer as ``touchpoints serve``
does, reads each profile once (assembled and cached), then times ``--lookups`` lookups by
e-mail spread over them, sent straight to the ASGI app (one at a time, on one event loop),
``--rounds`` times; prints the best and the median round in µs per lookup. Baseline in the
same run: the same lookups with the audit log's ``record`` replaced by a no-op.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from touchpoints.api.app import create_app
from touchpoints.config import load_settings
from touchpoints.core import Touchpoints


async def _get(app: Any, path: str, token: str) -> int:
    """One GET sent to the ASGI app as uvicorn would send it; the status."""
    status = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"authorization", f"Bearer {token}".encode()), (b"host", b"bench")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8080),
    }
    await app(scope, receive, send)
    return status


async def _rounds(app: Any, paths: list[str], token: str, lookups: int, rounds: int) -> list[float]:
    for path in paths:  # assemble and cache each profile first
        assert await _get(app, path, token) == 200, path
    times = []
    for _round in range(rounds):
        started = time.perf_counter()
        for i in range(lookups):
            await _get(app, paths[i % len(paths)], token)
        times.append((time.perf_counter() - started) / lookups * 1e6)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lookups", type=int, default=2000)
    parser.add_argument("--persons", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="tp-lookup-"))
    tp = Touchpoints.open(
        load_settings(work / "data", rate_limit_api=0)
    )  # the lookup, not the limit
    try:
        rows = []
        for i in range(args.persons):
            body = {"type": "identify", "userId": f"u-{i}", "traits": {"email": f"p{i}@x.example"}}
            outcome = tp.judge(body, "identify", source="bench")
            rows.extend(outcome.rows)
        tp.write_rows(rows)
        tp.start_writer()
        token = tp.keys.create("read", "bench")[1]
        app = create_app(tp)
        paths = [f"/v1/profiles/email:p{i}@x.example" for i in range(args.persons)]
        times = asyncio.run(_rounds(app, paths, token, args.lookups, args.rounds))
        record = tp.audit.record
        tp.audit.record = lambda *args, **kwargs: None  # type: ignore[method-assign]
        baseline = asyncio.run(_rounds(app, paths, token, args.lookups, args.rounds))
        tp.audit.record = record  # type: ignore[method-assign]
        for name, found in (("with the audit line", times), ("baseline, no audit", baseline)):
            print(
                f"{args.lookups:,} cached lookups in process, {args.rounds} rounds, {name}: "
                f"best {min(found):.1f} µs, median {statistics.median(found):.1f} µs a lookup"
            )
    finally:
        tp.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
