"""Identity resolution on the demo data: accuracy against the ground truth, rebuild time,
ingest-to-profile latency and profile lookup latency under load.

    .venv/bin/python benchmarks/identity.py [--people 10000] [--seconds 10] [--skip-server]
                                            [--febrl]

1. Simulates ``--people`` customers, stores their events and the CRM export in a fresh data
   directory (local mode: the identity map is kept in step after every batch, as the server's
   writer does), and times it.
2. Scores the identity map against the simulator's ground truth: pairwise precision and
   recall of same-person decisions over every identifier that both know (targets: precision
   ≥ 0.99, recall ≥ 0.97); then runs probabilistic matching (``identity match``) and scores
   again. Recall is also given against the pairs the data can support: pairs the events or
   links show, or whose two sides both carry a name, e-mail or phone.
3. Rebuilds the map with set-based SQL (links included), times it, and checks that it equals
   the incremental one.
4. Starts ``touchpoints serve`` on the directory and measures (a) ingest-to-profile latency:
   an identify call with a new e-mail, then polling the profile API until the e-mail resolves,
   200 times; (b) profile lookups by e-mail with wrk, 32 connections (target p99 < 10 ms).
"""

from __future__ import annotations

import argparse
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
from pathlib import Path

import httpx

from touchpoints.config import load_settings
from touchpoints.core import Touchpoints
from touchpoints.demo.files import write_demo_files
from touchpoints.demo.simulator import DemoConfig, Simulator
from touchpoints.identity.evaluate import pairwise_scores
from touchpoints.identity.identifiers import normalise
from touchpoints.identity.rebuild import rebuild
from touchpoints.identity.store import link_sids_sql

_NORMAL_FORM = {"email": "email", "phone": "phone", "wallet": "lower"}


def load(tp: Touchpoints, people: int, seed: int, out_dir: Path) -> tuple[int, float, Simulator]:
    from touchpoints.collect.importer import load_mapping, read_csv

    sim = Simulator(DemoConfig(people=people, seed=seed))
    batch: list[dict] = []
    stored = 0
    busy = 0.0  # time spent storing (validation, DuckDB, identity map), not simulating

    def flush() -> None:
        nonlocal batch, stored, busy
        started = time.perf_counter()
        outcome = tp.judge({"batch": batch}, "import", source="benchmark")
        stored += tp.write_rows(outcome.rows)
        busy += time.perf_counter() - started
        batch = []

    for message in sim.events():
        batch.append(message)
        if len(batch) == 2000:
            flush()
    files = write_demo_files(sim, out_dir)
    mapping = load_mapping(files.crm_mapping)
    for line in read_csv(files.crm_export, mapping):
        if line.message is not None:
            batch.append(line.message)
            if len(batch) == 2000:
                flush()
    if batch:
        flush()
    return stored, busy, sim


