"""Decisions (``POST /v1/decide``) under load, beside profile lookups in the same run.

    .venv/bin/python benchmarks/decide.py [--persons 10000] [--sample 2000] [--seconds 10]

Stores ``--persons`` identified persons (an anonymousId, a user id, an e-mail, a plan;
consent to personalisation; every third one configured twice), an audience of those who
configured twice, a computed trait counting page views and a placement with three rules
(the audience, a trait, the computed trait) and a 10 % control group. Starts
``touchpoints serve`` on the directory and measures, for ``--sample`` persons:

0. in process (no network, one at a time): µs per decision and per profile lookup;
1. the first decision for each (its facts read from the warehouse), one client;
2. decisions by anonymousId with the browser's write key, ``wrk -t2 -c32``: p50, p95, p99;
3. the baseline in the same run: profile lookups by e-mail, ``wrk -t2 -c32``, the same
   persons (the repository's other hot path, target p99 < 10 ms).

wrk (Debian package ``wrk``) sends the load; its Lua ``done`` hook prints the percentiles.
The machine's load (``uptime``) is printed with the figures: record both in RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import os
import random
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

from touchpoints.api.app import create_app
from touchpoints.config import load_settings
from touchpoints.core import Touchpoints

GRANTED = {"consent": {"categoryPreferences": {"personalisation": True}}}
PLACEMENT = {
    "key": "home_hero",
    "name": "Home page hero",
    "control_percent": 10,
    "conversion_event": "Order Completed",
    "default": {"headline": "Welcome"},
    "rules": [
        {
            "key": "test_drive",
            "condition": {"audience": "configurators"},
            "content": {"headline": "Book a test drive"},
        },
        {
            "key": "gold",
            "condition": {"and": [{"trait": "plan", "equals": "gold"}, {"consent": "necessary"}]},
            "content": {"headline": "Gold service"},
        },
        {
            "key": "browsers",
            "condition": {"computed_trait": "views", "gte": 3},
            "content": {"headline": "Still looking?"},
        },
    ],
}
_DONE = """
done = function(summary, latency, requests)
  io.write(string.format("RESULT %d %d %d %d %d %d\\n", summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(95), latency:percentile(99),
    summary.errors.status))
