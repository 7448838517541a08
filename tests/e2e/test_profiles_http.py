"""Profiles over HTTP on a real server: read keys read, write keys do not, admins unmerge."""

from __future__ import annotations

import time
from pathlib import Path

import httpx
import orjson
import pytest

from conftest import Server, run_cli, start_server

pytestmark = pytest.mark.e2e


def post(server: Server, path: str, body: dict) -> httpx.Response:
    return httpx.post(f"{server.url}{path}", json=body, auth=(server.write_key, ""), timeout=10)


def wait_for_person(server: Server, key: str, timeout: float = 5) -> dict:
    deadline = time.monotonic() + timeout
    with server.client() as client:
        while time.monotonic() < deadline:
            response = client.get(f"/v1/profiles/{key}")
            if response.status_code == 200:
                return response.json()
            time.sleep(0.05)
    raise AssertionError(f"{key} did not appear within {timeout} s")


def test_profile_lookup_timeline_and_unmerge_over_http(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data")
    try:
        assert post(server, "/v1/page", {"anonymousId": "laptop-1", "name": "Modelle"}).is_success
        assert post(
            server,
            "/v1/identify",
            {
                "userId": "u-1001",
                "anonymousId": "laptop-1",
                "traits": {"email": "Anna.Berg@example.com", "city": "Hamburg"},
            },
        ).is_success
        # The identity map follows the writer (latency: benchmarks/identity.py).
        profile = wait_for_person(server, "email:anna.berg@example.com")
        assert profile["identifiers"]["anonymous_id"][0]["value"] == "laptop-1"
        assert profile["traits"]["city"]["value"] == "Hamburg"

        assert post(
            server, "/v1/track", {"userId": "u-1001", "anonymousId": "tablet-9", "event": "Login"}
        ).is_success
        server.wait_idle()
        with server.client() as client:
            person = profile["person"]
            assert client.get("/v1/profiles/anonymous_id:tablet-9").json()["person"] == person
            timeline = client.get(f"/v1/profiles/{person}/timeline", params={"limit": 2}).json()
            assert [e["type"] for e in timeline["events"]] == ["track", "identify"]
            assert timeline["next"] is not None
            rest = client.get(
                f"/v1/profiles/{person}/timeline", params={"before": timeline["next"]}
            ).json()
            assert [e["type"] for e in rest["events"]] == ["page"]
            assert rest["next"] is None
            found = client.get("/v1/profiles", params={"trait": "city", "value": "HAMBURG"})
            assert found.json() == {"persons": [person]}
            assert client.get("/v1/profiles/email:nobody@example.com").status_code == 404
            assert client.get("/v1/profiles/no-colon").status_code == 400
            # A read key may not unmerge.
            refused = client.post("/v1/identity/unmerge", json={"identifier": "x:y"})
            assert refused.status_code == 403

        # A write key may not read profiles.
        with server.client(server.write_key) as client:
            assert client.get(f"/v1/profiles/{person}").status_code == 403

        # The CLI goes through the server (it owns the file) with its admin token.
        result = run_cli(
            "identity", "unmerge", "anonymous_id:tablet-9", "--note", "shop tablet",
            data_dir=server.data_dir,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        with server.client() as client:
            tablet = client.get("/v1/profiles/anonymous_id:tablet-9").json()
            anna = client.get("/v1/profiles/user_id:u-1001").json()
        assert tablet["person"] != anna["person"]
        assert anna["person"] == person
        assert [(m["kind"], m["note"]) for m in anna["merges"]] == [("unmerge", "shop tablet")]
        shown = run_cli("profile", "user_id:u-1001", data_dir=server.data_dir)
        assert shown.returncode == 0, shown.stderr
        assert "anna.berg@example.com" in shown.stdout
        assert "Hamburg" in shown.stdout
    finally:
        assert server.stop() == 0


def test_profile_lookups_answer_alike_on_the_lean_route_and_through_fastapi(
    tmp_path: Path,
) -> None:
    server = start_server(tmp_path / "data")
    try:
        assert post(
            server, "/v1/identify", {"userId": "u-7", "traits": {"email": "b@example.com"}}
        ).is_success
        lean = wait_for_person(server, "email:b@example.com")
        with server.client() as client:
            # A query string leaves the request to the FastAPI route: same profile, same shape.
            assert client.get("/v1/profiles/email:b@example.com?history=false").json() == lean
            full = client.get("/v1/profiles/email:b@example.com", params={"history": "true"})
            assert full.json()["trait_history"]["email"][0]["value"] == "b@example.com"
            assert {k: v for k, v in full.json().items() if k != "trait_history"} == lean
            assert client.get("/v1/profiles/user_id:u-7").headers["content-type"] == (
                "application/json"
            )
            for path in ("/v1/profiles/email:nobody@example.com", "/v1/profiles/no-colon"):
                fast, slow = client.get(path), client.get(path, params={"history": "false"})
                assert fast.status_code == slow.status_code
                assert fast.json() == slow.json()
                assert set(fast.json()) == {"detail"}
            # The route is still described in the OpenAPI document.
            spec = client.get("/openapi.json").json()
            assert "history" in str(spec["paths"]["/v1/profiles/{key}"]["get"]["parameters"])

        anonymous = httpx.get(f"{server.url}/v1/profiles/user_id:u-7")
        assert anonymous.status_code == 401
        assert anonymous.headers["www-authenticate"] == "Bearer"
        assert "Authorization: Bearer <key>" in anonymous.json()["detail"]
        with server.client(server.write_key) as client:
            refused = client.get("/v1/profiles/user_id:u-7")
            assert refused.status_code == 403
            assert refused.json() == {
                "detail": "a write key may not do this; it needs the 'profiles' permission"
            }

        # Revoking the read key shuts it out at once, though its lookups were served from memory.
        admin = orjson.loads((server.data_dir / "server.json").read_bytes())["token"]
        with server.client(admin) as client:
            keys = client.get("/v1/keys").json()["keys"]
            read_id = next(k["id"] for k in keys if server.read_key.startswith(k["prefix"]))
            assert client.delete(f"/v1/keys/{read_id}").is_success
        with server.client() as client:
            revoked = client.get("/v1/profiles/user_id:u-7")
            assert revoked.status_code == 401
            assert revoked.json() == {"detail": "the key is not valid (unknown or revoked)"}
    finally:
        assert server.stop() == 0