def accuracy(tp: Touchpoints, sim: Simulator, label: str) -> None:
    truth: dict[tuple[str, str], str] = {}
    for id_type, value, person in sim.truth.identifiers:
        kind = _NORMAL_FORM.get(id_type)
        normal = normalise(kind, value) if kind else value  # type: ignore[arg-type]
        if normal:
            truth[(id_type, normal)] = person
    predicted = {
        (id_type, value): person
        for id_type, value, person in tp.warehouse.fetchall(
            "SELECT type, value, person FROM identifiers"
        )
    }
    scores = pairwise_scores(predicted, truth)
    unknown = len(predicted.keys() - truth.keys())
    print(
        f"accuracy ({label}): {scores.items:,} identifiers scored ({unknown:,} not in the truth), "
        f"precision {scores.precision:.4f}, recall {scores.recall:.4f}, F1 {scores.f1:.4f} "
        f"(pairs: {scores.predicted_pairs:,} predicted, {scores.true_pairs:,} true, "
        f"{scores.correct_pairs:,} correct)"
    )
    # Two identifiers of one person that no event ever shows together (a second device that
    # never signs in) cannot be linked deterministically. Recall against what the events and
    # accepted links do show: true pairs also connected through them, merge rules aside.
    linked = _evidence_components(tp)
    sid_of = {
        (t, v): sid
        for sid, t, v in tp.warehouse.fetchall("SELECT sid, type, value FROM identifiers")
    }
    observable = {
        key: (person, linked[sid_of[key]]) for key, person in truth.items() if key in sid_of
    }
    shown = pairwise_scores(predicted, observable)
    print(
        f"  recall of pairs the events and links show: {shown.recall:.4f} "
        f"({shown.correct_pairs:,} of {shown.true_pairs:,})"
    )
    # What any resolver could reach on this data: pairs the events show, plus pairs whose two
    # sides both carry a name, e-mail or phone somewhere (traits to match on). A device that
    # never signs in and never gives a name can be linked by nothing in the data.
    with_traits = {
        sid
        for (sid,) in tp.warehouse.fetchall(
            "SELECT i.sid FROM identifiers i WHERE i.person IN (SELECT unnest(?::BIGINT[]))",
            [tp.linker.records()["person"].to_pylist()],
        )
    }
    component_has_traits = {linked[sid] for sid in with_traits if sid in linked}
    reachable = {
        key: (
            person,
            linked[sid_of[key]] if linked[sid_of[key]] not in component_has_traits else "traits",
        )
        for key, person in truth.items()
        if key in sid_of
    }
    reach = pairwise_scores(predicted, reachable)
    print(
        f"  recall of pairs the data can support (shown, or both sides carry traits): "
        f"{reach.recall:.4f} ({reach.correct_pairs:,} of {reach.true_pairs:,}); these are "
        f"{reach.true_pairs / scores.true_pairs:.1%} of all true pairs"
    )
    persons_true = len({truth[k] for k in predicted.keys() & truth.keys()})
    persons_pred = len({predicted[k] for k in predicted.keys() & truth.keys()})
    print(f"persons: {persons_pred:,} resolved for {persons_true:,} true persons")


def _evidence_components(tp: Touchpoints) -> dict[int, int]:
    """Connected components of identifiers seen in one event, with no merge rule applied."""
    parent: dict[int, int] = {}

    def find(x: int) -> int:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    anchors: dict[int, int] = {}
    for seq, pos, sid in tp.warehouse.fetchall(
        "SELECT seq, pos, sid FROM event_identifiers ORDER BY seq, pos"
    ):
        if pos == 0:
            anchors[seq] = find(sid)
        else:
            a, b = find(anchors[seq]), find(sid)
            if a != b:
                parent[max(a, b)] = min(a, b)
    for sid_a, sid_b in tp.warehouse.fetchall(f"SELECT sid_a, sid_b FROM ({link_sids_sql()})"):
        a, b = find(sid_a), find(sid_b)
        if a != b:
            parent[max(a, b)] = min(a, b)
    return {sid: find(sid) for sid in list(parent)}


def snapshot(tp: Touchpoints) -> list[tuple]:
    return tp.warehouse.fetchall("SELECT sid, type, value, person FROM identifiers ORDER BY sid")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", text).groups()  # type: ignore[union-attr]
    return float(value) / 1000 if unit == "us" else float(value) * (1000 if unit == "s" else 1)


