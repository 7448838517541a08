"""Event → webhook received, through a trigger, while the collector runs at the ingest
benchmark's load; beside the webhook delivery without a trigger, in the same run.

Starts ``touchpoints serve`` on a fresh data directory and a webhook receiver in this
process (both on loopback), makes a webhook destination and a trigger on the event
``Probe Sent`` that sends to it. Then, while ``wrk`` drives ``/v1/track`` as
``benchmarks/ingest.py`` does (single events, 32 connections, every event unique; they
match no trigger but every batch is dispatched), it sends probes, alternating:

- **trigger**: a ``Probe Sent`` event to ``/v1/track`` (a write key of its own): the time
  from sending it to the receiver getting the trigger's call (collector, write-ahead log,
  writer's batch, identity map, the trigger's Ibis query over the batch, outbox, delivery);
- **baseline**: a message put straight in the same destination's outbox
  (``POST /v1/destinations/{id}/messages``, admin): the time to the receiver (outbox and
  delivery only).

With ``--collectors N`` the server runs as ``touchpoints serve --collectors N``: the load
and the probes go to the collector processes' port, and the server's process only writes,
keeps identity, dispatches and delivers. As in ``benchmarks/ingest.py``, the per-key rate
limit is off (``TOUCHPOINTS_RATE_LIMIT_COLLECT=0``): the load is as much as the collector
takes, not the 5,000 requests a second one key may send by default.

With ``--rate R`` the load is held near R requests a second (wrk's ``delay`` hook: each
connection waits ``connections / R`` seconds between requests), to find the load up to
which one process keeps the target.

Prints p50/p95/p99/max of each, the load's requests/s (and, measured first for half as long,
the same load's requests/s with no trigger defined) and the machine's load average.

    .venv/bin/python benchmarks/triggers.py [--seconds 40] [--connections 32] [--every 0.2]
                                            [--rate R] [--collectors N]
"""

from __future__ import annotations

import argparse
import base64
import os
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import orjson

sys.path.insert(0, str(Path(__file__).parent))
from ingest import LUA_SINGLE, free_port, run_wrk, touchpoints_cmd, wait_until_up  # noqa: E402


