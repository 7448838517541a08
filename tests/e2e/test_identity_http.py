"""Probabilistic matching over HTTP and the CLI on a real server: admins run it and decide
pairs, read keys look at the review list and links, write keys do neither."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from conftest import Server, run_cli, start_server
from people import customers, dealer_record, web_identify

pytestmark = pytest.mark.e2e


def send_batch(server: Server, messages: list[dict]) -> None:
    response = httpx.post(
        f"{server.url}/v1/batch", json={"batch": messages}, auth=(server.write_key, ""), timeout=30
    )
    assert response.is_success, response.text


def test_matching_reviews_and_unlinking_over_http_and_the_cli(tmp_path: Path) -> None:
    # A threshold no pair reaches: every likely pair goes to the review list.
    server = start_server(tmp_path / "data", {"TOUCHPOINTS_MATCH_THRESHOLD": "0.999999"})
    try:
        crowd = customers(300)
        send_batch(server, [web_identify(p) for p in crowd])
        send_batch(server, [dealer_record(crowd[i], typo=False) for i in range(0, 300, 5)])
        server.wait_idle()
        with server.client() as reader:
            # Running the match changes the identity map: admins only.
            assert reader.post("/v1/identity/match").status_code == 403
        with server.client(server.write_key) as writer:
            assert writer.get("/v1/identity/reviews").status_code == 403

        # The CLI goes through the server with its admin token.
        ran = run_cli("identity", "match", data_dir=server.data_dir)
        assert ran.returncode == 0, ran.stderr
        assert "360 persons compared" in ran.stdout
        assert "0 linked" in ran.stdout
        # The diagnostic: pairs compared, the prior and where it came from, the score bands.
        assert "pairs compared" in ran.stdout and "from " in ran.stdout
        assert "pairs per probability band: 0-0.01: " in ran.stdout

        with server.client() as reader:
            listed = reader.get("/v1/identity/reviews", params={"limit": 1000}).json()
            assert listed["count"] >= 60
            dealer_pairs = [
                p
                for p in listed["pairs"]
                if p["a"]["identifier"]["value"].startswith("DMS-")
                or p["b"]["identifier"]["value"].startswith("DMS-")
            ]
            best = dealer_pairs[0]
            assert best["a"]["record"]["birth_date"] == best["b"]["record"]["birth_date"]
            # Each pair is explained: the prior and every comparison's level and weight,
            # adding up to the pair's match weight.
            evidence = {e["comparison"]: e for e in best["evidence"]}
            assert evidence["birth_date"]["level"] == "Exact match on date of birth"
            assert evidence["birth_date"]["weight"] > 0 and evidence["prior"]["weight"] < 0
            weight = sum(e["weight"] for e in best["evidence"])
            assert 2**weight / (1 + 2**weight) == pytest.approx(best["probability"], abs=1e-3)
            assert reader.get("/v1/identity/reviews", params={"status": "nope"}).status_code == 422

        shown = run_cli("identity", "reviews", "--limit", "3", data_dir=server.data_dir)
        assert shown.returncode == 0, shown.stderr
        assert f"{listed['count']:,} pairs (review)" in shown.stdout
        assert "birth_date: Exact match on date of birth +" in shown.stdout

        accepted = run_cli(
            "identity", "review", str(best["pair_id"]), "--accept", "--note", "same person",
            data_dir=server.data_dir,
        )  # fmt: skip
        assert accepted.returncode == 0, accepted.stderr
        assert "linked as link 1" in accepted.stdout
        a, b = best["a"]["identifier"], best["b"]["identifier"]
        with server.client() as reader:
            left = reader.get(f"/v1/profiles/{a['type']}:{a['value']}").json()
            right = reader.get(f"/v1/profiles/{b['type']}:{b['value']}").json()
            assert left["person"] == right["person"]
            assert [m["kind"] for m in left["merges"]] == ["link"]
            # The merge log names the reviewer's note and the evidence.
            assert "same person; " in str(left["merges"]) and "birth_date: Exact" in str(
                left["merges"]
            )
            links = reader.get("/v1/identity/links").json()
            assert links["count"] == 1
            assert links["links"][0]["source"] == "review"
            assert links["links"][0]["probability"] == pytest.approx(best["probability"])

        again = run_cli("identity", "review", str(best["pair_id"]), "--reject",
                        data_dir=server.data_dir)  # fmt: skip
        assert again.returncode == 1
        assert "decided already: accepted" in again.stderr
        missing = run_cli("identity", "review", "999999", "--accept", data_dir=server.data_dir)
        assert missing.returncode == 1 and "no matched pair 999999" in missing.stderr

        unlinked = run_cli("identity", "unlink", "1", "--note", "twins", data_dir=server.data_dir)
        assert unlinked.returncode == 0, unlinked.stderr
        with server.client() as reader:
            left = reader.get(f"/v1/profiles/{a['type']}:{a['value']}").json()
            right = reader.get(f"/v1/profiles/{b['type']}:{b['value']}").json()
            assert left["person"] != right["person"]
            assert reader.get("/v1/identity/links").json()["count"] == 0
            assert reader.get("/v1/identity/links", params={"removed": True}).json()["count"] == 1
        gone = run_cli("identity", "unlink", "1", data_dir=server.data_dir)
        assert gone.returncode == 1 and "no link 1 in force" in gone.stderr
    finally:
        assert server.stop() == 0


def test_matching_too_little_data_is_a_clear_error_locally(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert run_cli("init", data_dir=data).returncode == 0
    result = run_cli("identity", "match", data_dir=data)
    assert result.returncode == 1
    assert "0 person(s) have an e-mail, a phone, or two of" in result.stderr
    assert "Traceback" not in result.stderr
