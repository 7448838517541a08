"""``touchpoints serve --collectors N``: real collector processes on their shared port, fed
by Segment's and RudderStack's Python SDKs and by plain HTTP; what they acknowledge is
stored once, through a kill -9 of one of them and a stop of the server."""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from rudderstack.analytics import Client as RudderClient
from segment.analytics import Client as SegmentClient

from conftest import Server, cli, free_port, start_server
from touchpoints.config import load_settings
from touchpoints.core import Touchpoints

pytestmark = pytest.mark.e2e


def _collectors(server: Server) -> list[int]:
    found = subprocess.run(
        ["pgrep", "-P", str(server.process.pid)], capture_output=True, text=True, check=False
    )
    return sorted(int(pid) for pid in found.stdout.split())


def _start(tmp_path: Path, collectors: int = 2) -> tuple[Server, str]:
    port = free_port()
    server = start_server(
        tmp_path / "data", serve_args=("--collectors", str(collectors), "--collect-port", str(port))
    )
    return server, f"http://127.0.0.1:{port}"


def _send(collect_url: str, key: str, requests: int, prefix: str) -> set[str]:
    """Batches of 20 from 8 threads; the messageIds acknowledged with 200."""

    def one(n: int) -> list[str]:
        ids = [f"{prefix}-{n}-{i}" for i in range(20)]
        body = {
            "batch": [
                {"type": "track", "userId": f"u{n % 7}", "event": "Trip Completed", "messageId": m}
                for m in ids
            ]
        }
        try:
            response = httpx.post(f"{collect_url}/v1/batch", json=body, auth=(key, ""), timeout=30)
        except httpx.HTTPError:
            return []  # a connection cut by the kill: not acknowledged
        return ids if response.status_code == 200 else []

    with ThreadPoolExecutor(8) as pool:
        return {m for ids in pool.map(one, range(requests)) for m in ids}


def _stored_ids(data_dir: Path) -> list[str]:
    with Touchpoints(load_settings(data_dir)) as tp:
        return [row[0] for row in tp.warehouse.fetchall("SELECT message_id FROM events")]


def test_the_sdks_send_to_the_collector_processes_and_the_server_stores_it_all(
    tmp_path: Path,
) -> None:
    server, collect_url = _start(tmp_path)
    try:
        assert len(_collectors(server)) == 2
        for name, client_class in (("segment", SegmentClient), ("rudder", RudderClient)):
            client = client_class(write_key=server.write_key, host=collect_url, sync_mode=True)
            for n in range(30):
                client.track(f"{name}-user", "Product Viewed", {"n": n}, message_id=f"{name}-{n}")
            client.identify(f"{name}-user", {"email": f"{name}@example.com"})
            client.flush()
        assert server.wait_for_count(62) == 62
        server.wait_idle()
        # The identity map followed: the person of the identify holds their 31 events.
        with server.client() as api:
            profile = api.get("/v1/profiles/email:segment@example.com")
            assert profile.status_code == 200, profile.text
            assert profile.json()["computed"]["events"] == 31
        health = httpx.get(f"{collect_url}/health").json()
        assert health["status"] == "ok" and health["collector"] in (1, 2)
    finally:
        assert server.stop() == 0
    assert _collectors(server) == []


def test_keys_refusals_and_the_quarantine_work_as_on_the_server(tmp_path: Path) -> None:
    server, collect_url = _start(tmp_path, collectors=1)
    try:
        event = {"type": "track", "userId": "k", "event": "Lead"}
        refused = httpx.post(
            f"{collect_url}/v1/track", json=event, auth=("tp_write_" + "0" * 32, "")
        )
        assert refused.status_code == 401
        assert "not valid" in refused.json()["error"]

        # A key made while the processes run is taken within a second or two; revoked, refused.
        made = httpx.post(
            f"{server.url}/v1/keys",
            json={"role": "write"},
            headers={"Authorization": f"Bearer {server.admin_key()}"},
        ).json()
        accepted = 0

        def send() -> int:
            nonlocal accepted
            status = httpx.post(
                f"{collect_url}/v1/track", json=event, auth=(made["secret"], "")
            ).status_code
            accepted += status == 200
            return status

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and send() != 200:
            time.sleep(0.1)
        assert accepted == 1
        assert cli("keys", "revoke", made["id"], data_dir=server.data_dir).returncode == 0
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and send() != 401:
            time.sleep(0.1)
        assert time.monotonic() < deadline, "the revoked key was still taken after 10 s"

        # An event the server would refuse is refused with the same words, and held.
        bad = httpx.post(
            f"{collect_url}/v1/track", json={"event": "Lead"}, auth=(server.write_key, "")
        )
        assert bad.status_code == 400
        assert bad.json()["errors"] == [
            {"field": "userId", "message": "userId or anonymousId is required"}
        ]
        not_json = httpx.post(
            f"{collect_url}/v1/track",
            content=b"{not json",
            headers={"Content-Type": "application/json"},
            auth=(server.write_key, ""),
        )
        assert not_json.status_code == 400
        deadline = time.monotonic() + 10
        held: list[dict[str, object]] = []
        while time.monotonic() < deadline and len(held) < 2:
            with server.client(server.admin_key()) as api:
                held = api.get("/v1/quarantine").json()["items"]
            time.sleep(0.2)
        assert sorted(item["kind"] for item in held) == ["body", "event"]
        server.wait_idle()
        assert server.count() == accepted  # the new key's Leads, each acknowledged once
    finally:
        assert server.stop() == 0


