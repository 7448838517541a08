"""Subject rights over HTTP: the export archive, erasure while events keep arriving, the
suppression that follows it, the requests' register; refused with precise reasons; and the
whole path from the CLI to a real server, the data directory grepped afterwards."""

from __future__ import annotations

import io
import threading
import zipfile
from pathlib import Path

import httpx
import orjson
import pytest

from conftest import AppServer, run_cli, start_server
from touchpoints.cli.client import in_process_client

pytestmark = pytest.mark.e2e

ANNA = [
    {"type": "identify", "userId": "u-canary", "anonymousId": "laptop-canary",
     "traits": {"email": "Carla.Canary@Example.com", "phone": "+49 171 5550123",
                "name": "Carla Canary"}, "messageId": "c1"},
    {"type": "track", "userId": "u-canary", "event": "Order Completed", "messageId": "c2",
     "properties": {"revenue": 100}},
]  # fmt: skip
CANARIES = (b"canary", b"5550123")


def found_in(directory: Path) -> list[str]:
    return [
        f"{path.relative_to(directory)}: {needle.decode()}"
        for path in directory.rglob("*")
        if path.is_file()
        for needle in CANARIES
        if needle in path.read_bytes().lower()
    ]


def send(server: AppServer, batch: list[dict]) -> None:
    response = server.post("/v1/batch", json={"batch": batch}, auth=(server.write_key, ""))
    assert response.status_code == 200, response.text


def test_export_answers_an_archive_and_refuses_precisely(app_server: AppServer) -> None:
    send(app_server, ANNA)
    app_server.wait_idle()
    admin = app_server.admin_key()
    with app_server.client(admin) as client:
        response = client.post(
            "/v1/privacy/exports", json={"key": "email:carla.canary@example.com"}
        )
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/zip"
        number = response.headers["x-privacy-request"]
        assert f"touchpoints-export-{number}.zip" in response.headers["content-disposition"]
        archive = zipfile.ZipFile(io.BytesIO(response.content))
        events = orjson.loads(archive.read("tables/events.json"))
        assert {e["message_id"] for e in events} == {"c1", "c2"}

        missing = client.post("/v1/privacy/exports", json={})
        assert missing.status_code == 422
        assert "key" in missing.json()["detail"]
        nobody = client.post("/v1/privacy/erasures", json={"key": "email:nobody@example.de"})
        assert nobody.status_code == 404
        assert nobody.json()["detail"] == "no person has the identifier email:nobody@example.de"
        wrong = client.post("/v1/privacy/erasures", json={"key": "nobody"})
        assert wrong.status_code == 400 and "TYPE:VALUE" in wrong.json()["detail"]
        lift = client.post("/v1/privacy/requests/999/lift")
        assert lift.status_code == 404
        huge = client.get("/v1/privacy/requests/99999999999999999999")
        assert huge.status_code == 422

        register = client.get("/v1/privacy/requests").json()["requests"]
        assert [(r["kind"], r["status"]) for r in register] == [
            ("erasure", "refused"),
            ("export", "done"),
        ]
    with app_server.client() as reader:  # a read key reads profiles, not this
        refused = reader.post("/v1/privacy/exports", json={"key": "user_id:u-canary"})
        assert refused.status_code == 403
    with in_process_client(app_server.app) as anonymous:
        assert (
            anonymous.post("/v1/privacy/erasures", json={"key": "user_id:u-canary"}).status_code
            == 401
        )


def test_erasure_while_events_arrive_leaves_nothing_and_keeps_her_out(
    app_server: AppServer,
) -> None:
    send(app_server, ANNA)
    app_server.wait_idle()
    stop = threading.Event()
    sent: list[str] = []

    def others() -> None:  # other customers go on sending meanwhile
        n = 0
        while not stop.is_set():
            n += 1
            message_id = f"other-{n}"
            send(app_server, [{"type": "track", "userId": f"u-{n % 7}", "event": "Seen",
                               "messageId": message_id}])  # fmt: skip
            sent.append(message_id)

    thread = threading.Thread(target=others)
    thread.start()
    try:
        with app_server.client(app_server.admin_key()) as client:
            done = client.post(
                "/v1/privacy/erasures",
                json={"key": "phone:+491715550123", "note": "ticket 1"},
            )
    finally:
        stop.set()
        thread.join()
    assert done.status_code == 200, done.text
    erased = done.json()
    assert erased["identifiers"] == 4 and erased["removed"]["events"] == 2
    # She comes back on a new device with her e-mail: dropped on the way in.
    send(app_server, [{"type": "track", "anonymousId": "new", "event": "Back", "messageId": "c3",
                       "context": {"traits": {"email": "carla.canary@example.com"}}}])  # fmt: skip
    app_server.wait_idle()
    stored = {m for (m,) in app_server.tp.warehouse.fetchall("SELECT message_id FROM events")}
    assert stored == set(sent)  # every other event, none of hers
    with app_server.client(app_server.admin_key()) as client:
        overview = client.get("/v1/privacy").json()
    assert overview["suppression"] == {"identifiers": 4, "events_dropped": 1}
    assert overview["requests"][0]["subject"] == erased["person"]
    assert found_in(app_server.data_dir) == []


def test_the_cli_erases_through_a_running_server_and_nothing_is_left(tmp_path: Path) -> None:
    server = start_server(tmp_path / "data")
    try:
        response = httpx.post(
            f"{server.url}/v1/batch", json={"batch": ANNA}, auth=(server.write_key, ""), timeout=10
        )
        assert response.status_code == 200
        server.wait_for_count(2)
        exported = run_cli(
            "privacy", "export", "user_id:u-canary", "-o", str(tmp_path / "carla.zip"),
            data_dir=server.data_dir,
        )  # fmt: skip
        assert exported.returncode == 0, exported.stderr
        assert (tmp_path / "carla.zip").stat().st_mode & 0o777 == 0o600
        refused = run_cli("privacy", "erase", "user_id:u-canary", data_dir=server.data_dir)
        assert refused.returncode == 1 and "pass --yes" in refused.stderr
        erased = run_cli(
            "privacy", "erase", "user_id:u-canary", "--yes", "--note", "ticket 2",
            data_dir=server.data_dir,
        )  # fmt: skip
        assert erased.returncode == 0, erased.stderr
        assert "erased: 4 identifiers" in erased.stdout
        assert found_in(server.data_dir) == []
    finally:
        server.stop()
    assert found_in(server.data_dir) == []  # nor after the server wrote its last
    assert b"canary" not in server.log_path.read_bytes().lower()
