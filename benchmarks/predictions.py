"""Predictions at scale: training on 100,000 persons and scoring 1,000,000 (target: each
under 60 s on the 2-core machine), with each step's peak memory, beside bare scikit-learn on
the same matrix.

    .venv/bin/python benchmarks/predictions.py [--train-people 100000] [--score-people 1000000]
        [--data-dir DIR] [--seed 7]

Makes its own data (nothing is downloaded or committed): a shop whose customers buy by the
story of the BG/NBD model (each at their own rate until they drop out after a purchase),
with a few items of a catalogue in families, views before buying, and activity (trips,
service visits) until they stop, a complaint making them stop sooner; most grant analytics
at checkout. The events go in as any import does (validated, stored, the identity map kept
in step), into ``DIR/train`` and ``DIR/score``; a data directory loaded before is reused.

Timed, each in this process with the peak resident memory of the step (VmHWM, reset before
the step through /proc/self/clear_refs):

- training on the training shop: the lifetime-value models (``train_ltv``) and churn risk
  (``churn.train``: features from the journey tables at two cutoffs, the trees, the logistic
  baseline, SHAP on the test period), beside a bare ``HistGradientBoostingClassifier`` and
  ``LogisticRegression`` fit on the same matrix;
- scoring everyone of the scoring shop with models trained there: lifetime value, churn risk
  (features, SHAP, every person's reasons), next best products (both methods) and actions,
  beside the bare trees' ``predict_proba`` on the same matrix.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from touchpoints.config import load_settings
from touchpoints.core import Touchpoints

T = TypeVar("T")
DAYS = 540  # the history's length, up to yesterday
FAMILIES = 40
ITEMS_PER_FAMILY = 8
ACTIONS = """\
actions:
  - name: win-back call
    action: call
    channel: phone
    priority: 10
    when:
      churn_risk: {at_least: 0.6}
      predicted_clv_12m: {at_least: 200}
  - name: accessory offer
    action: offer
    channel: email
    priority: 5
    when:
      p_alive: {at_least: 0.5}
      stage: {equals: purchase}
"""


# -- the shop ------------------------------------------------------------------------------------
def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def shop(people: int, seed: int, end: datetime) -> Iterator[dict[str, Any]]:
    """Segment messages of ``people`` customers over the ``DAYS`` days before ``end``."""
    rng = np.random.default_rng(seed)
    start = end - timedelta(days=DAYS)
    rates = rng.gamma(0.6, 1 / 25, people)  # purchases a day while active (BG/NBD's r, alpha)
    drop = rng.beta(1.0, 2.5, people)  # dropping out after each purchase (a, b)
    first = rng.uniform(0, DAYS - 30, people)
    unhappy = rng.random(people) < 0.3
    families = rng.integers(0, FAMILIES, people)
    consent = rng.random(people)
    for n in range(people):
        user = f"p{n:07d}"
        family = int(families[n])
        day = float(first[n])
        purchases: list[float] = []
        while day < DAYS and len(purchases) < 12:
            purchases.append(day)
            if rng.random() < drop[n]:
                break
            day += rng.exponential(1 / max(rates[n], 1e-3))
        for k, at in enumerate(purchases):
            moment = start + timedelta(days=at, hours=float(rng.uniform(8, 20)))
            item = f"f{family:02d}-i{int(rng.integers(0, ITEMS_PER_FAMILY))}"
            viewed = moment - timedelta(hours=float(rng.uniform(1, 72)))
            if rng.random() < 0.5:  # viewed in the shop first (else bought at the dealer)
                yield {
                    "type": "track",
                    "userId": user,
                    "event": "Product Viewed",
                    "timestamp": _iso(viewed),
                    "properties": {"product_id": item},
                }
            message: dict[str, Any] = {
                "type": "track",
                "userId": user,
                "event": "Order Completed",
                "timestamp": _iso(moment),
                "properties": {
                    "revenue": round(float(rng.gamma(4.0, 12.0)), 2),
                    "products": [{"product_id": item, "quantity": 1}],
                },
            }
            if k == 0 and consent[n] < 0.95:  # the checkout's consent banner
                message["context"] = {"consent": {"categoryPreferences": {"analytics": True}}}
            yield message
        # Activity after the first purchase until the customer stops (sooner if unhappy).
        stops = first[n] + rng.exponential(60 if unhappy[n] else 300)
        at = first[n] + rng.uniform(1, 20)
        if unhappy[n]:
            yield {
                "type": "track",
                "userId": user,
                "event": "Complaint Filed",
                "timestamp": _iso(start + timedelta(days=min(at, DAYS - 1))),
                "properties": {},
            }
        while at < min(stops, DAYS):
            yield {
                "type": "track",
                "userId": user,
                "event": "Trip Completed",
                "timestamp": _iso(start + timedelta(days=at)),
                "properties": {"km": 12.5},
            }
            at += rng.uniform(30, 90)


def load(data_dir: Path, people: int, seed: int, end: datetime) -> Touchpoints:
    """The data directory with the shop's events, loaded now if it is empty."""
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / "actions.yaml").write_text(ACTIONS)
    tp = Touchpoints(load_settings(data_dir, next_best_actions="actions.yaml"))
    if int(tp.warehouse.scalar("SELECT count(*) FROM events")):
        return tp
    started = time.perf_counter()
    batch: list[dict[str, Any]] = []
    stored = 0

    def store() -> int:
        judged = tp.judge({"batch": batch}, "import", source="bench", enforce_batch_limit=False)
        assert not judged.rejected, judged.rejected[:3]
        return tp.write_rows(judged.rows)

    for message in shop(people, seed, end):
        batch.append(message)
        if len(batch) == 10_000:
            stored += store()
            batch = []
    if batch:
        stored += store()
    print(
        f"loaded {people:,} people into {data_dir}: {stored:,} events in "
        f"{time.perf_counter() - started:.0f} s",
        flush=True,
    )
    return tp


