"""Access and portability: one archive with everything about the person, found through any of
their identifiers, machine-readable (JSON, and CSV where tabular), with a README."""

from __future__ import annotations

import csv
import io
import zipfile
from pathlib import Path

import orjson
import pytest
from test_privacy_erasure import ANNA, BEN, send

from touchpoints.config import load_settings
from touchpoints.core import Touchpoints
from touchpoints.errors import NotFound
from touchpoints.warehouse.personal import PERSONAL


@pytest.fixture
def tp(tmp_path: Path):
    with Touchpoints.open(load_settings(tmp_path / "data")) as core:
        send(core, ANNA + BEN)
        yield core


def test_the_archive_holds_every_row_about_the_person_and_nobody_else(tp: Touchpoints) -> None:
    request, archive = tp.privacy.export("anonymous_id:phone-anna", by="dpo")
    files = zipfile.ZipFile(io.BytesIO(archive))
    names = set(files.namelist())
    assert {"README.md", "profile.json", "consent.json", "journey_stages.json"} <= names

    events = orjson.loads(files.read("tables/events.json"))
    assert sorted(e["message_id"] for e in events) == ["a1", "a2", "a3", "a4"]  # not Ben's
    rows = list(csv.DictReader(io.StringIO(files.read("tables/events.csv").decode())))
    assert sorted(r["message_id"] for r in rows) == ["a1", "a2", "a3", "a4"]
    identifiers = {
        (i["type"], i["value"]) for i in orjson.loads(files.read("tables/identifiers.json"))
    }
    assert identifiers == {
        ("user_id", "u-anna"),
        ("email", "anna.canary@example.com"),
        ("phone", "+491715550199"),
        ("anonymous_id", "laptop-anna"),
        ("anonymous_id", "phone-anna"),
    }
    profile = orjson.loads(files.read("profile.json"))
    assert profile["traits"]["city"]["value"] == "Kanarienhausen"
    assert profile["traits"]["city"]["source"] == "erasure-test"  # with its provenance
    consent = orjson.loads(files.read("consent.json"))
    assert consent["consent"]["analytics"]["granted"] is True
    stages = orjson.loads(files.read("journey_stages.json"))
    assert "purchase" in [s["stage"] for s in stages["stages"]]
    readme = files.read("README.md").decode()
    for table in PERSONAL:  # every table is named, with its count
        assert f"| `{table.name}` |" in readme
    assert "| `events` | 4 |" in readme
    assert b"ben@example.de" not in archive and b"u-ben" not in b"".join(
        files.read(name) for name in names
    )
    assert (request.kind, request.status, request.requested_by) == ("export", "done", "dpo")
    assert request.outcome is not None and request.outcome["rows"]["events"] == 4


def test_an_export_of_nobody_is_refused_and_recorded(tp: Touchpoints) -> None:
    with pytest.raises(NotFound):
        tp.privacy.export("email:nobody@example.de")
    (request,) = tp.privacy.request_list().requests
    assert (request.kind, request.status) == ("export", "refused")