def server_latency(data_dir: Path, seconds: int, emails: list[str]) -> None:
    env = {**os.environ, "TOUCHPOINTS_DATA_DIR": str(data_dir), "TOUCHPOINTS_LOG_LEVEL": "warning"}

    def cli(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "touchpoints", *args],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        return done.stdout.strip()

    write_key, read_key = cli("keys", "create", "write"), cli("keys", "create", "read")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen(
        [sys.executable, "-m", "touchpoints", "serve", "--port", str(port)], env=env
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                if httpx.get(url + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        latencies = []
        with (
            httpx.Client(base_url=url, auth=(write_key, "")) as writer,
            httpx.Client(base_url=url, headers={"Authorization": f"Bearer {read_key}"}) as reader,
        ):
            for i in range(200):
                email = f"latency-{i}@bench.example"
                sent = time.perf_counter()
                writer.post(
                    "/v1/identify", json={"userId": f"bench-{i}", "traits": {"email": email}}
                ).raise_for_status()
                while reader.get(f"/v1/profiles/email:{email}").status_code != 200:
                    time.sleep(0.002)
                latencies.append((time.perf_counter() - sent) * 1000)
        latencies.sort()
        print(
            f"ingest-to-profile latency (200 identify calls, one at a time): "
            f"p50 {statistics.median(latencies):.0f} ms, p99 {latencies[197]:.0f} ms, "
            f"max {latencies[-1]:.0f} ms"
        )
        # Cold: the first lookup of a person assembles the profile from the warehouse.
        cold = []
        with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {read_key}"}) as reader:
            for email in emails[:500]:
                started = time.perf_counter()
                reader.get(f"/v1/profiles/email:{email}").raise_for_status()
                cold.append((time.perf_counter() - started) * 1000)
        cold.sort()
        print(
            f"profile lookups, first time (assembled; 500 persons, one client): "
            f"p50 {statistics.median(cold):.1f} ms, p99 {cold[494]:.1f} ms"
        )
        if shutil.which("wrk") is None:
            print("profile lookups under load: skipped (apt-get install wrk)")
            return
        keys = ",".join(f'"{e}"' for e in emails[:500])
        lua = textwrap.dedent(
            f"""
            local emails = {{{keys}}}
            local i = 0
            request = function()
              i = i + 1
              local path = "/v1/profiles/email:" .. emails[(i % #emails) + 1]
              return wrk.format("GET", path)
            end
            """
        )
        script = data_dir.parent / "lookup.lua"
        script.write_text(lua)
        out = subprocess.run(
            [
                "wrk",
                "-t2",
                "-c32",
                f"-d{seconds}s",
                "--latency",
                "-s",
                str(script),
                "-H",
                f"Authorization: Bearer {read_key}",
                url,
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        total = re.search(r"(\d+) requests in ([\d.]+)s", out)
        p50 = _ms(re.search(r"^\s*50%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
        p99 = _ms(re.search(r"^\s*99%\s+(\S+)", out, re.M).group(1))  # type: ignore[union-attr]
        non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
        print(
            f"profile lookups of those 500 persons again, wrk -t2 -c32 -d{seconds}s: "
            f"{int(total.group(1)) / float(total.group(2)):,.0f} req/s, "  # type: ignore[union-attr]
            f"p50 {p50:.1f} ms, p99 {p99:.1f} ms, non-2xx {non2xx.group(1) if non2xx else 0}"
        )
    finally:
        server.terminate()
        server.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--skip-server", action="store_true")
    parser.add_argument(
        "--febrl",
        action="store_true",
        help="also score match_records on FEBRL 1-4 and the demo's CRM export "
        "(benchmarks/identity_matching.py; needs the bench extra)",
    )
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="tp-identity-"))
    data_dir = work / "data"
    with Touchpoints(load_settings(data_dir)) as tp:
        stored, seconds, sim = load(tp, args.people, args.seed, work / "demo")
        identifiers = tp.warehouse.scalar("SELECT count(*) FROM identifiers")
        print(
            f"loaded {args.people:,} people: {stored:,} events, {identifiers:,} identifiers in "
            f"{seconds:.1f} s of storing ({stored / seconds:,.0f} events/s: validated, written to "
            "DuckDB, identity map kept in step; simulation time not counted)"
        )
        accuracy(tp, sim, "deterministic")
        run = tp.linker.run()
        print(
            f"probabilistic matching: {run.records:,} persons with traits compared, "
            f"{run.scored_pairs:,} pairs scored, {run.linked:,} linked, {run.refused:,} refused "
            f"by the merge rules, {run.review:,} to review, in {run.seconds:.1f} s"
        )
        accuracy(tp, sim, "with probabilistic links")
        incremental = snapshot(tp)
        result = rebuild(tp.identity)
        same = snapshot(tp) == incremental
        print(
            f"rebuild: {result.identifiers:,} identifiers, {result.links:,} links, "
            f"{result.persons:,} persons, {result.iterations} propagation steps, "
            f"{result.replayed_components:,} components replayed, {result.seconds:.1f} s "
            f"({', '.join(f'{k} {v:.1f} s' for k, v in result.phases.items())}); "
            f"identical to the incremental map: {same}"
        )
        emails = [
            value
            for (value,) in tp.warehouse.fetchall(
                "SELECT value FROM identifiers WHERE type = 'email' ORDER BY sid LIMIT 5000"
            )
        ]
        if not same:
            sys.exit("the rebuilt identity map differs from the incremental one")
    if not args.skip_server:
        server_latency(data_dir, args.seconds, emails)
    shutil.rmtree(work, ignore_errors=True)
    if args.febrl:
        import identity_matching

        identity_matching.main(["--people", str(args.people)])


if __name__ == "__main__":
    main()
