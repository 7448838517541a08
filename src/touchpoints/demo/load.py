"""Load the simulated company through the real HTTP API, as SDKs and a CRM export would.

Runs in its own process (``python -m touchpoints.demo.load``) so that simulating and sending
use the second core while the server's process parses and writes.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import asdict, dataclass
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import orjson

from touchpoints.collect.importer import load_mapping, read_csv
from touchpoints.demo import DemoConfig, Simulator, activation, write_demo_files

_BATCH_EVENTS = 500
_BATCH_BYTES = 400 * 1024


@dataclass
class LoadReport:
    people: int
    events_sent: int
    crm_rows_sent: int
    rejected: int
    seconds: float
    files: dict[str, str]
    example_email: str | None  # of a person who signed in somewhere: a profile to show
    activation: list[str]  # audiences and placements made (demo/activation.py)


def _post(client: httpx.Client, path: str, batch: list[bytes]) -> int:
    """Send one batch; wait out 429s as an SDK would. Returns the number rejected."""
    body = b'{"batch":[' + b",".join(batch) + b"]}"
    for _attempt in range(60):
        response = client.post(path, content=body, headers={"Content-Type": "application/json"})
        if response.status_code == 429:
            time.sleep(float(response.headers.get("Retry-After", "1")))
            continue
        if response.status_code >= 400 and response.status_code != 400:
            raise RuntimeError(f"{path} answered {response.status_code}: {response.text[:300]}")
        return len(response.json().get("rejected", []))
    raise RuntimeError(f"{path} stayed busy for 60 attempts")


def _send_all(client: httpx.Client, path: str, messages: Any) -> tuple[int, int]:
    sent = rejected = 0
    batch: list[bytes] = []
    size = 0
    for message in messages:
        encoded = orjson.dumps(message)
        if batch and (len(batch) >= _BATCH_EVENTS or size + len(encoded) > _BATCH_BYTES):
            rejected += _post(client, path, batch)
            batch, size = [], 0
        batch.append(encoded)
        size += len(encoded) + 1
        sent += 1
    if batch:
        rejected += _post(client, path, batch)
    return sent, rejected


def load(
    url: str, write_key: str, config: DemoConfig, out_dir: Path, admin_key: str | None = None
) -> LoadReport:
    started = time.perf_counter()
    simulator = Simulator(config)
    with httpx.Client(base_url=url, auth=(write_key, ""), timeout=120) as client:
        events, rejected = _send_all(client, "/v1/batch", simulator.events())
        files = write_demo_files(simulator, out_dir)
        mapping = load_mapping(Path(files.crm_mapping))
        crm = (line.message for line in read_csv(Path(files.crm_export), mapping) if line.message)
        crm_rows, crm_rejected = _send_all(client, "/v1/import", crm)
    made: list[str] = []
    if admin_key:
        headers = {"Authorization": f"Bearer {admin_key}"}
        with httpx.Client(base_url=url, headers=headers, timeout=300) as admin:
            made = activation.set_up(admin)
    return LoadReport(
        people=config.people,
        events_sent=events,
        crm_rows_sent=crm_rows,
        rejected=rejected + crm_rejected,
        seconds=round(time.perf_counter() - started, 1),
        files={name: str(path) for name, path in asdict(files).items()},
        example_email=next((p.email for p in simulator.people() if p.identified), None),
        activation=made,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", required=True)
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument(
        "--end", type=date.fromisoformat, help="the day the data end (as it begins, UTC)"
    )
    args = parser.parse_args(argv)
    # Not on the command line (ps would show them): the write key, then an admin key for the
    # demo's audiences and placement (an empty line: none made).
    write_key = sys.stdin.readline().strip()
    admin_key = sys.stdin.readline().strip() or None
    config = (
        DemoConfig(people=args.people, seed=args.seed)
        if args.end is None
        else DemoConfig.ending(args.end, people=args.people, seed=args.seed)
    )
    report = load(args.url, write_key, config, args.out, admin_key)
    sys.stdout.write(orjson.dumps(asdict(report)).decode() + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
