"""Predictions through their faces, in process against a real DuckDB file: ``touchpoints
predict train|score|evaluate|models`` (Typer's runner; without a server the command drives
the API's app), the routes' permissions, audit lines and refusals (409 before a model is
trained, saying what to run; 422 naming the field), the aggregate figures, and consent:
a person who denied the category of the purpose ``predictions`` is never scored."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from conftest import cli
from shop import DENIED, END, NEVER_CHOSE, START, shop
from touchpoints.api.app import create_app
from touchpoints.cli.client import in_process_client
from touchpoints.config import load_settings
from touchpoints.core import Touchpoints


def run(*args: str, data_dir: Path) -> subprocess.CompletedProcess[str]:
    from touchpoints.cli import app

    result = CliRunner().invoke(
        app,
        list(args),
        env={"TOUCHPOINTS_DATA_DIR": str(data_dir), "COLUMNS": "200"},
        catch_exceptions=False,
    )
    return subprocess.CompletedProcess(list(args), result.exit_code, result.stdout, result.stderr)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shop's events up to now, trained and scored through the CLI once."""
    path = tmp_path_factory.mktemp("predict") / "data"
    assert cli("init", data_dir=path).returncode == 0
    today = datetime.now(UTC).replace(tzinfo=None, hour=0, minute=0, second=0, microsecond=0)
    with Touchpoints(load_settings(path)) as tp:
        messages = shop(today - (END - START))
        for first in range(0, len(messages), 2000):
            outcome = tp.judge({"batch": messages[first : first + 2000]}, "import", source="t")
            assert not outcome.rejected
            tp.write_rows(outcome.rows)
    return path


def test_before_training_the_cli_says_what_to_run(tmp_path: Path) -> None:
    path = tmp_path / "data"
    assert cli("init", data_dir=path).returncode == 0
    listed = run("predict", "models", data_dir=path)
    assert listed.returncode == 0, listed.stderr
    scored = run("predict", "score", data_dir=path)
    assert scored.returncode == 1
    assert "touchpoints predict train ltv" in scored.stderr
    assert "touchpoints predict train churn" in scored.stderr
    trained = run("predict", "train", "ltv", data_dir=path)
    assert trained.returncode == 1
    assert "conversion_event: no 'Order Completed' events" in trained.stderr


@pytest.fixture(scope="module")
def trained(data_dir: Path) -> Path:
    done = run("predict", "train", data_dir=data_dir)
    assert done.returncode == 0, done.stderr
    assert "ltv model 1 trained:" in done.stdout and "churn model 2 trained: AUC" in done.stdout
    scored = run("predict", "score", data_dir=data_dir)
    assert scored.returncode == 0, scored.stderr
    assert "lifetime value: " in scored.stdout and "churn risk: " in scored.stdout
    # Evaluated here, not in a test: the page and the API's tests read the holdout too, and
    # pytest-xdist runs tests of a module in any order.
    today = datetime.now(UTC).date()
    calibration_end = (today - timedelta(days=120)).isoformat()
    evaluated = run("predict", "evaluate", calibration_end, today.isoformat(), data_dir=data_dir)
    assert evaluated.returncode == 0, evaluated.stderr
    assert "purchases in the holdout:" in evaluated.stdout
    return data_dir


def test_the_cli_trains_scores_evaluates_and_lists_the_cards(trained: Path) -> None:
    today = datetime.now(UTC).date()
    calibration_end = (today - timedelta(days=120)).isoformat()
    listed = run("predict", "models", data_dir=trained)
    assert listed.returncode == 0
    rows = [line.split("│")[1:3] for line in listed.stdout.splitlines() if "│" in line]
    kinds = [(number.strip(), kind.strip()) for number, kind in rows if number.strip()]
    assert kinds[:3] == [("3", "ltv_holdout"), ("2", "churn"), ("1", "ltv")]
    bad = run("predict", "evaluate", today.isoformat(), calibration_end, data_dir=trained)
    assert bad.returncode == 1 and "holdout_end: give a day after calibration_end" in bad.stderr


