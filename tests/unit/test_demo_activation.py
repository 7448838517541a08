"""The demo's audiences and placement (demo/activation.py): made through the API with an
admin key, the placement the one docs/personalisation.md shows, kept as they are when the
demo runs again on the same data directory (a user may have changed them)."""

from __future__ import annotations

import re
from pathlib import Path

import yaml
from starlette.testclient import TestClient

from touchpoints.api.app import create_app
from touchpoints.config import load_settings
from touchpoints.core import Touchpoints
from touchpoints.demo import activation

DOCS = Path(__file__).parents[2] / "docs"


def test_the_demos_placement_is_the_one_the_docs_show() -> None:
    text = (DOCS / "personalisation.md").read_text()
    blocks = [yaml.safe_load(b) for b in re.findall(r"```yaml\n(.*?)```", text, re.S)]
    shown = next(b for b in blocks if isinstance(b, dict) and "rules" in b)
    assert activation.HOME_HERO == shown


def test_set_up_makes_them_once_through_the_api_and_keeps_a_users_change(tmp_path: Path) -> None:
    with Touchpoints.open(load_settings(tmp_path / "data")) as tp:
        admin = tp.keys.add_ephemeral("admin", "demo-setup")
        app = create_app(tp)
        headers = {"Authorization": f"Bearer {admin}"}
        with TestClient(app, headers=headers) as client:
            assert activation.set_up(client) == [
                "configurators",
                "recent_configurators",
                "home_hero",
            ]
            rules = tp.placements.get("home_hero").rules
            # (as stored: the conditions normalised, e.g. journey_stage's current: false)
            assert [(r["key"], r["content"]) for r in rules] == [
                (r["key"], r["content"]) for r in activation.HOME_HERO["rules"]
            ]
            assert rules[0]["condition"] == {"audience": "configurators"}
            audience = tp.audiences.get("configurators")
            assert audience.condition == activation.CONFIGURATORS["condition"]
            # A user changes the audience; the demo run again leaves it so.
            changed = {"name": "Saved twice", "condition": {"event": "Configuration Saved",
                                                             "at_least": 2}}  # fmt: skip
            tp.audiences.change("configurators", changed)
            assert activation.set_up(client) == []
            assert tp.audiences.get("configurators").name == "Saved twice"
            # Every change was made by the key, and audited as such.
            made = tp.audit.page(actor="demo-setup")
            assert made.count == 3, made
        # A key that may not change definitions gets its refusal, not a silent skip.
        reader = tp.keys.add_ephemeral("read", "reader")
        with TestClient(app, headers={"Authorization": f"Bearer {reader}"}) as client:
            try:
                activation.set_up(client)
            except RuntimeError as exc:
                assert "403" in str(exc)
            else:
                raise AssertionError("a read key made audiences")