class Arrivals:
    """When each probe arrived at the receiver (monotonic seconds), by probe id."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}
        self.firing: dict[str, int] = {}  # the trigger's firing, by probe
        self.wall: dict[str, float] = {}  # arrival, as time.time()
        self.lock = threading.Lock()

    def serve(self) -> tuple[ThreadingHTTPServer, str]:
        arrivals = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                now, wall = time.monotonic(), time.time()
                call = orjson.loads(body)
                probe = call.get("probe") or call.get("properties", {}).get("probe")
                if probe:
                    with arrivals.lock:
                        arrivals.at.setdefault(str(probe), now)
                        arrivals.wall.setdefault(str(probe), wall)
                        firing = call.get("context", {}).get("trigger", {}).get("firing")
                        if firing is not None:
                            arrivals.firing[str(probe)] = int(firing)
                self.send_response(200)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server, f"http://127.0.0.1:{server.server_address[1]}/hook"


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(share * (len(ordered) - 1))))
    return ordered[index]


def _send_probe(writer: httpx.Client, body: dict[str, object]) -> int:
    """Send a probe event as an SDK would: on 429 (the key's rate, or the writer behind) wait
    for Retry-After and send it again; its time still runs from the first send. The number
    of 429s."""
    busy = 0
    while True:
        answer = writer.post("/v1/track", json=body, timeout=30)
        if answer.status_code != 429:
            answer.raise_for_status()
            return busy
        busy += 1
        if busy == 1:
            print(f"a probe was answered 429: {answer.text}", file=sys.stderr)
        time.sleep(float(answer.headers.get("Retry-After", "1")))


def _wrk(args: argparse.Namespace, seconds: int) -> argparse.Namespace:
    """What :func:`ingest.run_wrk` reads: wrk's threads (two, as in the ingest benchmark),
    connections and seconds."""
    return argparse.Namespace(threads=2, connections=args.connections, seconds=seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=40, help="how long the load runs")
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--every", type=float, default=0.2, help="seconds between probes")
    parser.add_argument(
        "--rate",
        type=float,
        default=0,
        help="hold the load near this many requests a second (each connection waits "
        "connections/rate seconds between requests: wrk's delay hook); 0: as fast as it goes",
    )
    parser.add_argument(
        "--collectors",
        type=int,
        default=0,
        help="collector processes beside the server (serve --collectors N): the load and the "
        "probes go to them, the server writes, dispatches and delivers",
    )
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="tp-bench-triggers-"))
    env = {
        **os.environ,
        "TOUCHPOINTS_DATA_DIR": str(work / "data"),
        "TOUCHPOINTS_LOG_LEVEL": os.environ.get("BENCH_LOG_LEVEL", "warning"),
        "TOUCHPOINTS_DESTINATIONS_ALLOW_PRIVATE": "true",
        # As in ingest.py: the load's one key would be held at its rate limit (5,000 a
        # second by default), which would cap the load, not the collector.
        "TOUCHPOINTS_RATE_LIMIT_COLLECT": "0",
    }

    def cli(*command: str) -> str:
        done = subprocess.run(
            touchpoints_cmd(*command), env=env, check=True, capture_output=True, text=True
        )
        return done.stdout.strip()

    cli("init")
    write_key, admin_key = cli("keys", "create", "write"), cli("keys", "create", "admin")
    # The probes come from another source than the load, with a key of their own (with the
    # rate limit on, the load alone may pass the key's rate and its 429s hold a probe back).
    probe_key = cli("keys", "create", "write", "--name", "probes")
    basic = f"Basic {base64.b64encode(f'{write_key}:'.encode()).decode()}"
    probe_basic = f"Basic {base64.b64encode(f'{probe_key}:'.encode()).decode()}"
    headers = ["Content-Type: application/json", f"Authorization: {basic}"]
    arrivals = Arrivals()
    receiver, hook_url = arrivals.serve()

    lua = LUA_SINGLE
    if args.rate:
        lua += f"delay = function() return {1000 * args.connections / args.rate:.3f} end\n"
    port, collect_port = free_port(), free_port()
    command = ["serve", "--port", str(port)]
    if args.collectors:
        command += ["--collectors", str(args.collectors), "--collect-port", str(collect_port)]
    server = subprocess.Popen(touchpoints_cmd(*command), env=env)
    url = f"http://127.0.0.1:{port}"
    collect_url = f"http://127.0.0.1:{collect_port}" if args.collectors else url
    sent: dict[str, tuple[str, float]] = {}
    sent_wall: dict[str, float] = {}
    fired_at: dict[int, float] = {}
    try:
        wait_until_up(url, server)
        wait_until_up(collect_url, server)
        admin = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {admin_key}"})
        writer = httpx.Client(base_url=collect_url, headers={"Authorization": probe_basic})
        # The same load without any trigger first: what triggers cost the collector.
        bare = run_wrk(collect_url, lua, _wrk(args, args.seconds // 2), headers, work)
        made = admin.post(
            "/v1/destinations",
            json={"kind": "webhook", "name": "bench", "config": {"url": hook_url}},
        )
        made.raise_for_status()
        destination = made.json()["destination"]["id"]
        admin.post(
            "/v1/triggers",
            json={
                "key": "probe",
                "name": "Probe Trigger",
                "when": {"event": "Probe Sent"},
                "steps": [{"send": destination}],
            },
        ).raise_for_status()
        # Warm up: the trigger's query compiled, the first delivery made.
        writer.post("/v1/track", json={"userId": "warm", "event": "Probe Sent"}).raise_for_status()
        time.sleep(3)

        load: dict[str, object] = {}
        wrk = threading.Thread(
            target=lambda: load.update(
                result=run_wrk(collect_url, lua, _wrk(args, args.seconds), headers, work)
            )
        )
        wrk.start()
        time.sleep(2)  # the load at full speed first
        n = busy = 0
        while wrk.is_alive():
            n += 1
            probe = f"p{n}"
            if n % 2:
                sent[probe] = ("trigger", time.monotonic())
                sent_wall[probe] = time.time()
                body = {
                    "userId": f"probe-{n}",
                    "event": "Probe Sent",
                    "properties": {"probe": probe},
                }
                busy += _send_probe(writer, body)
            else:
                sent[probe] = ("baseline", time.monotonic())
                message = {"payload": {"probe": probe}, "ordering_key": f"probe-{n}"}
                admin.post(f"/v1/destinations/{destination}/messages", json=message, timeout=30)
            time.sleep(args.every)
        wrk.join()
        deadline = time.monotonic() + 60
        while len(arrivals.at) < len(sent) and time.monotonic() < deadline:
            time.sleep(0.1)
        firings = admin.get("/v1/triggers/probe/firings", params={"limit": 10_000}).json()
        for firing in firings["firings"]:
            moment = datetime.fromisoformat(firing["fired_at"].replace("Z", "+00:00"))
            fired_at[firing["id"]] = moment.replace(tzinfo=UTC).timestamp()
    finally:
        server.terminate()
        server.wait()
        receiver.shutdown()

    with open("/proc/loadavg") as found:
        loadavg = " ".join(found.read().split()[:3])
    result = load["result"]
    print(
        f"load: wrk -t2 -c{args.connections} -d{args.seconds}s single /v1/track: "
        f"{result.rps:,.0f} req/s (p99 {result.p99_ms:.0f} ms, non-2xx {result.non_2xx}); "
        f"probes every {args.every} s; load average {loadavg}"
    )
    if busy:
        print(f"probes answered 429 and sent again after Retry-After (as SDKs do): {busy}")
    print(
        f"the same load with no trigger defined, before ({args.seconds // 2} s): "
        f"{bare.rps:,.0f} req/s (p99 {bare.p99_ms:.0f} ms)"
    )
    print(
        f"{'path':<10}{'probes':>8}{'lost':>6}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}"
    )
    figures = {}
    for kind in ("trigger", "baseline"):
        waits = [
            (arrivals.at[probe] - at) * 1000
            for probe, (what, at) in sent.items()
            if what == kind and probe in arrivals.at
        ]
        lost = sum(
            1 for probe, (what, _) in sent.items() if what == kind and probe not in arrivals.at
        )
        figures[kind] = percentile(waits, 0.99) if waits else float("nan")
        print(
            f"{kind:<10}{len(waits):>8}{lost:>6}{percentile(waits, 0.5):>9.0f}"
            f"{percentile(waits, 0.95):>9.0f}{figures[kind]:>9.0f}{max(waits):>9.0f}"
        )
    before, after = [], []
    for probe, firing in arrivals.firing.items():
        if probe in sent_wall and firing in fired_at:
            before.append((fired_at[firing] - sent_wall[probe]) * 1000)
            after.append((arrivals.wall[probe] - fired_at[firing]) * 1000)
    if before:
        print(
            "trigger, split at the dispatch's moment: sent → dispatched p50 "
            f"{percentile(before, 0.5):.0f} ms, p99 {percentile(before, 0.99):.0f} ms "
            "(collector, writer's batch, identity map); dispatched → received p50 "
            f"{percentile(after, 0.5):.0f} ms, p99 {percentile(after, 0.99):.0f} ms "
            "(the dispatch's query and commit, outbox, delivery)"
        )
    verdict = "met" if figures["trigger"] < 1000 else "NOT met"
    print(f"event → webhook p99 {figures['trigger']:.0f} ms: target under 1,000 ms {verdict}")


if __name__ == "__main__":
    main()
