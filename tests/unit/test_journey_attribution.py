"""Attribution of conversions to channels and campaigns: the five rule-based models and the
Markov removal effect on a hand-computed case, the lookback window and the previous
conversion bound the touchpoints, the exact Markov solution agrees with the ChannelAttribution
package on realistic demo journeys, and DuckDB and Spark agree."""

from __future__ import annotations

import contextlib
import io
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from test_identity_rebuild import send

from conftest import spark_source
from touchpoints.config import load_settings
from touchpoints.core import Touchpoints
from touchpoints.journeys.attribution import (
    Attribution,
    AttributionError,
    attribute,
    attribution_paths,
    markov_transitions,
    removal_effects,
)
from touchpoints.journeys.model import load_model
from touchpoints.journeys.source import duckdb_source
from touchpoints.journeys.store import refresh

DEFAULT = load_model()  # the facts kept for the default model are what the API reads


def ev(kind: str, anon: str, when: str, message_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": kind,
        "anonymousId": anon,
        "timestamp": f"2026-{when}Z",
        "messageId": message_id,
    } | extra


def on(channel: str, campaign: str | None = None) -> dict[str, Any]:
    context: dict[str, Any] = {"channel": channel}
    if campaign:
        context["campaign"] = {"name": campaign, "medium": "social"}
    return context


def order(anon: str, when: str, message_id: str, revenue: float | None) -> dict[str, Any]:
    properties = {} if revenue is None else {"revenue": revenue}
    return ev("track", anon, when, message_id, event="Order Completed",
              context=on("store"), properties=properties)  # fmt: skip


def journeys(tp: Touchpoints) -> None:
    """Four converting paths, one conversion without touches, two null paths.

    p1: social (campaign launch) 03-01, email 03-02 twice, web 03-04 → order 03-05 (100);
        email 03-06 → order 03-08 (50); web 03-09 (a null path).
    p2: web 03-01 → order 03-03 (no revenue).
    p3: an order 03-01 with no touch before it (30).
    p4: social (campaign launch) 03-01, web 03-02: a null path.
    p5: email 02-01 (37 days before), web 03-09 → order 03-10 (200).
    """
    send(
        tp,
        [
            ev(
                "track",
                "p1",
                "03-01T10:00:00",
                "p1a",
                event="Ad Clicked",
                context=on("social", "launch"),
            ),  # fmt: skip
            ev("track", "p1", "03-02T10:00:00", "p1b", event="Email Opened", context=on("email")),
            ev("track", "p1", "03-02T10:00:00", "p1c", event="Email Opened", context=on("email")),
            ev("page", "p1", "03-04T10:00:00", "p1d", name="Home", context=on("web")),
            order("p1", "03-05T10:00:00", "p1e", 100),
            ev("track", "p1", "03-06T10:00:00", "p1f", event="Email Opened", context=on("email")),
            order("p1", "03-08T10:00:00", "p1g", 50),
            ev("page", "p1", "03-09T10:00:00", "p1h", name="Home", context=on("web")),
            ev("identify", "p1", "03-09T11:00:00", "p1i", userId="u1"),  # not a touch
            ev("page", "p2", "03-01T10:00:00", "p2a", name="Home", context=on("web")),
            order("p2", "03-03T10:00:00", "p2b", None),
            order("p3", "03-01T00:00:00", "p3a", 30),
            ev(
                "track",
                "p4",
                "03-01T10:00:00",
                "p4a",
                event="Ad Clicked",
                context=on("social", "launch"),
            ),  # fmt: skip
            ev("page", "p4", "03-02T10:00:00", "p4b", name="Home", context=on("web")),
            ev("track", "p5", "02-01T10:00:00", "p5a", event="Email Opened", context=on("email")),
            ev("page", "p5", "03-09T10:00:00", "p5b", name="Home", context=on("web")),
            order("p5", "03-10T10:00:00", "p5c", 200),
        ],
    )


def credits(result: Attribution, measure: str = "conversions") -> dict[str, dict[str, float]]:
    return {c.key: {m: round(v, 6) for m, v in getattr(c, measure).items()} for c in result.credits}


def approx(values: dict[str, float]) -> dict[str, Any]:
    return {k: pytest.approx(v, abs=1e-9) for k, v in values.items()}