# -- measuring -----------------------------------------------------------------------------------
def _reset_peak() -> None:
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        pass


def _peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def timed(label: str, step: Callable[[], T], rows: list[tuple[str, float, float]]) -> T:
    _reset_peak()
    started = time.perf_counter()
    found = step()
    seconds = time.perf_counter() - started
    rows.append((label, seconds, _peak_mb()))
    print(f"  {label}: {seconds:.1f} s, peak {_peak_mb():,.0f} MB", flush=True)
    return found


def churn_matrix(tp: Touchpoints, at: datetime, label: bool) -> Any:
    """The churn features (and labels) of everyone at ``at``, as the service builds them."""
    from touchpoints.predictions.churn_service import card_spec

    card = tp.churn.cards.latest_trained("churn")
    assert card is not None
    return tp.churn._frame(tp.churn.source(), card_spec(card), at, label=label)


# -- the runs ------------------------------------------------------------------------------------
def train(tp: Touchpoints, rows: list[tuple[str, float, float]]) -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from touchpoints.predictions import churn

    card = timed("lifetime value: train_ltv (BG/NBD + Gamma-Gamma)", tp.predictions.train_ltv, rows)
    metrics = card.metrics or {}
    print(f"    {metrics.get('customers'):,} customers, {metrics.get('repeat_buyers'):,} repeat")
    card = timed("churn risk: churn.train (features, trees, baseline, SHAP)", tp.churn.train, rows)
    metrics = card.metrics or {}
    print(
        f"    training {metrics['training']}, test {metrics['test']}; AUC trees "
        f"{metrics['model']['auc']:.3f}, baseline {metrics['baseline']['auc']:.3f}"
    )
    cutoff = datetime.fromisoformat(card.features["train_cutoff"])
    frame = timed("  churn features at the training cutoff (Ibis on DuckDB)",
                  lambda: churn_matrix(tp, cutoff, True), rows)  # fmt: skip
    trees = HistGradientBoostingClassifier(**churn.TREE_PARAMETERS, early_stopping=False)
    timed("  bare HistGradientBoostingClassifier.fit, same matrix",
          lambda: trees.fit(frame.x, frame.y), rows)  # fmt: skip
    baseline = make_pipeline(SimpleImputer(strategy="median"), StandardScaler(),
                             LogisticRegression(max_iter=2000))  # fmt: skip
    timed("  bare LogisticRegression.fit (imputed, scaled), same matrix",
          lambda: baseline.fit(frame.x, frame.y), rows)  # fmt: skip


def score(tp: Touchpoints, rows: list[tuple[str, float, float]]) -> None:
    from touchpoints.predictions.offers import OffersQuery

    ltv = timed("lifetime value: score", tp.predictions.score, rows)
    print(f"    {ltv.persons:,} persons scored")
    found = timed("churn risk: score (features, SHAP, reasons)", tp.churn.score, rows)
    print(f"    {found.persons:,} persons scored")
    frame = timed("  churn features now (Ibis on DuckDB)",
                  lambda: churn_matrix(tp, tp.churn.now(), False), rows)  # fmt: skip
    from touchpoints.predictions import churn

    card = tp.churn.cards.latest_trained("churn")
    assert card is not None
    stored = tp.churn.store.estimator(card.id)
    assert stored is not None
    fitted = churn.load(stored[2], card.features["estimator_sha256"])
    timed("  bare trees predict_proba, same matrix",
          lambda: fitted.trees.predict_proba(frame.x), rows)  # fmt: skip
    for method in ("co-occurrence", "factorisation"):
        offers = timed(f"next best products: score ({method})",
                       lambda m=method: tp.offers.score(OffersQuery(method=m)), rows)  # fmt: skip
        print(f"    {offers.persons:,} persons offered {offers.items:,} items")
    assert tp.figures.rules is not None
    actions = timed("next best actions: choose for everyone",
                    lambda: tp.figures.score_actions(tp.figures.rules), rows)  # fmt: skip
    print(f"    a rule holds for {actions.persons:,} persons")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--train-people", type=int, default=100_000)
    parser.add_argument("--score-people", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--only", choices=("train", "score"), default=None, help="One phase")
    args = parser.parse_args()
    base = args.data_dir or Path(tempfile.mkdtemp(prefix="tp-predictions-"))
    end = datetime.now(UTC).replace(tzinfo=None, hour=0, minute=0, second=0, microsecond=0)
    print(f"{os.cpu_count()} cores; data in {base}", flush=True)
    rows: list[tuple[str, float, float]] = []

    if args.only in (None, "train"):
        print(f"training shop: {args.train_people:,} people", flush=True)
        with load(base / "train", args.train_people, args.seed, end) as tp:
            timed("journey tables brought up to date (once, before training)",
                  lambda: tp.journeys.source(), rows)  # fmt: skip
            train(tp, rows)
    if args.only in (None, "score"):
        print(f"scoring shop: {args.score_people:,} people", flush=True)
        with load(base / "score", args.score_people, args.seed + 1, end) as tp:
            timed("journey tables brought up to date (once, before scoring)",
                  lambda: tp.journeys.source(), rows)  # fmt: skip
            if tp.predictions.store.latest_trained("ltv") is None:
                tp.predictions.train_ltv()
            if tp.churn.cards.latest_trained("churn") is None:
                tp.churn.train()
            score(tp, rows)

    print("\n| step | seconds | peak MB |\n| --- | ---: | ---: |")
    for label, seconds, peak in rows:
        print(f"| {label.strip()} | {seconds:.1f} | {peak:,.0f} |")


if __name__ == "__main__":
    sys.exit(main())