@pytest.fixture
def tp(trained: Path) -> Iterator[Touchpoints]:
    with Touchpoints(load_settings(trained)) as core:
        yield core


def test_aggregates_need_analytics_and_name_no_person(tp: Touchpoints) -> None:
    app = create_app(tp)
    _, write = tp.keys.create("write", "w")
    _, read = tp.keys.create("read", "r")
    with in_process_client(app, write) as client:
        refused = client.get("/v1/predictions")
        assert refused.status_code == 403 and "'analytics'" in refused.json()["detail"]
    with in_process_client(app, read) as client:
        found = client.get("/v1/predictions")
    assert found.status_code == 200
    body = found.json()
    assert body["ltv_model"]["kind"] == "ltv" and body["churn_model"]["kind"] == "churn"
    assert body["ltv_persons"] > 100 and body["churn_persons"] > 100
    clv = body["clv"]
    assert clv["persons"] == sum(b["persons"] for b in clv["buckets"])
    assert clv["total"] == pytest.approx(sum(b["value"] for b in clv["buckets"]))
    assert 0.1 <= clv["top_decile_share"] <= 1
    assert sum(g["persons"] for g in body["churn_by_stage"]) == body["churn_persons"]
    assert sum(g["persons"] for g in body["churn_by_channel"]) == body["churn_persons"]
    assert [d["decile"] for d in body["lift"]] == list(range(1, 11))
    assert body["lift"][0]["lift"] > 1 > body["lift"][-1]["lift"]
    assert body["calibration"] and body["feature_importance"]
    points = [f["points"] for f in body["feature_importance"]]
    assert points == sorted(points, reverse=True) and all(
        f["label"] for f in body["feature_importance"]
    )
    assert body["holdout"] and body["holdout_model"]["kind"] == "ltv_holdout"
    assert "person" not in str(body).replace("persons", "")


def test_a_persons_predictions_need_profiles_and_are_audited(tp: Touchpoints) -> None:
    app = create_app(tp)
    _, read = tp.keys.create("read", "r")
    with in_process_client(app, read) as client:
        top = client.get("/v1/predictions/top-customers", params={"limit": 3})
        assert top.status_code == 200
        first = top.json()["customers"][0]
        found = client.get(f"/v1/predictions/persons/person:{first['person']}")
        assert found.status_code == 200
        missing = client.get("/v1/predictions/persons/user_id:nobody")
        assert missing.status_code == 404
        bad = client.get("/v1/predictions/top-customers", params={"limit": 0})
        assert bad.status_code == 422 and "limit" in str(bad.json()["detail"])
        refused = client.post("/v1/predictions/score")
        assert refused.status_code == 403 and "'admin'" in refused.json()["detail"]
    body = found.json()
    assert body["ltv"]["predicted_clv_12m"] == pytest.approx(first["predicted_clv_12m"])
    assert body["ltv_missing"] is None
    lines = tp.warehouse.fetchall(
        "SELECT action, target FROM audit_log WHERE action = 'profile.predictions'"
    )
    assert ("profile.predictions", f"person:{first['person']}") in lines
    assert len(lines) == 4  # three top customers, one person


def test_training_and_scoring_need_admin_and_are_audited(tp: Touchpoints) -> None:
    app = create_app(tp)
    _, admin = tp.keys.create("admin", "a")
    with in_process_client(app, admin) as client:
        scored = client.post("/v1/predictions/score")
        assert scored.status_code == 200, scored.text
        assert scored.json()["ltv"]["persons"] > 100
        wrong = client.post("/v1/predictions/ltv/train", json={"conversion_event": "Nothing"})
        assert wrong.status_code == 422
        assert wrong.json()["detail"].startswith("conversion_event: no 'Nothing' events")
        unread = client.post("/v1/predictions/churn/train", json={"window_days": 3})
        assert unread.status_code == 422 and "window_days" in str(unread.json()["detail"])
    actions = [a for (a,) in tp.warehouse.fetchall("SELECT action FROM audit_log")]
    assert "predictions.score" in actions