def test_every_model_shares_out_conversions_and_value_as_computed_by_hand(
    tmp_path: Path,
) -> None:
    with Touchpoints(load_settings(tmp_path / "data")) as tp:
        journeys(tp)
        refresh(tp.warehouse, DEFAULT)
        result = attribute(duckdb_source(tp.warehouse, DEFAULT), half_life_days=1)
    assert (result.conversions, result.value) == (5, 380.0)
    assert (result.unattributed_conversions, result.unattributed_value) == (1, 30.0)
    assert (result.converting_paths, result.null_paths) == (4, 2)
    touches = {c.key: c.touchpoints for c in result.credits}
    assert touches == {"social": 1, "email": 3, "web": 3}
    by_model = {
        model: {c.key: c.conversions[model] for c in result.credits}
        for model in result.credits[0].conversions
    }
    assert by_model["first_touch"] == approx({"social": 1, "email": 1, "web": 2})
    assert by_model["last_touch"] == approx({"social": 0, "email": 1, "web": 3})
    assert by_model["linear"] == approx({"social": 0.25, "email": 1.5, "web": 2.25})
    assert by_model["position_based"] == approx({"social": 0.4, "email": 1.2, "web": 2.4})
    # Half-life one day: ages 4, 3, 3 and 1 days weigh 1/16, 1/8, 1/8, 1/2 (sum 13/16).
    assert by_model["time_decay"] == approx(
        {"social": 1 / 13, "email": 4 / 13 + 1, "web": 8 / 13 + 2}
    )
    # Markov over social>email>web (conv), email (conv), web (conv) twice, web and
    # social>web (null): P(conv) = 2/3; without social 13/30, without email 12/30, without
    # web 1/6: removal effects 7/20, 8/20, 15/20, shares 7/30, 8/30, 15/30 of 4 conversions.
    effects = {c.key: c.removal_effect for c in result.credits}
    assert effects == approx({"social": 7 / 20, "email": 8 / 20, "web": 15 / 20})
    assert by_model["markov"] == approx({"social": 28 / 30, "email": 32 / 30, "web": 2})
    assert [c.key for c in result.credits] == ["web", "email", "social"]
    values = {m: {c.key: c.value[m] for c in result.credits} for m in ("linear", "markov")}
    assert values["linear"] == approx({"social": 25, "email": 100, "web": 225})
    assert values["markov"] == approx({"social": 350 * 7 / 30, "email": 350 * 8 / 30, "web": 175})
    for model, shares in by_model.items():
        assert sum(shares.values()) == pytest.approx(4), model


def test_the_lookback_window_and_the_previous_conversion_bound_the_touchpoints(
    tmp_path: Path,
) -> None:
    with Touchpoints(load_settings(tmp_path / "data")) as tp:
        journeys(tp)
        refresh(tp.warehouse, DEFAULT)
        source = duckdb_source(tp.warehouse, DEFAULT)
        rows = attribution_paths(source).to_pyarrow().to_pylist()
        short = attribute(source, lookback_days=1.5)
    p5 = sorted((r["key"], r["converted"]) for r in rows if r["value"] == 200)
    assert p5 == [("web", 1)]  # the e-mail 37 days before is out of the window
    second = sorted(r["key"] for r in rows if r["value"] == 50)
    assert second == ["email"]  # only what came after the first order
    # 1.5 days: p1's first order keeps only the web visit, the second (e-mail 2 days
    # before) and p2's order (web 2 days before) lose theirs; p4's null path is kept whole.
    assert (short.converting_paths, short.unattributed_conversions) == (2, 3)
    assert {c.key: c.conversions["last_touch"] for c in short.credits} == {
        "web": 2.0,
        "social": 0.0,
    }
    assert short.null_paths == 2


def test_campaign_attribution_counts_only_campaign_touches(tmp_path: Path) -> None:
    with Touchpoints(load_settings(tmp_path / "data")) as tp:
        journeys(tp)
        refresh(tp.warehouse, DEFAULT)
        result = attribute(duckdb_source(tp.warehouse, DEFAULT), by="campaign")
    assert (result.converting_paths, result.unattributed_conversions) == (1, 4)
    assert result.null_paths == 1
    assert credits(result) == {
        "launch": {m: 1.0 for m in result.credits[0].conversions},
    }
    assert result.credits[0].value["markov"] == pytest.approx(100)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"by": "medium"}, "by: 'medium' is not a key to attribute to"),
        ({"lookback_days": 0}, "lookback_days: 0 must be more than 0"),
        ({"half_life_days": -1}, "half_life_days: -1 must be more than 0"),
    ],
)
def test_impossible_parameters_are_refused(tmp_path: Path, kwargs: Any, message: str) -> None:
    with Touchpoints(load_settings(tmp_path / "data")) as tp:
        with pytest.raises(AttributionError, match=message):
            attribute(duckdb_source(tp.warehouse, DEFAULT), **kwargs)


# -- the Markov model against ChannelAttribution --------------------------------------------
def demo(tp: Touchpoints, tmp_path: Path, people: int = 300) -> None:
    sys.path.insert(0, str(Path(__file__).parents[2] / "benchmarks"))
    from identity import load

    load(tp, people, 7, tmp_path / "files")
    refresh(tp.warehouse, DEFAULT)