end
"""


def load(data_dir: Path, persons: int) -> tuple[str, str]:
    """The persons, the audience, the computed trait and the placement; (write, read) keys."""
    with Touchpoints.open(load_settings(data_dir)) as tp:
        batch: list[dict] = []
        for i in range(persons):
            plan = "gold" if i % 5 == 0 else "free"
            who = {"userId": f"u-{i}", "anonymousId": f"a-{i}", "context": GRANTED}
            batch.append({"type": "identify", **who, "traits": {"email": f"p{i}@bench.example",
                                                                 "plan": plan}})  # fmt: skip
            batch.extend({"type": "track", **who, "event": "Product Viewed"} for _ in range(i % 4))
            if i % 3 == 0:
                batch.extend({"type": "track", **who, "event": "Configuration Saved"}
                             for _ in range(2))  # fmt: skip
            if len(batch) >= 5000:
                _store(tp, batch)
                batch = []
        if batch:
            _store(tp, batch)
        tp.traits.create(
            {"key": "views", "name": "Views", "kind": "count", "event": "Product Viewed"}
        )
        tp.audiences.create(
            {
                "key": "configurators",
                "name": "Configured twice",
                "condition": {"event": "Configuration Saved", "at_least": 2},
            }
        )
        tp.placements.create(PLACEMENT)
        write_key = tp.keys.create("write", "bench")[1]
        read_key = tp.keys.create("read", "bench")[1]
    return write_key, read_key


def _store(tp: Touchpoints, batch: list[dict]) -> None:
    outcome = tp.judge({"batch": batch}, "batch", source="bench", enforce_batch_limit=False)
    if outcome.body_problems or outcome.rejected:
        sys.exit(f"events refused: {outcome.body_problems or outcome.rejected[:3]}")
    tp.write_rows(outcome.rows)


async def _call(app: Any, method: str, path: str, headers: list, body: bytes = b"") -> int:
    """One request sent to the ASGI app as uvicorn would send it; the status."""
    status = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [*headers, (b"host", b"bench")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8080),
    }
    await app(scope, receive, send)
    return status


def in_process(
    data_dir: Path, sample: list[int], write_key: str, read_key: str, rounds: int
) -> None:
    """µs per decision and per profile lookup on the server's app in process, one at a time
    on one event loop (as benchmarks/lookup.py): the cost of each, without a network."""
    basic = base64.b64encode(f"{write_key}:".encode()).decode()
    as_browser = [(b"authorization", f"Basic {basic}".encode())]
    as_reader = [(b"authorization", f"Bearer {read_key}".encode())]
    bodies = [orjson.dumps({"placement": "home_hero", "anonymousId": f"a-{i}"}) for i in sample]
    paths = [f"/v1/profiles/email:p{i}@bench.example" for i in sample]
    tp = Touchpoints.open(load_settings(data_dir, rate_limit_api=0, rate_limit_collect=0))
    try:
        tp.start_writer()
        app = create_app(tp)
        # The server evaluates everyone once as it starts (and so makes every decision's
        # facts stale): time what follows it, as a running server's decisions are.
        deadline = time.monotonic() + 600
        while tp.live is not None and tp.live.job.rounds < 1 and time.monotonic() < deadline:
            time.sleep(0.1)

        async def decide_all() -> None:
            for body in bodies:
                assert await _call(app, "POST", "/v1/decide", as_browser, body) == 200

        async def lookup_all() -> None:
            for path in paths:
                assert await _call(app, "GET", path, as_reader) == 200

        asyncio.run(decide_all())  # facts and profiles read and cached
        asyncio.run(lookup_all())
        asyncio.run(decide_all())
        loads = tp.facts.loads
        timed: dict[str, list[float]] = {"decide": [], "profile lookup (baseline)": []}
        for _ in range(rounds):  # taken in turns, so both meet the same load
            for name, run in (("decide", decide_all), ("profile lookup (baseline)", lookup_all)):
                began = time.perf_counter()
                asyncio.run(run())
                timed[name].append((time.perf_counter() - began) / len(sample) * 1e6)
        print(f"facts read from the warehouse during the timed rounds: {tp.facts.loads - loads}")
        for name, times in timed.items():
            print(
                f"{name} in process, {len(sample):,} persons, {rounds} rounds: "
                f"best {min(times):.0f} µs, median {statistics.median(times):.0f} µs a request"
            )
    finally:
        tp.close()


def _naive(moment: str) -> datetime:
    return datetime.fromisoformat(moment.replace("Z", "+00:00")).replace(tzinfo=None)


def _evaluated_since(url: str, read_key: str, since: datetime) -> None:
    """Wait until the server's first evaluation of everyone is done (it makes every
    decision's facts stale once, as it starts)."""
    deadline = time.monotonic() + 600
    headers = {"Authorization": f"Bearer {read_key}"}
    while time.monotonic() < deadline:
        found = httpx.get(f"{url}/v1/audiences", headers=headers, timeout=60).json()
        moments = [a.get("evaluated_at") for a in found["audiences"]]
        if moments and all(m and _naive(m) > since for m in moments):
            return
        time.sleep(0.5)
    sys.exit("the server did not evaluate the audiences")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wrk(url: str, lua: str, seconds: int, headers: list[str], work: Path) -> dict[str, float]:
    script = work / "script.lua"
    script.write_text(lua + _DONE)
    cmd = ["wrk", "-t2", "-c32", f"-d{seconds}s", "-s", str(script)]
    for header in headers:
        cmd += ["-H", header]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    found = re.search(r"^RESULT (\d+) (\d+) (\d+) (\d+) (\d+) (\d+)$", out, re.M)
    if found is None:
        sys.exit(f"could not read wrk's output:\n{out}")
    requests, micros, p50, p95, p99, bad = (int(g) for g in found.groups())
    return {
        "rps": requests / (micros / 1e6),
        "p50": p50 / 1000,
        "p95": p95 / 1000,
        "p99": p99 / 1000,
        "non2xx": bad,
        "requests": requests,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--persons", type=int, default=10_000)
    parser.add_argument("--sample", type=int, default=2_000)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("this benchmark needs wrk: apt-get install wrk")
    work = Path(tempfile.mkdtemp(prefix="tp-decide-"))
    data_dir = work / "data"
    started = time.perf_counter()
    write_key, read_key = load(data_dir, args.persons)
    print(f"stored {args.persons:,} persons in {time.perf_counter() - started:.1f} s")
    # Spread over the persons, and so over the kinds of them (i % 4 views, i % 3 …).
    sample = sorted(random.Random(7).sample(range(args.persons), min(args.sample, args.persons)))
    in_process(data_dir, sample, write_key, read_key, args.rounds)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **os.environ,
        "TOUCHPOINTS_DATA_DIR": str(data_dir),
        "TOUCHPOINTS_RATE_LIMIT_COLLECT": "0",
        "TOUCHPOINTS_RATE_LIMIT_API": "0",
        "TOUCHPOINTS_LOG_LEVEL": "warning",
    }
    started_at = datetime.now(UTC).replace(tzinfo=None)
    server = subprocess.Popen(
        [sys.executable, "-m", "touchpoints", "serve", "--port", str(port)], env=env
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                if time.monotonic() > deadline or server.poll() is not None:
                    sys.exit("the server did not start")
                time.sleep(0.2)
        basic = base64.b64encode(f"{write_key}:".encode()).decode()
        _evaluated_since(url, read_key, started_at)
        cold: list[float] = []
        reasons: dict[str, int] = {}
        with (
            httpx.Client(base_url=url, headers={"Authorization": f"Basic {basic}"}) as browser,
            httpx.Client(base_url=url, headers={"Authorization": f"Bearer {read_key}"}) as reader,
        ):
            for i in sample:
                began = time.perf_counter()
                answer = browser.post(
                    "/v1/decide", json={"placement": "home_hero", "anonymousId": f"a-{i}"}
                )
                cold.append((time.perf_counter() - began) * 1000)
                answer.raise_for_status()
                key = answer.json()["rule"] or answer.json()["reason"]
                reasons[key] = reasons.get(key, 0) + 1
                looked = reader.get(f"/v1/profiles/email:p{i}@bench.example")
                if looked.status_code != 200:
                    sys.exit(f"lookup: {looked.status_code} {looked.text}; {answer.text}")
        cold.sort()
        print(
            f"first decision for {len(sample):,} persons (facts read), one client: "
            f"p50 {statistics.median(cold):.2f} ms, p99 {cold[int(len(cold) * 0.99) - 1]:.2f} ms"
        )
        print("what they were shown: " + ", ".join(f"{k} {n}" for k, n in sorted(reasons.items())))
        ids = ",".join(f'"a-{i}"' for i in sample)
        decide_lua = textwrap.dedent(
            f"""
            local ids = {{{ids}}}
            local i = 0
            request = function()
              i = i + 1
              local id = ids[(i % #ids) + 1]
              local body = '{{"placement":"home_hero","anonymousId":"' .. id .. '"}}'
              return wrk.format("POST", "/v1/decide", nil, body)
            end
            """
        )
        emails = ",".join(f'"p{i}@bench.example"' for i in sample)
        lookup_lua = textwrap.dedent(
            f"""
            local emails = {{{emails}}}
            local i = 0
            request = function()
              i = i + 1
              return wrk.format("GET", "/v1/profiles/email:" .. emails[(i % #emails) + 1])
            end
            """
        )
        load_before = os.getloadavg()
        decided = wrk(
            url,
            decide_lua,
            args.seconds,
            [f"Authorization: Basic {basic}", "Content-Type: application/json"],
            work,
        )
        looked = wrk(url, lookup_lua, args.seconds, [f"Authorization: Bearer {read_key}"], work)
        for name, found in (("decide (write key)", decided), ("profile lookup (baseline)", looked)):
            print(
                f"{name}, wrk -t2 -c32 -d{args.seconds}s over {len(sample):,} persons: "
                f"{found['rps']:,.0f} req/s, p50 {found['p50']:.2f} ms, p95 {found['p95']:.2f} ms, "
                f"p99 {found['p99']:.2f} ms, non-2xx {found['non2xx']:.0f}"
            )
        uptime = subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
        print(f"load average before the runs {load_before[0]:.2f}; after: {uptime}")
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
