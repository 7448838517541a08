"""Next best offers for a million persons: each step of the offers' scoring, after the
warehouse's query, with its wall time, CPU time and peak memory, beside the baseline in the
same run (matrix factorisation fitted on every person, as before the sample).

    .venv/bin/python benchmarks/offers.py [--people 1000000] [--seed 7] [--skip-baseline]

The interactions are made in memory as the warehouse's query returns them (``person, item,
bought``): the shop of benchmarks/predictions.py (40 families of 8 items; each customer
buys one to twelve times within their family, half the purchases viewed in the shop first).
Loading a million customers' events through the importer takes the better part of an hour
on the 2-core machine, so the query that reads them (DuckDB, about 20 s at a million; see
RESULTS.md) is measured by benchmarks/predictions.py, not here. The offers are then stored
as scoring stores them (one Arrow table, one ``INSERT … GROUP BY``) into a fresh warehouse.

Timed: the matrices; for each method the fit and the choice of everyone's ten best items;
the baseline factorisation on everyone; the store. Printed beside them: how many of each
person's ten offers the sampled factorisation shares with the one fitted on everyone.
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import numpy as np
import pyarrow as pa

T = TypeVar("T")
FAMILIES = 40
ITEMS_PER_FAMILY = 8


def shop(people: int, seed: int) -> pa.Table:
    """``person, item, bought``: one row per purchase of an item and per view of it."""
    rng = np.random.default_rng(seed)
    family = rng.integers(0, FAMILIES, people)
    drop = rng.beta(1.0, 2.5, people)  # dropping out after each purchase
    purchases = np.minimum(rng.geometric(np.clip(drop, 0.05, 1.0)), 12)
    person = np.repeat(np.arange(people, dtype=np.int64), purchases)
    item = family[person] * ITEMS_PER_FAMILY + rng.integers(0, ITEMS_PER_FAMILY, person.size)
    viewed = rng.random(person.size) < 0.5
    names = np.array(
        [f"f{i // ITEMS_PER_FAMILY:02d}-i{i % ITEMS_PER_FAMILY}" for i in range(320)], dtype=object
    )
    return pa.table(
        {
            "person": pa.array(np.concatenate([person, person[viewed]]) + 1, pa.int64()),
            "item": pa.array(names[np.concatenate([item, item[viewed]])], pa.string()),
            "bought": pa.array(
                np.concatenate([np.ones(person.size, bool), np.zeros(int(viewed.sum()), bool)])
            ),
        }
    )


def _peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timed(label: str, step: Callable[[], T], rows: list[tuple[str, float, float, float]]) -> T:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass
    wall, cpu = time.perf_counter(), time.process_time()
    found = step()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    rows.append((label, wall, cpu, _peak_mb()))
    load = os.getloadavg()[0]
    print(f"  {label}: {wall:.1f} s ({cpu:.1f} s CPU), peak {_peak_mb():,.0f} MB, load {load:.1f}",
          flush=True)  # fmt: skip
    return found


def main() -> None:
    from threadpoolctl import threadpool_limits

    from touchpoints.config import load_settings
    from touchpoints.core import Touchpoints
    from touchpoints.predictions import recommend
    from touchpoints.predictions.offers import _Fitted, choose
    from touchpoints.warehouse import utc_now

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--skip-baseline", action="store_true", help="No fit on everyone")
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; {args.people:,} people",
          flush=True)  # fmt: skip
    table = shop(args.people, args.seed)
    print(f"{table.num_rows:,} interactions", flush=True)
    rows: list[tuple[str, float, float, float]] = []
    chosen: dict[str, pa.Table] = {}
    # As scoring runs (touchpoints.predictions.threads): BLAS and OpenMP on one thread.
    with threadpool_limits(1):
        x = timed("matrices (recommend.interactions)", lambda: recommend.interactions(table), rows)
        print(f"    {x.shape[0]:,} persons × {x.shape[1]:,} items", flush=True)
        for method in ("co-occurrence", "factorisation"):
            fitted = timed(f"{method}: fit", lambda m=method: _Fitted(x, m), rows)
            chosen[method] = timed(f"{method}: ten best items for everyone",
                                   lambda f=fitted: choose(f), rows)  # fmt: skip
        if not args.skip_baseline and x.shape[0] > recommend.SAMPLE:
            sample = recommend.SAMPLE
            recommend.SAMPLE = x.shape[0]  # the baseline: every person in the fit
            try:
                fitted = timed("baseline: factorisation fitted on everyone",
                               lambda: _Fitted(x, "factorisation"), rows)  # fmt: skip
            finally:
                recommend.SAMPLE = sample
            everyone = timed("baseline: its ten best items for everyone",
                             lambda: choose(fitted), rows)  # fmt: skip
            print(f"    offers shared with the fit on everyone: "
                  f"{_shared(chosen['factorisation'], everyone):.2f} of 10 a person",
                  flush=True)  # fmt: skip
            family = _families(table)
            print(f"    first five offers from the person's own family (what they buy next): "
                  f"sampled {_in_family(chosen['factorisation'], family):.3f}, "
                  f"on everyone {_in_family(everyone, family):.3f}, "
                  f"co-occurrence {_in_family(chosen['co-occurrence'], family):.3f}",
                  flush=True)  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="tp-offers-") as data_dir:
        with Touchpoints(load_settings(Path(data_dir))) as tp:
            offers = chosen["co-occurrence"]
            timed("store everyone's offers (one Arrow table, INSERT … GROUP BY)",
                  lambda: tp.offers.next_best.replace_products(
                      offers, 1, utc_now(), "co-occurrence", b"-"), rows)  # fmt: skip
    print("\n| step | seconds | CPU seconds | peak MB |\n| --- | ---: | ---: | ---: |")
    for label, wall, cpu, peak in rows:
        print(f"| {label} | {wall:.1f} | {cpu:.1f} | {peak:,.0f} |")


def _families(table: pa.Table) -> pa.Table:
    """Each person's family (every item of theirs is of it): ``person, family``."""
    import pyarrow.compute as pc

    firsts = table.group_by("person").aggregate([("item", "min")])
    return pa.table(
        {
            "person": firsts.column("person"),
            "family": pc.utf8_slice_codeunits(firsts.column("item_min"), 0, 3),
        }
    )


def _in_family(offers: pa.Table, families: pa.Table) -> float:
    """The share of the persons' first five offers that are of their own family."""
    import pyarrow.compute as pc

    person = offers.column("person").to_numpy()
    starts = np.r_[0, np.flatnonzero(np.diff(person)) + 1]
    rank = np.arange(person.size) - np.repeat(starts, np.diff(np.r_[starts, person.size]))
    first = offers.filter(pa.array(rank < 5)).join(families, "person")
    same = pc.equal(pc.utf8_slice_codeunits(first.column("item"), 0, 3), first.column("family"))
    return float(pc.mean(pc.cast(same, pa.float64())).as_py() or 0.0)


def _shared(first: pa.Table, second: pa.Table) -> float:
    """The mean number of items a person's offers share between two choices."""
    a = first.select(["person", "item"])
    b = second.select(["person", "item"])
    common = a.join(b, ["person", "item"], join_type="inner").num_rows
    persons = len(set(first.column("person").to_numpy()))
    return common / max(persons, 1)


if __name__ == "__main__":
    sys.exit(main())