def path_patterns(source: Any, by: str) -> pd.DataFrame:
    """(path, conversions, nulls): the collapsed paths as ChannelAttribution reads them."""
    frame = attribution_paths(source, by=by).to_pandas()
    frame = frame.sort_values(["person", "path", "ts", "seq"])
    counts: dict[str, list[int]] = {}
    for _key, path in frame.groupby(["person", "path"]):
        keys = [k for i, k in enumerate(path.key) if i == 0 or k != path.key.iloc[i - 1]]
        counts.setdefault(">".join(keys), [0, 0])[0 if path.converted.iloc[0] else 1] += 1
    return pd.DataFrame(
        [(p, c, n) for p, (c, n) in counts.items()], columns=["path", "conversions", "nulls"]
    )


@pytest.mark.slow
def test_the_exact_removal_effect_agrees_with_channel_attribution(tmp_path: Path) -> None:
    with contextlib.redirect_stdout(io.StringIO()):
        import ChannelAttribution  # prints a banner on import

    with Touchpoints(load_settings(tmp_path / "data")) as tp:
        demo(tp, tmp_path)
        source = duckdb_source(tp.warehouse, DEFAULT)
        ours = attribute(source)
        transitions = markov_transitions(attribution_paths(source)).to_pandas()
        patterns = path_patterns(source, "channel")
        # The null paths' moves kept with the facts give the answers counting them gives.
        assert source.derived_for is not None
        computing = duckdb_source(tp.warehouse)
        assert computing.derived_for is None
        for by in ("channel", "campaign"):
            kept, computed = attribute(source, by=by), attribute(computing, by=by)
            assert kept.null_paths > 0
            # Floats summed in parallel differ in their last bits from run to run.
            for measure in ("conversions", "value"):
                assert credits(kept, measure) == credits(computed, measure)
            assert [c.removal_effect for c in kept.credits] == pytest.approx(
                [c.removal_effect for c in computed.credits], abs=1e-12
            )
            assert kept.model_dump(exclude={"credits"}) == pytest.approx(
                computed.model_dump(exclude={"credits"})
            )
    assert ours.converting_paths == patterns.conversions.sum() > 30
    assert ours.null_paths == patterns.nulls.sum() > 100
    # attribute() counts the null paths' moves without keeping their touches: the same
    # chain as the one of every path in one table.
    _base, effects_of_all = removal_effects(transitions.to_dict("records"))
    assert {c.key: c.removal_effect for c in ours.credits} == pytest.approx(effects_of_all)
    with contextlib.redirect_stdout(io.StringIO()):
        # Simulated, but deterministic: a fixed seed, one thread; max_step far beyond the
        # longest path so that no simulated journey is cut short (it would count as null).
        theirs = ChannelAttribution.markov_model(
            patterns,
            "path",
            "conversions",
            var_null="nulls",
            order=1,
            nsim_start=4e6,
            max_step=1000,
            conv_par=0.01,
            seed=7,
            ncore=1,
            out_more=True,
            verbose=False,
            flg_pro=False,
        )
    # The transition matrix is estimated, not simulated: it must match ours exactly.
    matrix = theirs["transition_matrix"]
    names = dict(zip(theirs["result"].index + 1, theirs["result"].channel_name, strict=True))
    their_probs = {
        (names.get(int(f), f) if str(f).isdigit() else f,
         names.get(int(t), t) if str(t).isdigit() else t): p
        for f, t, p in matrix.itertuples(index=False)
    }  # fmt: skip
    totals = transitions.groupby("from_state")["count"].sum()
    our_probs = {(f, t): n / totals[f] for f, t, n in transitions.itertuples(index=False)}
    assert their_probs == pytest.approx(our_probs, abs=1e-6)
    # Removal effects and conversions: simulation error only.
    effects = theirs["removal_effects"].set_index("channel_name")["removal_effect"]
    conversions = theirs["result"].set_index("channel_name")["total_conversions"]
    assert sorted(effects.index) == sorted(c.key for c in ours.credits)
    for credit in ours.credits:
        assert credit.removal_effect == pytest.approx(effects[credit.key], abs=0.003), credit.key
        assert credit.conversions["markov"] == pytest.approx(
            conversions[credit.key], abs=0.003 * ours.converting_paths
        ), credit.key
    assert conversions.sum() == pytest.approx(ours.converting_paths)


@pytest.mark.spark
def test_duckdb_and_spark_give_the_same_attribution(tmp_path: Path, spark: object) -> None:
    with Touchpoints(load_settings(tmp_path / "data")) as tp:
        journeys(tp)
        refresh(tp.warehouse, DEFAULT)
        on_duckdb = attribute(duckdb_source(tp.warehouse, DEFAULT), half_life_days=1)
        on_spark = attribute(spark_source(spark, tp), half_life_days=1)  # type: ignore[arg-type]
        by_campaign = attribute(spark_source(spark, tp), by="campaign")  # type: ignore[arg-type]
    assert credits(on_spark) == credits(on_duckdb)
    assert credits(on_spark, "value") == credits(on_duckdb, "value")
    assert on_spark.model_dump() | {"credits": None} == on_duckdb.model_dump() | {"credits": None}
    assert on_duckdb.converting_paths == 4
    assert credits(by_campaign)["launch"]["markov"] == 1.0
