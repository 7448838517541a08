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
