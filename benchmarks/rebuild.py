"""The identity rebuild at scale: the stored event identifiers reused (the identifier rules
unchanged) against extracting them again from every event's JSON.

    .venv/bin/python benchmarks/rebuild.py --data-dir DIR [--people 200000] [--build-only]
                                           [--modes extract,reuse]

1. Unless ``--data-dir`` holds a database already, simulates ``--people`` customers of the
   demo (about 31 events and 5 identifiers a person: 200,000 people make about a million
   identifiers) into it, the identity map kept in step as a server keeps it, and keeps the
   directory for the next runs (``--build-only`` stops there).
2. Copies the database, so that every run starts from the same file, and rebuilds on the
   copy in each mode, in order: ``extract`` (identifiers extracted again from every event,
   as every rebuild did before, and as one does after the rules changed) and ``reuse`` (the
   stored event identifiers). After each: the rebuilt map must equal the incremental one
   (identifiers, persons, event identifiers).

The same script runs on an older tree (``PYTHONPATH=<checkout>/src``), whose rebuild always
extracts: build the directory with the older tree, then run both trees on copies of it.
"""

from __future__ import annotations

import argparse
import inspect
import shutil
import sys
import time
from pathlib import Path

from touchpoints.config import load_settings
from touchpoints.core import Touchpoints
from touchpoints.identity.rebuild import rebuild

sys.path.insert(0, str(Path(__file__).parent))
from identity import load  # noqa: E402 - the demo loader of benchmarks/identity.py


def build(data_dir: Path, people: int, seed: int) -> None:
    with Touchpoints(load_settings(data_dir)) as tp:
        stored, seconds, _ = load(tp, people, seed, data_dir.parent / "demo-files")
        identifiers = tp.warehouse.scalar("SELECT count(*) FROM identifiers")
        print(
            f"built {data_dir}: {people:,} people, {stored:,} events, {identifiers:,} "
            f"identifiers in {seconds:.0f} s of storing",
            flush=True,
        )


def state(tp: Touchpoints) -> tuple[object, ...]:
    """The identity map in a few numbers: every row of identifiers and event identifiers
    enters a sum of hashes (a difference anywhere shows)."""
    return tuple(
        tp.warehouse.fetchall(
            "SELECT (SELECT count(*) FROM identifiers), "
            "(SELECT sum(hash(sid, type, value, first_seq, person, detached)) FROM identifiers), "
            "(SELECT count(*) FROM event_identifiers), "
            "(SELECT sum(hash(seq, pos, sid)) FROM event_identifiers), "
            "(SELECT count(DISTINCT person) FROM identifiers)"
        )[0]
    )


def run(data_dir: Path, modes: list[str]) -> None:
    copy = data_dir.parent / f"{data_dir.name}-copy"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(data_dir, copy)
    takes_mode = "extract" in inspect.signature(rebuild).parameters
    with Touchpoints(load_settings(copy)) as tp:
        incremental = state(tp)
        print(
            f"{incremental[0]:,} identifiers, {incremental[2]:,} event identifiers, "
            f"{incremental[4]:,} persons",
            flush=True,
        )
        for mode in modes if takes_mode else ["extract (always, this tree)"]:
            options = {"extract": mode == "extract"} if takes_mode else {}
            started = time.perf_counter()
            result = rebuild(tp.identity, **options)
            seconds = time.perf_counter() - started
            same = state(tp) == incremental
            phases = ", ".join(f"{name} {value:.1f} s" for name, value in result.phases.items())
            print(
                f"rebuild ({mode}): {seconds:.1f} s ({phases}); {result.events:,} events, "
                f"{result.identifiers:,} identifiers, {result.links:,} links, "
                f"{result.persons:,} persons, {result.iterations} propagation steps, "
                f"{result.replayed_components:,} components replayed; identical to the "
                f"incremental map: {same}",
                flush=True,
            )
            if not same:
                sys.exit("the rebuilt identity map differs from the incremental one")
    shutil.rmtree(copy, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data-dir", type=Path, required=True)
    parser.add_argument("--people", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--build-only", action="store_true")
    parser.add_argument("--modes", default="extract,reuse")
    args = parser.parse_args()
    data_dir = args.data_dir.absolute()
    if not (data_dir / "touchpoints.duckdb").exists():
        build(data_dir, args.people, args.seed)
    if not args.build_only:
        run(data_dir, args.modes.split(","))


if __name__ == "__main__":
    main()
