"""Collector throughput: touchpoints against a minimal Starlette+orjson baseline, in one run.

Starts, on loopback ports:
- the baseline: one uvicorn worker serving a Starlette route that parses the JSON body with
  orjson and answers ``{"success": true}`` (the ceiling of a Python ASGI collector here);
- ``touchpoints serve`` on a fresh data directory (the real server, WAL and DuckDB writer).

Then drives each with ``wrk`` (Debian package ``wrk``) for single-event ``/v1/track`` requests
and for ``/v1/batch`` requests of 100 events, every event with a unique messageId. Prints
requests/s, events/s (of the requests answered 2xx: a 429 takes nothing; the ratios to the
baseline are of these), latency p50/p99, the server's peak memory (VmHWM), and checks that
the warehouse holds exactly the events that were acknowledged with a 2xx.

    .venv/bin/python benchmarks/ingest.py [--seconds 15] [--connections 32] [--threads 2]
                                          [--fsync] [--collectors 0,1,2] [--rounds 1]

``--collectors 0,1,2`` measures the server alone, then ``touchpoints serve --collectors 1``
and ``--collectors 2`` (wrk against the collector processes' port), each on a fresh data
directory. ``--rounds N`` measures the baseline and each configuration in turn N times
(every server kept running, all of them quiet before each run) and gives each ratio to the
same round's baseline, with the median.
"""

from __future__ import annotations

import argparse
import base64
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import httpx

BASELINE_APP = textwrap.dedent(
    """
    import orjson
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    async def track(request):
        body = orjson.loads(await request.body())
        if not isinstance(body, dict):
            return Response(b'{"success":false}', status_code=400)
        return Response(b'{"success":true}', media_type="application/json")

    app = Starlette(routes=[Route("/v1/track", track, methods=["POST"]),
                            Route("/v1/batch", track, methods=["POST"])])
    """
)

# Every request carries fresh messageIds: the run's id (RUN_ID, replaced for each run), wrk's
# lua counter per thread and the thread id (a global: setup() sets it in each thread's own
# Lua state).
LUA_SINGLE = textwrap.dedent(
    """
    local counter = 0
    local threads = 0
    setup = function(thread) threads = threads + 1; thread:set("tid", threads) end
    request = function()
      counter = counter + 1
      local body = '{"type":"track","event":"Configurator Opened","userId":"u' .. (counter % 5000)
        .. '","messageId":"single-RUN_ID-' .. tid .. '-' .. counter .. '",'
        .. '"properties":{"model":"EV3","step":2},'
        .. '"context":{"library":{"name":"analytics.js","version":"4.1.0"},'
        .. '"page":{"url":"https://example.com/configure"}}}'
      return wrk.format("POST", "/v1/track", nil, body)
    end
    """
)

LUA_BATCH = textwrap.dedent(
    """
    local counter = 0
    local threads = 0
    setup = function(thread) threads = threads + 1; thread:set("tid", threads) end
    request = function()
      local parts = {}
      for i = 1, 100 do
        counter = counter + 1
        parts[i] = '{"type":"track","event":"Configurator Opened","anonymousId":"a'
          .. (counter % 20000) .. '","messageId":"batch-RUN_ID-' .. tid .. '-' .. counter .. '",'
          .. '"properties":{"model":"EV3","step":' .. (i % 7) .. '},'
          .. '"context":{"library":{"name":"analytics-python","version":"2.3.4"}}}'
      end
      local body = '{"batch":[' .. table.concat(parts, ",") .. ']}'
      return wrk.format("POST", "/v1/batch", nil, body)
    end
    """
)


