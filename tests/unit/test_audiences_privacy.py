"""A person's computed traits, audience memberships and their history are theirs: in their
export, gone with their erasure (and not made again by the next evaluation); the messages
about them to an audience's destination leave the outbox with them."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any

import orjson

from touchpoints.config import load_settings
from touchpoints.core import Touchpoints


def _send(tp: Touchpoints, messages: list[dict[str, Any]]) -> None:
    outcome = tp.judge({"batch": messages}, "batch", source="privacy-test")
    assert not outcome.rejected, outcome.rejected
    tp.write_rows(outcome.rows)


def _rows(tp: Touchpoints, table: str, person: int) -> int:
    return int(tp.warehouse.scalar(f"SELECT count(*) FROM {table} WHERE person = ?", [person]))


def test_export_holds_and_erasure_removes_traits_memberships_and_their_messages(
    tmp_path: Path,
) -> None:
    with Touchpoints.open(load_settings(tmp_path / "data")) as tp:
        tp.traits.create({"key": "views", "name": "Views", "kind": "count", "event": "Viewed"})
        tp.audiences.create({"key": "viewers", "name": "Viewers", "condition": {"event": "Viewed"}})
        tp.audiences.create({"key": "gone", "name": "Gone", "condition": {"not": {"event": "X"}}})
        _send(
            tp,
            [
                {"type": "track", "userId": f"u{n}", "event": "Viewed", "messageId": f"m{n}",
                 "timestamp": "2026-05-01T10:00:00Z"}
                for n in (1, 2)
            ],
        )  # fmt: skip
        hook = tp.destinations.create("webhook", "crm", {"url": "https://example.com/h"}, [])
        tp.audiences.link("viewers", hook.destination.id)
        anna = tp.profiles.resolve("user_id:u1")
        assert _rows(tp, "computed_trait_values", anna) == 1
        assert _rows(tp, "audience_members", anna) == 2
        assert _rows(tp, "outbox", anna) == 1

        _request, archive = tp.privacy.export("user_id:u1")
        files = zipfile.ZipFile(io.BytesIO(archive))
        values = orjson.loads(files.read("tables/computed_trait_values.json"))
        assert [(row["person"], row["value"]) for row in values] == [(anna, "1")]
        members = orjson.loads(files.read("tables/audience_members.json"))
        assert len(members) == 2
        changes = orjson.loads(files.read("tables/audience_changes.json"))
        assert {row["change"] for row in changes} == {"entered"}
        readme = files.read("README.md").decode()
        assert "audience_members" in readme and "computed_trait_values" in readme

        tp.privacy.erase("user_id:u1")
        for table in ("computed_trait_values", "audience_members", "audience_changes", "outbox"):
            assert _rows(tp, table, anna) == 0, table
        tp.evaluation.catch_up()
        tp.evaluation.evaluate_all()
        for table in ("computed_trait_values", "audience_members", "audience_changes"):
            assert _rows(tp, table, anna) == 0, table
        assert tp.audiences.get("viewers").size == 1  # the other viewer stays
        assert tp.traits.get("views").persons == 1
