"""The CDNOW data the BG/NBD and Gamma-Gamma papers were fitted on, read from where the
``lifetimes`` wheel (a test dependency, pinned in pyproject.toml) installs it.

The files are found through the distribution's file list, without importing ``lifetimes``
(its ``datasets`` module needs ``pkg_resources``). They are the CDNOW sample of Fader,
Hardie & Lee (2005): 2,357 customers' purchases from 1 January 1997 to 30 June 1998, the
first 39 weeks (to 30 September 1997) the calibration period.

- ``CDNOW_sample.txt``: one purchase a line: master id, sample id, date (YYYYMMDD), CDs,
  dollar amount;
- ``cdnow_customers_summary.csv``: per customer x, t_x, T in weeks (the paper's input);
- ``cdnow_customers_summary_with_transactions.csv``: the same with the average value of
  the repeat purchases (zbar), the Gamma-Gamma note's input.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from datetime import date
from importlib.metadata import distribution
from pathlib import Path

import numpy as np
import numpy.typing as npt

CALIBRATION_END = date(1997, 9, 30)
HOLDOUT_END = date(1998, 6, 30)


def data_file(name: str) -> Path:
    dist = distribution("lifetimes")
    for file in dist.files or ():
        if file.name == name and "datasets" in file.parts:
            return Path(str(dist.locate_file(file)))
    raise FileNotFoundError(f"lifetimes' datasets/{name} (pip install -e '.[test]')")


@dataclass(frozen=True)
class Summary:
    x: npt.NDArray[np.float64]
    t_x: npt.NDArray[np.float64]
    T: npt.NDArray[np.float64]
    zbar: npt.NDArray[np.float64]


def summary() -> Summary:
    """The published per-customer summary (weeks, two decimals) with zbar."""
    with data_file("cdnow_customers_summary_with_transactions.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    columns = {key: np.array([float(row[key]) for row in rows]) for key in rows[0]}
    return Summary(columns["x"], columns["t_x"], columns["T"], columns["zbar"])


def transactions() -> list[tuple[str, date, float]]:
    """Every purchase of the sample: (sample customer id, day, dollars)."""
    out = []
    for line in data_file("CDNOW_sample.txt").read_text().splitlines():
        _master, customer, day, _cds, amount = line.split()
        out.append((customer, date(int(day[:4]), int(day[4:6]), int(day[6:])), float(amount)))
    return out