@dataclass
class WrkResult:
    requests: int
    seconds: float
    non_2xx: int
    errors: int
    p50_ms: float
    p99_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    @property
    def acknowledged_rps(self) -> float:
        """Requests answered 2xx a second: what was taken. A 429 (the server behind) is an
        answer too, but nothing taken; counting it as served made the two collector
        processes' batches look 0.21-0.29 × the baseline where 0.11-0.15 × was taken."""
        return (self.requests - self.non_2xx) / self.seconds


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_until_up(url: str, process: subprocess.Popen, path: str = "/health") -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"server exited early with code {process.returncode}")
        try:
            httpx.get(url + path, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    sys.exit(f"server at {url} did not start")


def start_app(work: Path, name: str, source: str) -> tuple[subprocess.Popen, str]:
    """One uvicorn worker serving the ``app`` of ``source`` (written to ``work/<name>/``, its
    working directory) on a free loopback port, up; stopped again if it does not come up."""
    directory = work / name
    directory.mkdir()
    (directory / f"{name}_app.py").write_text(source)
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", f"{name}_app:app", "--port", str(port)]
    process = subprocess.Popen(
        [*command, "--no-access-log", "--log-level", "warning"], cwd=directory
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_up(url, process, "/")
    except BaseException:
        process.terminate()
        process.wait()
        raise
    return process, url


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if not match:
        raise ValueError(f"unexpected wrk latency {text!r}")
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def run_wrk(
    url: str, lua: str, args: argparse.Namespace, headers: list[str], work: Path
) -> WrkResult:
    script = work / "script.lua"
    # Every run its own messageIds: a repeated one is a duplicate, stored once.
    script.write_text(lua.replace("RUN_ID", uuid.uuid4().hex[:12]))
    cmd = [
        "wrk",
        f"-t{args.threads}",
        f"-c{args.connections}",
        f"-d{args.seconds}s",
        "--latency",
        "-s",
        str(script),
    ]
    for header in headers:
        cmd += ["-H", header]
    out = subprocess.run([*cmd, url], capture_output=True, text=True, check=True).stdout
    # wrk prints the run's length as 10.01s, 1.50m (minutes) or 999.12ms
    total = re.search(r"(\d+) requests in ([\d.]+)(ms|s|m)\b", out)
    if not total:
        sys.exit(f"could not read wrk output:\n{out}")
    secs = float(total.group(2)) * {"ms": 0.001, "s": 1.0, "m": 60.0}[total.group(3)]
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    return WrkResult(
        requests=int(total.group(1)),
        seconds=secs,
        non_2xx=int(non_2xx.group(1)) if non_2xx else 0,
        errors=sum(int(g) for g in errors.groups()) if errors else 0,
        p50_ms=_ms(re.search(r"^\s*50%\s+(\S+)", out, re.M).group(1)),
        p99_ms=_ms(re.search(r"^\s*99%\s+(\S+)", out, re.M).group(1)),
    )


def vm_hwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def touchpoints_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "touchpoints", *args]


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_quiet(pids: list[int], limit: float = 120) -> float:
    """Wait until the processes use less than a tenth of a core (a second at a time): the
    server's start-up work (the assistant's model trained, the journey tables derived) runs
    in the background after /health answers, and measuring beside it measured that work
    too (one collector process: 6,135 requests/s at once, 6,526 after 25 s, 2026-12-05).
    Returns the seconds waited."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        before = sum(cpu_seconds(pid) for pid in pids)
        time.sleep(1)
        if sum(cpu_seconds(pid) for pid in pids) - before < 0.1:
            break
    return time.monotonic() - started


def children_of(pid: int) -> list[int]:
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    return [int(line) for line in found.split()]


@dataclass
class Running:
    """A ``touchpoints serve`` started on a fresh data directory, kept for every round."""

    label: str
    collectors: int  # collector processes asked for (0: the server alone)
    server: subprocess.Popen
    url: str  # the server's API
    target: str  # where wrk sends events: the server, or its collector processes' port
    headers: list[str]
    read_key: str

    def pids(self) -> list[int]:
        return [self.server.pid, *children_of(self.server.pid)]

    def stored(self) -> int:
        answer = httpx.get(
            self.url + "/v1/events/count", headers={"Authorization": f"Bearer {self.read_key}"}
        )
        return int(answer.json()["count"])

    def loaded(self) -> None:
        """Wait until everything acknowledged so far is loaded."""
        deadline = time.monotonic() + 300
        while httpx.get(self.url + "/health").json()["pending_events"]:
            if time.monotonic() > deadline:
                sys.exit(f"{self.label}: events still pending after 300 s")
            time.sleep(0.2)

    def derived(self) -> None:
        """The journey facts brought up to date with what is loaded: an analysis does this
        first (the stages, the cheapest one), so the server's next timed refresh finds
        nothing new."""
        answer = httpx.get(
            self.url + "/v1/journeys/stages",
            headers={"Authorization": f"Bearer {self.read_key}"},
            timeout=300,
        )
        answer.raise_for_status()


def settle(servers: list[Running]) -> None:
    """Before a run: every server has loaded what it acknowledged, derived the journey facts
    of it, and all are quiet, so that no server's work after its own run is measured in
    another's. Waiting for quiet alone missed the facts: a server derives them on a timer
    (``journeys_refresh_seconds``, 60 s), which fired during other runs. The same server
    with two collector processes measured alone took 15,763-17,377 single requests/s in
    nine runs, and 11,343-16,723 in five rounds beside the others (2026-12-05); the
    baseline's single requests fell to 13,711/s in one round against 20,386-20,812 in the
    four others."""
    for running in servers:
        running.loaded()
        running.derived()
    wait_quiet([pid for running in servers for pid in running.pids()])


def start_touchpoints(work: Path, collectors: int, args: argparse.Namespace) -> Running:
    """``touchpoints serve`` (with ``collectors`` collector processes, 0: the server alone)
    on a fresh data directory, up and done with its start-up work."""
    data_dir = work / f"data-{collectors}"
    env = {
        **os.environ,
        "TOUCHPOINTS_DATA_DIR": str(data_dir),
        "TOUCHPOINTS_LOG_LEVEL": "warning",
        # One key sends everything here: its rate limit (5,000 requests/s by default, shared
        # among the collector processes) would cap the figures, not the collector.
        "TOUCHPOINTS_RATE_LIMIT_COLLECT": "0",
    }
    if args.fsync:
        env["TOUCHPOINTS_WAL_FSYNC"] = "true"

    def cli(*command: str) -> str:
        done = subprocess.run(
            touchpoints_cmd(*command), env=env, check=True, capture_output=True, text=True
        )
        return done.stdout.strip()

    cli("init")
    write_key, read_key = cli("keys", "create", "write"), cli("keys", "create", "read")
    auth = f"Authorization: Basic {base64.b64encode(f'{write_key}:'.encode()).decode()}"
    port, collect_port = free_port(), free_port()
    command = ["serve", "--port", str(port)]
    if collectors:
        command += ["--collectors", str(collectors), "--collect-port", str(collect_port)]
    server = subprocess.Popen(touchpoints_cmd(*command), env=env)
    url = f"http://127.0.0.1:{port}"
    running = Running(
        label=f"touchpoints {collectors} collectors" if collectors else "touchpoints",
        collectors=collectors,
        server=server,
        url=url,
        target=f"http://127.0.0.1:{collect_port}" if collectors else url,
        headers=["Content-Type: application/json", auth],
        read_key=read_key,
    )
    wait_until_up(url, server)
    waited = wait_quiet(running.pids())
    print(f"{running.label}: started, then {waited:.0f} s until its start-up work was done")
    return running


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=15, help="duration of each wrk run")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2, help="wrk's threads")
    parser.add_argument(
        "--fsync", action="store_true", help="fsync the write-ahead log before acknowledging"
    )
    parser.add_argument(
        "--collectors",
        default="0",
        help="comma-separated collector process counts to measure (0: the server alone)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="measure everything this many times, the baseline and each configuration in "
        "turn in each round; each ratio is to the same round's baseline",
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("this benchmark needs wrk: apt-get install wrk")
    if args.rounds < 1:
        sys.exit("--rounds: give at least 1")
    counts = [int(part) for part in args.collectors.split(",")]

    work = Path(tempfile.mkdtemp(prefix="tp-bench-"))
    # The baseline reads the same headers (an Authorization header of a key's length).
    dummy = base64.b64encode(b"tp_write_" + b"0" * 32 + b":").decode()
    base_headers = ["Content-Type: application/json", f"Authorization: Basic {dummy}"]
    baseline, base_url = start_app(work, "baseline", BASELINE_APP)
    servers: list[Running] = []
    # rounds[r][name]: the wrk result of each run of round r
    rounds: list[dict[str, WrkResult]] = []
    try:
        servers = [start_touchpoints(work, n, args) for n in counts]
        # Each configuration is measured right after the baseline, round after round: the
        # machine's speed moves by half between runs minutes apart (the baseline measured
        # 12,743-20,900 single requests/s in one morning, 2026-12-05), so a ratio is taken
        # to the baseline of its own round.
        for r in range(args.rounds):
            results: dict[str, WrkResult] = {}
            for kind, lua in (("single", LUA_SINGLE), ("batch", LUA_BATCH)):
                settle(servers)
                results[f"baseline {kind}"] = run_wrk(base_url, lua, args, base_headers, work)
                for running in servers:
                    settle(servers)
                    results[f"{running.label} {kind}"] = run_wrk(
                        running.target, lua, args, running.headers, work
                    )
            rounds.append(results)
            print(f"round {r + 1} of {args.rounds} done, load average {os.getloadavg()[0]:.1f}")
        checks = []
        settle(servers)
        for running in servers:
            collectors_mb = sum(vm_hwm_mb(pid) for pid in children_of(running.server.pid))
            checks.append(
                (
                    running.label,
                    running.stored(),
                    vm_hwm_mb(running.server.pid),
                    collectors_mb,
                    running.collectors,
                )
            )
    finally:
        for process in [baseline, *(running.server for running in servers)]:
            process.terminate()
            process.wait()

    print(
        f"wrk -t{args.threads} -c{args.connections} -d{args.seconds}s, WAL fsync: {args.fsync}, "
        f"{args.rounds} round(s), load average {os.getloadavg()[0]:.1f}"
    )
    print("req/s: every answer; events/s: the events of the requests answered 2xx (taken)")
    print(f"{'run':<36}{'req/s':>10}{'events/s':>12}{'p50 ms':>9}{'p99 ms':>9}{'non-2xx':>9}")
    for r, results in enumerate(rounds, start=1):
        for name, res in results.items():
            per_request = 100 if "batch" in name else 1
            shown = f"{name} (round {r})" if args.rounds > 1 else name
            print(
                f"{shown:<36}{res.rps:>10,.0f}{res.acknowledged_rps * per_request:>12,.0f}"
                f"{res.p50_ms:>9.1f}{res.p99_ms:>9.1f}{res.non_2xx:>9}"
            )
    lost = 0
    for label, stored, peak_mb, collectors_mb, processes in checks:
        for kind in ("single", "batch"):
            ratios = [
                res[f"{label} {kind}"].acknowledged_rps / res[f"baseline {kind}"].acknowledged_rps
                for res in rounds
            ]
            each = ", ".join(f"{ratio:.2f}" for ratio in ratios)
            summary = f"{each}; median {statistics.median(ratios):.2f}" if len(ratios) > 1 else each
            print(f"{label}/baseline {kind}: {summary}")
        acknowledged = sum(
            (res[f"{label} single"].requests - res[f"{label} single"].non_2xx)
            + 100 * (res[f"{label} batch"].requests - res[f"{label} batch"].non_2xx)
            for res in rounds
        )
        memory = f"server peak memory (VmHWM) {peak_mb:,.0f} MB"
        if processes:
            memory += f", its {processes} collector processes {collectors_mb:,.0f} MB together"
        print(f"{label}: {memory}; acknowledged events {acknowledged:,}, stored {stored:,}")
        # wrk counts requests whose responses it read; a request cut off at the end of the run
        # may have been acknowledged after wrk stopped listening, so stored may exceed it.
        lost += max(0, acknowledged - stored)
    if lost:
        sys.exit(f"LOST EVENTS: {lost:,} acknowledged events are not stored")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
