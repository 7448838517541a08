"""Journey stages over HTTP and the CLI on a real server: read keys read, write keys do not."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from conftest import run_cli, start_server

pytestmark = pytest.mark.e2e


def test_stage_counts_and_a_persons_history_over_http_and_the_cli(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data")
    try:
        batch = [
            {"type": "page", "anonymousId": "laptop", "name": "Start",
             "timestamp": "2026-03-01T10:00:00Z"},
            {"type": "track", "anonymousId": "laptop", "event": "Product Viewed",
             "timestamp": "2026-03-01T10:05:00Z"},
            {"type": "identify", "anonymousId": "laptop", "userId": "anna",
             "timestamp": "2026-03-02T10:00:00Z"},
            {"type": "track", "userId": "anna", "event": "Order Completed",
             "timestamp": "2026-03-05T10:00:00Z"},
            {"type": "page", "anonymousId": "other", "name": "Start",
             "timestamp": "2026-03-03T10:00:00Z"},
        ]  # fmt: skip
        response = httpx.post(
            f"{server.url}/v1/batch", json={"batch": batch}, auth=(server.write_key, ""), timeout=10
        )
        assert response.is_success, response.text
        server.wait_idle()
        with server.client() as reader:
            stages = reader.get("/v1/journeys/stages").json()["stages"]
            counts = {s["stage"]: (s["current"], s["reached"]) for s in stages}
            assert counts["awareness"] == (1, 2)
            assert counts["consideration"] == (0, 1)
            assert counts["purchase"] == (1, 1)
            history = reader.get("/v1/journeys/stages/user_id:anna").json()
            assert history["current"] == "purchase"
            assert [h["stage"] for h in history["stages"]] == [
                "awareness",
                "consideration",
                "purchase",
            ]
            assert history["stages"][1]["entered_at"] == "2026-03-01T10:05:00.000Z"
            missing = reader.get("/v1/journeys/stages/user_id:nobody")
            assert missing.status_code == 404
        with server.client(server.write_key) as writer:
            assert writer.get("/v1/journeys/stages").status_code == 403

        shown = run_cli("journeys", "stages", data_dir=server.data_dir)
        assert shown.returncode == 0, shown.stderr
        assert "consideration" in shown.stdout
        one = run_cli("journeys", "stages", "user_id:anna", data_dir=server.data_dir)
        assert one.returncode == 0, one.stderr
        assert "now in purchase" in one.stdout
        nobody = run_cli("journeys", "stages", "email:x@y.de", data_dir=server.data_dir)
        assert nobody.returncode == 1 and "no person has the identifier" in nobody.stderr
    finally:
        assert server.stop() == 0


def test_every_analysis_answers_over_http_and_the_cli_and_bad_questions_get_422(
    tmp_path: Path,
) -> None:
    server = start_server(tmp_path / "data")
    try:
        web = {"library": {"name": "analytics.js"}}
        batch = [
            {"type": "track", "anonymousId": "laptop", "event": "Product Viewed",
             "timestamp": "2026-03-02T10:00:00Z", "context": web},
            {"type": "identify", "anonymousId": "laptop", "userId": "anna",
             "traits": {"birthday": "1990-05-01"}, "timestamp": "2026-03-02T10:01:00Z"},
            {"type": "track", "anonymousId": "phone", "userId": "anna",
             "event": "Configuration Saved", "timestamp": "2026-03-03T10:00:00Z",
             "context": {"channel": "mobile"}},
            {"type": "track", "userId": "anna", "event": "Order Completed",
             "properties": {"revenue": 40000}, "timestamp": "2026-03-10T10:00:00Z",
             "context": {"channel": "store"}},
            {"type": "track", "anonymousId": "tablet", "event": "Product Viewed",
             "timestamp": "2026-03-04T10:00:00Z", "context": web},
        ]  # fmt: skip
        response = httpx.post(
            f"{server.url}/v1/batch", json={"batch": batch}, auth=(server.write_key, ""), timeout=10
        )
        assert response.is_success, response.text
        server.wait_idle()
        steps = {"steps": [{"event": "Product Viewed"}, {"event": "Order Completed"}]}
        with server.client() as reader:
            journey_map = reader.get("/v1/journeys/map").json()
            assert journey_map["stages"][0] == journey_map["stages"][0] | {
                "stage": "awareness",
                "reached": 2,
            }
            # From 3 March: only the tablet's first visit enters awareness in that range.
            later = reader.get("/v1/journeys/map", params={"since": "2026-03-03T00:00:00Z"})
            assert later.json()["stages"][0]["reached"] == 1, later.text
            backwards = reader.get(
                "/v1/journeys/map", params={"since": "2026-03-05", "until": "2026-03-01"}
            )
            assert backwards.status_code == 422 and "until" in backwards.text
            # Of the persons who used the store: Anna only (the tablet's visitor did not).
            store = reader.get("/v1/journeys/map", params={"channel": "store"}).json()
            assert store["stages"][0]["reached"] == 1
            nowhere = reader.get("/v1/journeys/map", params={"channel": "fax"})
            assert nowhere.status_code == 422 and "'fax' is not a channel" in nowhere.text
            band = reader.get("/v1/journeys/map", params={"age_group": "35-44"}).json()
            # Anna, born 1 May 1990: 35-44 from May 2025 to April 2035.
            assert band["stages"][0]["reached"] == 1
            odd = reader.get("/v1/journeys/map", params={"age_group": "30-39"})
            assert odd.status_code == 422 and "age_group" in odd.text
            loose = reader.get("/v1/journeys/map", params={"segment": "Hamburg"})
            assert loose.status_code == 422 and "give key=value" in loose.text
            funnel = reader.post(
                "/v1/journeys/funnels", json={**steps, "compare_units": True}
            ).json()
            # Stitched, Anna's laptop view and store order are one journey; per device they
            # are strangers.
            assert [s["units"] for s in funnel["person"]["steps"]] == [2, 1]
            assert [s["units"] for s in funnel["device"]["steps"]] == [2, 0]
            dropped = reader.post(
                "/v1/journeys/funnels/drop-offs", params={"step": 1}, json=steps
            ).json()
            assert dropped["total"] == 1
            retention = reader.post("/v1/journeys/retention", json={"period": "week"}).json()
            assert sum(c["size"] for c in retention["cohorts"]) == 2
            paths = reader.get("/v1/journeys/paths", params={"start": "Product Viewed"}).json()
            assert paths["people"] == 2
            variants = reader.get("/v1/journeys/variants").json()
            assert variants["people"] == 2
            mix = reader.get("/v1/journeys/channel-mix", params={"as_of": "2026-03-31"}).json()
            assert mix["people"]["35-44"] == 1  # Anna, 35 on 31 March 2026
            credit = reader.get("/v1/journeys/attribution").json()
            assert credit["conversions"] == 1 and credit["value"] == 40000
            for path, kwargs, reason in [
                ("/v1/journeys/funnels", {"json": {"steps": [{"event": "A"}]}}, "at least two"),
                ("/v1/journeys/retention", {"json": {"period": "day"}}, "period"),
            ]:
                refused = reader.post(path, **kwargs)
                assert refused.status_code == 422 and reason in refused.text, refused.text
            both = reader.get("/v1/journeys/paths", params={"start": "A", "end": "B"})
            assert both.status_code == 422
            band = reader.get("/v1/journeys/channel-mix", params={"bands": ["30-20"]})
            assert band.status_code == 422 and "30-20" in band.text
        with server.client(server.write_key) as writer:
            assert writer.get("/v1/journeys/map").status_code == 403

        for args, expected in [
            (["map"], "journey map"),
            (["map", "--since", "2026-03-03", "--until", "2026-04-01"], "journey map"),
            (["funnel", "Product Viewed", "Order Completed", "--compare"], "funnel per device"),
            (["funnel", "Product Viewed", "Order Completed", "--drop-offs", "1"], "no further"),
            (["retention"], "retention by week"),
            (["paths", "--after", "Product Viewed"], "distinct paths"),
            (["variants"], "variants"),
            (["channel-mix", "--as-of", "2026-03-31"], "35-44"),
            (["attribution"], "1 conversions"),
        ]:
            done = run_cli("journeys", *args, data_dir=server.data_dir)
            assert done.returncode == 0, (args, done.stderr)
            assert expected in done.stdout, (args, done.stdout)
        bad = run_cli("journeys", "funnel", "Only One", data_dir=server.data_dir)
        assert bad.returncode == 1 and "give at least two steps" in bad.stderr
        bad = run_cli("journeys", "map", "--since", "March", data_dir=server.data_dir)
        assert bad.returncode == 1 and "since" in bad.stderr, bad.stderr
    finally:
        assert server.stop() == 0