def test_a_person_who_denied_the_consent_is_not_scored(tp: Touchpoints) -> None:
    assert tp.profiles.allows(f"user_id:{DENIED}", "predictions") is False
    person = tp.profiles.resolve(f"user_id:{DENIED}")
    found = tp.figures.person(f"user_id:{DENIED}")
    assert found.ltv is None and found.churn is None
    assert tp.predictions.store.prediction(person) is None
    assert tp.churn.store.score(person) is None
    # Anyone who granted it and bought as often is scored.
    assert tp.profiles.allows("user_id:c00003", "predictions") is True
    other = tp.figures.person("user_id:c00003")
    assert other.ltv is not None and other.churn is not None


def test_a_person_who_never_chose_gets_only_the_defaults_and_is_not_scored(
    tp: Touchpoints,
) -> None:
    """No choice recorded: only consent_defaults hold (necessary), as Profiles.allows says;
    predictions need analytics, so the person is not scored."""
    key = f"user_id:{NEVER_CHOSE}"
    assert tp.profiles.allows(key, "predictions") is False
    assert tp.profiles.consent_history(key).consent["analytics"].chosen is False
    person = tp.profiles.resolve(key)
    found = tp.figures.person(key)
    assert found.ltv is None and found.churn is None
    assert tp.predictions.store.prediction(person) is None
    assert tp.churn.store.score(person) is None
    assert "predicted" not in tp.profiles.get(person).model_dump(exclude_defaults=True)


def test_a_default_that_grants_the_category_scores_who_never_chose(trained: Path) -> None:
    """An operator whose legal basis allows it grants analytics by default: then a person who
    never chose is scored, and one who denied still is not."""
    granted = {"necessary": True, "analytics": True}
    with Touchpoints(load_settings(trained, consent_defaults=granted)) as core:
        assert core.profiles.allows(f"user_id:{NEVER_CHOSE}", "predictions") is True
        allowed = core._predictions_allowed()
        never = core.profiles.resolve(f"user_id:{NEVER_CHOSE}")
        denied = core.profiles.resolve(f"user_id:{DENIED}")
        assert never in allowed and denied not in allowed


def test_a_server_scores_on_a_schedule(trained: Path, tmp_path: Path) -> None:
    from touchpoints.predictions.schedule import ScoringJob

    with Touchpoints(load_settings(trained)) as core:
        before = core.warehouse.scalar("SELECT max(scored_at) FROM predictions")
        job = ScoringJob(core.figures.score, interval=3600, first=0.05)
        job.start()
        try:
            for _ in range(600):
                if job.runs:
                    break
                time.sleep(0.1)
        finally:
            job.stop()
        assert job.runs == 1
        assert core.warehouse.scalar("SELECT max(scored_at) FROM predictions") > before
        assert core.scoring_job() is not None
    with Touchpoints(load_settings(trained, predictions_score_interval_hours=0)) as off:
        assert off.scoring_job() is None


def test_churn_reasons_read_as_sentences_in_both_languages() -> None:
    from touchpoints.predictions.results import ChurnContribution
    from touchpoints.web.i18n import load
    from touchpoints.web.reasons import reasons

    found = [
        ChurnContribution(feature="pain_0", label="", value=3.0, points=12.04),
        ChurnContribution(feature="recency_days", label="", value=1.0, points=-4.5),
        ChurnContribution(feature="channel_web", label="", value=0.25, points=1.0),
        ChurnContribution(feature="stage", label="", value=1.0, points=2.0),
        ChurnContribution(feature="revenue", label="", value=None, points=0.5),
    ]
    languages = load()
    english = reasons(languages["en"], found, 14, ["support contact"], ["awareness", "purchase"])
    assert english == [
        "3 × support contact in the 14 days before: +12.0 points",
        "last event 1 day ago: −4.5 points",
        "25 % of the events of the 14 days before on web: +1.0 points",
        "furthest stage reached: purchase: +2.0 points",
        "revenue: unknown: +0.5 points",
    ]
    german = reasons(languages["de"], found, 14, ["support contact"], ["awareness", "purchase"])
    assert german[0] == "3 × support contact in den 14 Tagen davor: +12,0 Punkte"
    assert german[1] == "letztes Ereignis vor 1 Tag: −4,5 Punkte"
    assert german[3] == "am weitesten erreichte Phase: Kauf: +2,0 Punkte"


