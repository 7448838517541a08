"""Channel mix by age group: ages from the latest birthday (else age) trait as of a reference
date, configurable bands with precise errors, shares of people and of contacts per channel,
and DuckDB and Spark agree."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pytest
from test_identity_rebuild import send

from conftest import spark_source
from touchpoints.config import load_settings
from touchpoints.core import Touchpoints
from touchpoints.journeys.channel_mix import ChannelMixError, channel_mix, parse_bands
from touchpoints.journeys.model import load_model
from touchpoints.journeys.source import duckdb_source
from touchpoints.journeys.store import refresh

DEFAULT = load_model()  # the facts kept for the default model are what the API reads

AS_OF = date(2026, 6, 15)


def who(anon: str, n: int, traits: dict[str, Any]) -> dict[str, Any]:
    return {"type": "identify", "anonymousId": anon, "traits": traits,
            "timestamp": f"2026-03-01T0{n}:00:00Z", "messageId": f"{anon}-i{n}"}  # fmt: skip


def contact(anon: str, n: int, channel: str, kind: str = "track") -> dict[str, Any]:
    message = {"type": kind, "anonymousId": anon, "context": {"channel": channel},
               "timestamp": f"2026-03-02T{n:02d}:00:00Z", "messageId": f"{anon}-c{n}"}  # fmt: skip
    return message | ({"name": "Home"} if kind == "page" else {"event": "Contact"})


def people(tp: Touchpoints) -> None:
    send(
        tp,
        [
            # p1 turns 25 the day after AS_OF: 24, 18-24. Two web pages, one e-mail.
            who("p1", 1, {"birthday": "2001-06-16"}),
            contact("p1", 1, "web", "page"),
            contact("p1", 2, "web", "page"),
            contact("p1", 3, "email"),
            # p2 turns 25 on AS_OF: 25-34. The app.
            who("p2", 1, {"birthday": "2001-06-15T00:00:00"}),
            contact("p2", 1, "app"),
            # p3: an age trait only, the latest (70) counts: 65+. Phone and e-mail.
            who("p3", 1, {"age": 60}),
            who("p3", 2, {"age": "70"}),
            contact("p3", 1, "phone"),
            contact("p3", 2, "email"),
            # p4: a birthday wins over an age (36, not 50): 35-44. The web.
            who("p4", 1, {"age": 50, "birthday": "1990-01-01"}),
            contact("p4", 1, "web", "page"),
            # Unknown: p5 has no traits, p6 is 12 (outside every band), p7 only an identify.
            contact("p5", 1, "web", "page"),
            who("p6", 1, {"age": 12}),
            contact("p6", 1, "email"),
            contact("p6", 2, "email"),
            contact("p6", 3, "email"),
            who("p7", 1, {"birthday": "soon"}),
        ],
    )
    refresh(tp.warehouse, DEFAULT)


def test_people_and_contacts_per_channel_by_age_band(tmp_path: Path) -> None:
    with Touchpoints(load_settings(tmp_path / "data")) as tp:
        people(tp)
        mix = channel_mix(duckdb_source(tp.warehouse, DEFAULT), as_of=AS_OF)
    assert mix.as_of.isoformat() == "2026-06-15"
    assert mix.bands == ["18-24", "25-34", "35-44", "45-54", "55-64", "65+", "unknown"]
    assert mix.channels == ["email", "web", "mobile_app", "phone"]  # by people reached
    assert mix.people == {"18-24": 1, "25-34": 1, "35-44": 1, "45-54": 0, "55-64": 0,
                          "65+": 1, "unknown": 2}  # fmt: skip
    assert mix.contacts["unknown"] == 4 and mix.contacts["18-24"] == 3
    #                              email      web     app  phone
    assert mix.matrix("people_share") == [
        [1.0, 1.0, 0.0, 0.0],  # 18-24
        [0.0, 0.0, 1.0, 0.0],  # 25-34
        [0.0, 1.0, 0.0, 0.0],  # 35-44
        [0.0, 0.0, 0.0, 0.0],  # 45-54
        [0.0, 0.0, 0.0, 0.0],  # 55-64
        [1.0, 0.0, 0.0, 1.0],  # 65+
        [0.5, 0.5, 0.0, 0.0],  # unknown: p5 (web) and p6 (e-mail)
    ]
    assert mix.matrix("contact_share") == [
        [pytest.approx(1 / 3), pytest.approx(2 / 3), 0.0, 0.0],
        [0.0, 0.0, 1.0, 0.0],
        [0.0, 1.0, 0.0, 0.0],
        [0.0, 0.0, 0.0, 0.0],
        [0.0, 0.0, 0.0, 0.0],
        [0.5, 0.0, 0.0, 0.5],
        [0.75, 0.25, 0.0, 0.0],
    ]
    assert mix.model_dump()["people_share"][6] == [0.5, 0.5, 0.0, 0.0]


def test_bands_are_configurable_and_the_reference_date_moves_ages(tmp_path: Path) -> None:
    with Touchpoints(load_settings(tmp_path / "data")) as tp:
        people(tp)
        source = duckdb_source(tp.warehouse, DEFAULT)
        mix = channel_mix(source, bands=["0-17", "18-24", "25-64", "65+"], as_of=AS_OF)
        later = channel_mix(source, bands=["0-17", "18-24", "25-64", "65+"],
                            as_of=date(2026, 6, 16))  # fmt: skip
    assert mix.people == {"0-17": 1, "18-24": 1, "25-64": 2, "65+": 1, "unknown": 1}
    assert later.people == {"0-17": 1, "18-24": 0, "25-64": 3, "65+": 1, "unknown": 1}


@pytest.mark.parametrize(
    ("bands", "message"),
    [
        ([], "bands: give at least one band"),
        (["18-24", "teens"], "bands[1]: 'teens' is not a band; write 'lo-hi'"),
        (["30-20"], "bands[0]: '30-20' ends before it starts"),
        (["65+", "70-80"], "bands[0]: '65+' has no upper end; only the last may"),
        (["18-30", "25-34"], "bands[1]: '25-34' overlaps or comes before '18-30'"),
    ],
)
def test_bad_bands_are_refused_with_the_place_and_the_reason(
    bands: list[str], message: str
) -> None:
    with pytest.raises(ChannelMixError) as caught:
        parse_bands(bands)
    assert message in str(caught.value)


@pytest.mark.spark
def test_duckdb_and_spark_give_the_same_channel_mix(tmp_path: Path, spark: object) -> None:
    with Touchpoints(load_settings(tmp_path / "data")) as tp:
        people(tp)
        on_duckdb = channel_mix(duckdb_source(tp.warehouse, DEFAULT), as_of=AS_OF).model_dump()
        on_spark = channel_mix(spark_source(spark, tp), as_of=AS_OF).model_dump()  # type: ignore[arg-type]
    assert on_spark == on_duckdb
    assert on_duckdb["people"]["unknown"] == 2
