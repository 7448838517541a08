"""Subject rights on the demo data: the time an export and an erasure take, where an erasure's
time goes (finding the person, deleting, recomputing the identity map, rewriting the file),
and what suppression costs the collector per event.

    .venv/bin/python benchmarks/privacy.py [--people 10000] [--persons 3] [--data-dir DIR]

1. Builds a demo data directory (``touchpoints demo --no-serve``) unless ``--data-dir`` names
   one, and copies it, so the runs start from the same file.
2. Exports ``--persons`` persons (found by e-mail) and erases them one by one, timing each
   phase. Baselines in the same run: copying the database file (the floor of rewriting it)
   and the deletes alone (an erasure without the rewrite).
3. Suppression: ``Suppressions.keep`` on the demo's own events with 0 and with 1,000 erased
   identifiers, in µs per event, beside the normaliser's cost on the same events.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from touchpoints.config import load_settings
from touchpoints.core import Touchpoints
from touchpoints.identity.identifiers import Identifier


def demo_dir(people: int, where: Path) -> Path:
    data = where / "demo"
    subprocess.run(
        [sys.executable, "-m", "touchpoints", "demo", "--no-serve", "--people", str(people),
         "-d", str(data)],
        check=True, capture_output=True,
    )  # fmt: skip
    return data


def timed(obj: object, name: str, spent: dict[str, float]) -> None:
    """Wrap ``obj.name`` to add its time to ``spent[name]``."""
    original = getattr(obj, name)

    def wrapper(*args: object, **kwargs: object) -> object:
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            spent[name] = spent.get(name, 0.0) + time.perf_counter() - started

    setattr(obj, name, wrapper)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--people", type=int, default=10_000)
    parser.add_argument("--persons", type=int, default=3)
    parser.add_argument("--data-dir", type=Path)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        started = time.perf_counter()
        source = args.data_dir or demo_dir(args.people, work)
        print(f"demo data: {source} ({time.perf_counter() - started:.0f} s to build)")
        data = work / "run"
        shutil.copytree(source, data, ignore=shutil.ignore_patterns("demo"))
        database = data / "touchpoints.duckdb"
        size = database.stat().st_size

        started = time.perf_counter()
        shutil.copyfile(database, work / "copy.duckdb")
        copy_seconds = time.perf_counter() - started
        print(f"database {size / 1e6:.0f} MB; copying the file (baseline): {copy_seconds:.2f} s")

        with Touchpoints.open(load_settings(data)) as tp:
            tp.journeys.run(_stages())  # journey tables up to date, as a server keeps them
            keys = [
                f"email:{value}"
                for (value,) in tp.warehouse.fetchall(
                    "SELECT value FROM identifiers WHERE type = 'email' ORDER BY sid "
                    f"LIMIT {args.persons * 2}"
                )
            ]
            persons = {tp.profiles.resolve(key): key for key in keys}
            keys = list(persons.values())[: args.persons]

            exports = []
            for key in keys:
                started = time.perf_counter()
                _, archive = tp.privacy.export(key)
                exports.append((time.perf_counter() - started, len(archive)))
            print(
                f"export: median {statistics.median(s for s, _ in exports):.2f} s, "
                f"archives {', '.join(f'{b / 1e3:.0f} KB' for _, b in exports)}"
            )

            spent: dict[str, float] = {}
            rights = tp.privacy.rights
            for name in ("subject", "_delete", "_delete_orphans", "_scrub_reject_files"):
                timed(rights, name, spent)
            timed(tp.identity, "recompute", spent)
            timed(tp.warehouse, "compact", spent)
            totals = []
            for key in keys:
                started = time.perf_counter()
                done = tp.privacy.erase(key)
                totals.append(time.perf_counter() - started)
                print(
                    f"erase {done.person}: {totals[-1]:.2f} s, {done.identifiers} identifiers, "
                    f"{done.removed.get('events', 0)} events, database "
                    f"{done.database_bytes[0] / 1e6:.0f} → {done.database_bytes[1] / 1e6:.0f} MB"
                )
            n = len(keys)
            phases = ", ".join(
                f"{name.strip('_')} {seconds / n:.2f} s" for name, seconds in spent.items()
            )
            print(f"erase: median {statistics.median(totals):.2f} s; per erasure: {phases}")
            without = statistics.median(totals) - spent["compact"] / n
            print(f"erasure without the rewrite (baseline): {without:.2f} s")

            events = tp.warehouse.fetchall("SELECT raw FROM events LIMIT 20000")
            outcome = tp.judge(
                {"batch": [_json(raw) for (raw,) in events]}, "import", source="bench",
                enforce_batch_limit=False,
            )  # fmt: skip
            rows = outcome.rows
            started = time.perf_counter()
            tp.judge({"batch": [_json(raw) for (raw,) in events]}, "import", source="bench",
                     enforce_batch_limit=False)  # fmt: skip
            normalise_us = (time.perf_counter() - started) / len(rows) * 1e6
            suppressions = tp.privacy.suppressions
            for count in (0, 1000):
                if count:
                    suppressions.add(
                        (Identifier("email", f"x{i}@example.de") for i in range(count)), None
                    )
                started = time.perf_counter()
                kept = suppressions.keep(rows)
                per = (time.perf_counter() - started) / len(rows) * 1e6
                print(
                    f"suppression check, {suppressions.active} erased identifiers: "
                    f"{per:.1f} µs per event ({len(kept)} of {len(rows)} kept); "
                    f"normalising (baseline): {normalise_us:.1f} µs per event"
                )


def _json(raw: str) -> object:
    import orjson

    return orjson.loads(raw)


def _stages() -> object:
    from touchpoints.journeys.queries import StagesQuery

    return StagesQuery()


if __name__ == "__main__":
    main()