@contextmanager
def _signed_in(app: Any, key: str, language: str = "en") -> Iterator[Any]:
    from conftest import dashboard_sign_in

    with in_process_client(app) as client:
        assert dashboard_sign_in(client, key).status_code == 303
        client.get(f"/language/{language}")
        yield client


def test_the_predictions_page_draws_each_figure_with_its_numbers(tp: Touchpoints) -> None:
    app = create_app(tp)
    _, read = tp.keys.create("read", "r")
    with _signed_in(app, read) as client:
        page = client.get("/predictions")
        assert page.status_code == 200
        for part in ("clv-chart", "churn-stage-chart", "churn-channel-chart",
                     "calibration-chart", "lift-chart", "importance-chart", "holdout-chart",
                     "top-customers", "card-ltv", "card-churn"):  # fmt: skip
            assert f'id="{part}"' in page.text, part
        assert "style=" not in page.text and "<script>" not in page.text
        csv = client.get("/predictions", params={"csv": "lift"})
        assert csv.status_code == 200 and csv.text.splitlines()[0].startswith("decile,")
        assert len(csv.text.splitlines()) == 11
        top = client.get("/predictions", params={"csv": "top"})
        person = top.text.splitlines()[1].split(",")[0]
        profile = client.get(f"/people/{person}")
        assert profile.status_code == 200
        assert 'id="churn-risk"' in profile.text or 'id="p-alive"' in profile.text
    with _signed_in(app, read, "de") as client:
        page = client.get("/predictions")
        assert "Prognosen" in page.text and "Abwanderungsrisiko nach Hauptkanal" in page.text
        scored = tp.warehouse.scalar("SELECT min(person) FROM churn_scores")
        profile = client.get(f"/people/person:{scored}")
        assert "Was das Abwanderungsrisiko erhöhte oder senkte" in profile.text
        assert " Punkte</li>" in profile.text


def test_a_viewer_sees_the_figures_but_no_person(tp: Touchpoints) -> None:
    from argon2 import PasswordHasher

    from touchpoints.access.users import Passwords

    tp.users.passwords = Passwords(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))
    tp.users.create("vera", "viewer", "correct horse battery")
    app = create_app(tp)
    with in_process_client(app) as client:
        import re

        form = client.get("/login")
        token = re.search(r'name="csrf" value="([^"]+)"', form.text)
        assert token
        data = {"csrf": token[1], "name": "vera", "password": "correct horse battery"}
        assert client.post("/login", data=data).status_code in (200, 303)
        page = client.get("/predictions")
        assert page.status_code == 200 and 'id="clv-chart"' in page.text
        assert 'id="top-customers"' not in page.text and "person:" not in page.text
        assert client.get("/predictions", params={"csv": "top"}).status_code == 404


def test_days_too_early_for_the_windows_are_422_naming_until(tmp_path: Path) -> None:
    with Touchpoints(load_settings(tmp_path / "data")) as core:
        _, admin = core.keys.create("admin", "a")
        with in_process_client(create_app(core), admin) as client:
            offers = client.post("/v1/predictions/offers/evaluate", json={"until": "0001-01-05"})
            churn = client.post("/v1/predictions/churn/train", json={"until": "0001-01-05"})
    assert offers.status_code == 422 and offers.json()["detail"].startswith("until: 0001-01-05")
    assert churn.status_code == 422 and churn.json()["detail"].startswith("until: 0001-01-05")