def test_answers_on_the_wire_carry_their_headers_and_a_chunked_body_is_read_whole(
    tmp_path: Path,
) -> None:
    """The collector answers with two ASGI messages of its own (no Starlette Response):
    every answer, accepted or refused, has one Content-Length that is the body's, the JSON
    type, any origin and the security headers; a preflight is 204 with the CORS headers; a
    body sent in pieces (chunked) is read to its end."""
    server, collect_url = _start(tmp_path, collectors=1)
    try:
        auth = (server.write_key, "")

        def pieces() -> Iterator[bytes]:
            body = b'{"userId": "chunked", "event": "Sent In Pieces"}'
            yield from (body[:10], body[10:30], body[30:])

        answers = {
            "accepted": httpx.post(
                f"{collect_url}/v1/track",
                content=pieces(),
                headers={"Content-Type": "application/json"},
                auth=auth,
            ),
            "refused": httpx.post(f"{collect_url}/v1/track", json={"event": "E"}, auth=auth),
            "no key": httpx.post(f"{collect_url}/v1/track", json={"userId": "a"}),
            "wrong type": httpx.post(
                f"{collect_url}/v1/track",
                content=b"userId=a",
                headers={"Content-Type": "application/x-www-form-urlencoded"},
                auth=auth,
            ),
        }
        assert {name: a.status_code for name, a in answers.items()} == {
            "accepted": 200,
            "refused": 400,
            "no key": 401,
            "wrong type": 415,
        }
        for name, answer in answers.items():
            assert answer.headers.get_list("content-length") == [str(len(answer.content))], name
            assert answer.headers["content-type"] == "application/json", name
            assert answer.headers.get_list("access-control-allow-origin") == ["*"], name
            assert answer.headers["x-content-type-options"] == "nosniff", name
            assert answer.headers["cache-control"] == "no-store", name
        assert answers["accepted"].json() == {"success": True}
        preflight = httpx.request("OPTIONS", f"{collect_url}/v1/batch")
        assert preflight.status_code == 204 and preflight.content == b""
        assert preflight.headers["access-control-allow-methods"] == "POST, OPTIONS"
        assert "Authorization" in preflight.headers["access-control-allow-headers"]
        assert preflight.headers["access-control-allow-origin"] == "*"
        assert httpx.get(f"{collect_url}/v1/track").status_code == 405
        server.wait_idle()
        assert server.count() == 1
        with server.client() as api:
            stored = api.get("/v1/events", params={"user_id": "chunked"}).json()["events"]
        assert [event["event"] for event in stored] == ["Sent In Pieces"]
    finally:
        assert server.stop() == 0


def test_a_collector_process_killed_mid_stream_loses_nothing_acknowledged(
    tmp_path: Path,
) -> None:
    server, collect_url = _start(tmp_path)
    try:
        first = _collectors(server)
        with ThreadPoolExecutor(1) as pool:
            sending = pool.submit(_send, collect_url, server.write_key, 400, "kill")
            time.sleep(1.0)
            subprocess.run(["kill", "-9", str(first[0])], check=True)
            acknowledged = sending.result()
        assert len(acknowledged) >= 20
        # The server starts the killed process again; it hands over what its log held.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (
            len(_collectors(server)) < 2 or first[0] in _collectors(server)
        ):
            time.sleep(0.2)
        assert len(_collectors(server)) == 2 and first[0] not in _collectors(server)
        more = _send(collect_url, server.write_key, 20, "after")
        assert len(more) == 400
        server.wait_idle(timeout=60)
    finally:
        assert server.stop() == 0
    stored = _stored_ids(server.data_dir)
    assert len(stored) == len(set(stored)), "an event was stored twice"
    assert acknowledged | more <= set(stored)


def test_a_killed_server_takes_its_collector_processes_down_and_nothing_is_lost(
    tmp_path: Path,
) -> None:
    server, collect_url = _start(tmp_path)
    children = _collectors(server)
    acknowledged = _send(collect_url, server.write_key, 100, "gone")
    assert len(acknowledged) == 2000
    server.stop(signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in children):
        time.sleep(0.1)
    assert not any(Path(f"/proc/{pid}").exists() for pid in children)
    # Whatever opens the data directory next reads what they and the server left.
    counted = subprocess.run(
        [
            sys.executable,
            "-m",
            "touchpoints",
            "events",
            "count",
            "--data-dir",
            str(server.data_dir),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert counted.returncode == 0, counted.stderr
    assert int(counted.stdout) >= 2000
    assert acknowledged <= set(_stored_ids(server.data_dir))


def test_a_collect_port_in_use_stops_the_server_with_the_reason(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    assert cli("init", data_dir=data_dir).returncode == 0
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "touchpoints",
                "serve",
                "--data-dir",
                str(data_dir),
                "--port",
                str(free_port()),
                "--collectors",
                "2",
                "--collect-port",
                str(port),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
    assert done.returncode == 1
    assert f"collector process 1 could not start on 127.0.0.1:{port}" in done.stderr
    assert "in use" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    same = cli(
        "serve", "--collectors", "1", "--port", "9000", "--collect-port", "9000", data_dir=data_dir
    )
    assert same.returncode != 0
    assert "collect_port (9000) must differ from port" in same.stderr
