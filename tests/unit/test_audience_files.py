"""An audience written through a file destination as one whole CSV or Parquet file on a
schedule: the file read back holds every member who granted the destination's purposes (and
no one else), in the documented columns; a failed write is retried as the same message and
leaves no half file; the schedule runs in the server's periodic job; an erasure takes the
person out of the file and out of every run still in the outbox at once; unlinking removes
the file."""

from __future__ import annotations

import io
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest

from conftest import AppServer, cli, start_app
from touchpoints.activate.audiences import parsed_schedule
from touchpoints.activate.senders import SNAPSHOT_COLUMNS, Target
from touchpoints.config import load_settings
from touchpoints.core import Touchpoints
from touchpoints.errors import InvalidRequest
from touchpoints.times import iso

GRANTED = {"consent": {"categoryPreferences": {"marketing": True}}}
VIEWERS = {"key": "viewers", "name": "Viewers", "condition": {"event": "Viewed"}}


def _send(tp: Touchpoints, *messages: dict[str, Any]) -> None:
    outcome = tp.judge({"batch": list(messages)}, "batch", source="files-test")
    assert not outcome.rejected, outcome.rejected
    tp.write_rows(outcome.rows)


def _people(tp: Touchpoints) -> None:
    """Four members and one who is none: anna (user id, device, e-mail, consent), a device
    only (consent), carl (no consent: left out), dora (user id only, consent); and eve, who
    consented but never viewed."""
    _send(
        tp,
        {"type": "identify", "userId": "anna", "anonymousId": "dev-a",
         "traits": {"email": "anna@example.com"}, "context": GRANTED, "messageId": "i1"},
        {"type": "track", "userId": "anna", "event": "Viewed", "messageId": "t1"},
        {"type": "track", "anonymousId": "dev-b", "event": "Viewed", "context": GRANTED,
         "messageId": "t2"},
        {"type": "track", "userId": "carl", "event": "Viewed", "messageId": "t3"},
        {"type": "track", "userId": "dora", "event": "Viewed", "context": GRANTED,
         "messageId": "t4"},
        {"type": "track", "userId": "eve", "event": "Bought", "context": GRANTED,
         "messageId": "t5"},
    )  # fmt: skip


@pytest.fixture
def tp(tmp_path: Path) -> Iterator[Touchpoints]:
    settings = load_settings(tmp_path / "data", destinations_retry_schedule=[0, 0, 0])
    with Touchpoints.open(settings) as found:
        yield found


def _file_destination(tp: Touchpoints, directory: Path, fmt: str = "csv") -> int:
    directory.mkdir(exist_ok=True)
    made = tp.destinations.create(
        "file", "ads", {"directory": str(directory), "format": fmt}, ["marketing"]
    )
    return made.destination.id


def _read(path: Path) -> list[tuple[Any, ...]]:
    """The file's rows, read with pyarrow (every CSV cell as text, empty as null)."""
    if path.suffix == ".parquet":
        table = pq.read_table(path)
    else:
        table = pcsv.read_csv(
            path,
            convert_options=pcsv.ConvertOptions(
                column_types={name: pa.string() for name in SNAPSHOT_COLUMNS},
                strings_can_be_null=True,
            ),
        )
    assert table.column_names == list(SNAPSHOT_COLUMNS)
    rows = [
        (row["user_id"], row["anonymous_id"], row["email"], row["audience_key"])
        for row in table.to_pylist()
    ]
    return sorted(rows, key=lambda row: [cell or "" for cell in row])


EXPECTED = [
    (None, "dev-b", None, "viewers"),
    ("anna", "dev-a", "anna@example.com", "viewers"),
    ("dora", None, None, "viewers"),
]


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_a_run_writes_every_consenting_member_as_one_file(
    tp: Touchpoints, tmp_path: Path, fmt: str
) -> None:
    _people(tp)
    tp.audiences.create(VIEWERS)
    destination = _file_destination(tp, tmp_path / "out", fmt)
    linked = tp.audiences.link("viewers", destination, schedule="every 2 hours")
    (link,) = linked.destinations
    assert (link.mode, link.schedule, link.rows, link.sent) == ("file", "every 2 hours", 3, 1)
    assert link.next_run_at == link.linked_at + timedelta(hours=2)
    assert linked.size == 4  # carl is a member, but gave no consent to marketing
    assert tp.destinations.get(destination).skipped == 1

    assert tp.delivery_worker().run_once() == 1
    path = tmp_path / "out" / f"viewers.{fmt}"
    assert [p.name for p in (tmp_path / "out").iterdir()] == [path.name]
    assert _read(path) == EXPECTED
    if fmt == "parquet":
        assert pq.read_schema(path).field("member_since").type == pa.timestamp("us", tz="UTC")
    # member_since: when each entered, as the audience's members say.
    since = {m.person: m.entered_at for m in tp.audiences.members("viewers").members}
    anna = f"person:{tp.profiles.resolve('user_id:anna')}"
    found = pq.read_table(path) if fmt == "parquet" else pcsv.read_csv(path)
    first = next(r for r in found.to_pylist() if r["user_id"] == "anna")
    written = first["member_since"]
    assert (written if isinstance(written, str) else iso(written)) == iso(since[anna])

    # Export now: a second run, the same stable file, one more member since.
    _send(tp, {"type": "track", "userId": "eve", "event": "Viewed", "messageId": "t6"})
    run = tp.audiences.export_now("viewers", destination)
    assert (run.rows, run.skipped) == (4, 1)
    assert run.next_run_at == link.next_run_at  # the schedule stays
    tp.delivery_worker().run_once()
    assert _read(path) == [*EXPECTED, ("eve", None, None, "viewers")]
    assert [p.name for p in (tmp_path / "out").iterdir()] == [path.name]


def test_a_failed_write_is_retried_as_the_same_message_and_leaves_no_half_file(
    tp: Touchpoints, tmp_path: Path
) -> None:
    _people(tp)
    tp.audiences.create(VIEWERS)
    out = tmp_path / "out"
    destination = _file_destination(tp, out)
    tp.audiences.link("viewers", destination, schedule="daily at 06:00")
    out.rmdir()
    out.write_text("a file where the directory was")  # every write fails
    worker = tp.delivery_worker()
    worker.run_once()
    (message,) = tp.destinations.messages(destination).messages
    assert (message.state, message.attempts) == ("pending", 1)
    out.unlink()
    out.mkdir()
    worker.run_once()
    (again,) = tp.destinations.messages(destination).messages
    assert (again.message_id, again.state, again.attempts) == (message.message_id, "delivered", 2)
    assert _read(out / "viewers.csv") == EXPECTED
    assert [p.name for p in out.iterdir()] == ["viewers.csv"]  # nothing partial left


def test_erasure_takes_the_person_out_of_the_file_and_the_outbox_at_once(
    tp: Touchpoints, tmp_path: Path
) -> None:
    _people(tp)
    tp.audiences.create(VIEWERS)
    out = tmp_path / "out"
    destination = _file_destination(tp, out, "parquet")
    tp.audiences.link("viewers", destination, schedule="every 30 minutes")
    worker = tp.delivery_worker()
    worker.run_once()
    tp.audiences.export_now("viewers", destination)  # a run still in the outbox
    (pending, delivered) = tp.destinations.messages(destination).messages
    assert (pending.state, delivered.state) == ("pending", "delivered")
    old_payload = tp.warehouse.scalar(
        "SELECT payload FROM outbox WHERE message_id = ?", [pending.message_id]
    )
    assert "anna@example.com" in str(old_payload)

    erased = tp.privacy.erase("email:anna@example.com")
    assert erased.audience_files == 1
    path = out / "viewers.parquet"
    assert _read(path) == EXPECTED[:1] + EXPECTED[2:]  # at once, before any run
    for (payload,) in tp.warehouse.fetchall("SELECT payload FROM outbox"):
        assert "anna" not in payload and "dev-a" not in payload
    worker.run_once()  # the pending run, written now: without her
    assert _read(path) == EXPECTED[:1] + EXPECTED[2:]
    # A run the worker took before the erasure and writes after it: her rows are left out.
    target = Target(destination, "file", {"directory": str(out), "format": "parquet"}, {})
    outcome = worker.senders.send(target, pending.message_id, str(old_payload).encode())
    assert outcome.ok
    assert _read(path) == EXPECTED[:1] + EXPECTED[2:]
    # The subject access export says where the person's audiences are, and claims no
    # audience file's rows among the messages about them.
    _request, archive = tp.privacy.export("user_id:dora")
    readme = zipfile.ZipFile(io.BytesIO(archive)).read("README.md").decode()
    outbox = next(line for line in readme.splitlines() if line.startswith("| `outbox`"))
    assert "an audience file's runs list many persons and are not here" in outbox
    assert "| `audience_members` | 1 |" in readme


def test_unlinking_or_deleting_the_audience_removes_the_file_and_its_runs(
    tp: Touchpoints, tmp_path: Path
) -> None:
    _people(tp)
    tp.audiences.create(VIEWERS)
    tp.audiences.create({"key": "dora_only", "name": "D", "condition": {"event": "Viewed"}})
    out = tmp_path / "out"
    destination = _file_destination(tp, out)
    tp.audiences.link("viewers", destination, schedule="every hour")
    tp.audiences.link("dora_only", destination, schedule="every hour")
    worker = tp.delivery_worker()
    worker.run_once()
    assert sorted(p.name for p in out.iterdir()) == ["dora_only.csv", "viewers.csv"]
    tp.audiences.export_now("viewers", destination)  # pending when unlinked
    taken = tp.destinations.store.due(datetime(2100, 1, 1), 10)  # as the worker claims it
    tp.audiences.unlink("viewers", destination)
    assert [p.name for p in out.iterdir()] == ["dora_only.csv"]
    assert tp.warehouse.scalar("SELECT count(*) FROM outbox WHERE payload LIKE '%viewers%'") == 0
    # The run the worker had taken is not written: the link is gone.
    target = Target(destination, "file", {"directory": str(out), "format": "csv"}, {})
    outcome = worker.senders.send(target, taken[0][1], taken[0][5].encode())
    assert not outcome.ok and "no longer exported" in str(outcome.error)
    assert [p.name for p in out.iterdir()] == ["dora_only.csv"]
    tp.audiences.remove("dora_only")
    assert list(out.iterdir()) == []


def test_schedules_parse_and_fall_due() -> None:
    anchor = datetime(2026, 7, 1, 9, 30)
    every = parsed_schedule("every 15 minutes")
    assert every.text() == "every 15 minutes"
    assert every.next_after(anchor, anchor) == datetime(2026, 7, 1, 9, 45)
    assert every.next_after(datetime(2026, 7, 1, 10, 1), anchor) == datetime(2026, 7, 1, 10, 15)
    assert parsed_schedule("every 2h").text() == "every 2 hours"
    assert parsed_schedule("Every hour").text() == "every hour"
    daily = parsed_schedule("daily at 06:00")
    assert daily.text() == "daily at 06:00" == parsed_schedule("daily 6:00 UTC").text()
    assert daily.next_after(anchor, anchor) == datetime(2026, 7, 2, 6, 0)
    assert daily.next_after(datetime(2026, 7, 1, 5, 0), anchor) == datetime(2026, 7, 1, 6, 0)
    for bad, reason in (
        ("hourly", "is not a schedule"),
        ("every 0 minutes", "out of range"),
        ("every 169 hours", "out of range"),
        ("daily at 24:00", "not a time of day"),
        ("every 5 seconds", "is not a schedule"),
    ):
        with pytest.raises(InvalidRequest, match=reason) as found:
            parsed_schedule(bad)
        assert str(found.value).startswith("schedule: ")


def test_the_periodic_job_runs_each_link_as_its_schedule_falls_due(
    tp: Touchpoints, tmp_path: Path
) -> None:
    _people(tp)
    tp.audiences.create(VIEWERS)
    destination = _file_destination(tp, tmp_path / "out")
    now = [datetime(2026, 7, 1, 9, 30)]
    tp.evaluation.clock = lambda: now[0]
    tp.audiences.link("viewers", destination, schedule="every 1 minute")
    job = tp.audience_files.job(tick=0.02, first=0.0)

    def runs() -> int:
        (link,) = tp.audiences.get("viewers", catch_up=False).destinations
        return link.sent

    job.start()
    try:
        time.sleep(0.2)
        assert runs() == 1  # not due yet: the clock stands
        now[0] += timedelta(seconds=61)
        _wait(lambda: runs() == 2)
        time.sleep(0.2)
        assert runs() == 2  # once per falling due
        now[0] += timedelta(minutes=1)
        _wait(lambda: runs() == 3)
    finally:
        job.stop()
    (link,) = tp.audiences.get("viewers", catch_up=False).destinations
    assert link.next_run_at == datetime(2026, 7, 1, 9, 33)
    assert job.failures == 0 and job.runs >= 3
    tp.delivery_worker().run_once()
    assert _read(tmp_path / "out" / "viewers.csv") == EXPECTED


def _wait(check: Callable[[], Any], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.02)


@pytest.fixture
def app(tmp_path: Path) -> Iterator[AppServer]:
    found = start_app(tmp_path / "data")
    yield found
    found.stop()


def test_the_api_links_views_and_refuses_with_the_field(app: AppServer, tmp_path: Path) -> None:
    _people(app.tp)
    out = tmp_path / "out"
    out.mkdir()
    assert any(job.name == "audience-files" for job in app.tp.jobs)  # the server's schedule
    with app.client(app.admin_key()) as admin, app.client() as reader:
        assert admin.post("/v1/audiences", json=VIEWERS).status_code == 201
        made = admin.post(
            "/v1/destinations",
            json={"kind": "file", "name": "ads", "purposes": ["marketing"],
                  "config": {"directory": str(out), "format": "csv"}},
        ).json()["destination"]["id"]  # fmt: skip
        hook = admin.post(
            "/v1/destinations",
            json={"kind": "webhook", "name": "crm", "config": {"url": "https://example.com/h"}},
        ).json()["destination"]["id"]

        def link(key: str, **body: Any) -> Any:
            return admin.post(f"/v1/audiences/{key}/destinations", json=body)

        for answer, status, detail in (
            (link("nobody", destination=made, schedule="every hour"), 404, "no audience nobody"),
            (link("viewers", destination=999, schedule="every hour"), 404, "no destination 999"),
            (link("viewers", destination=made, schedule="now and then"), 422, "schedule: "),
            (link("viewers", destination=made), 422, "schedule: a file link needs a schedule"),
            (link("viewers", destination=made, mode="identify"), 422, "mode: a file destination"),
            (
                link("viewers", destination=hook, mode="file", schedule="every hour"),
                422,
                f"destination: destination {hook} is a webhook destination",
            ),
            (
                link("viewers", destination=hook, schedule="every hour"),
                422,
                "schedule: only a file link has a schedule",
            ),
        ):
            assert answer.status_code == status, answer.text
            assert answer.json()["detail"].startswith(detail), answer.text
        body = {"destination": made, "schedule": "daily at 06:00"}
        assert reader.post("/v1/audiences/viewers/destinations", json=body).status_code == 403
        linked = link("viewers", **body)
        assert linked.status_code == 200, linked.text
        assert link("viewers", **body).status_code == 409
        (shown,) = reader.get("/v1/audiences/viewers").json()["destinations"]
        assert (shown["mode"], shown["schedule"], shown["rows"]) == ("file", "daily at 06:00", 3)
        assert shown["next_run_at"].endswith("T06:00:00.000Z")
        now = f"/v1/audiences/viewers/destinations/{made}/export"
        assert reader.post(now).status_code == 403
        run = admin.post(now)
        assert run.status_code == 202 and run.json()["rows"] == 3
        assert admin.post(f"/v1/audiences/viewers/destinations/{hook}/export").status_code == 404
        assert admin.post("/v1/audiences/nobody/destinations/1/export").status_code == 404
    _wait(lambda: (out / "viewers.csv").exists())
    assert _read(out / "viewers.csv") == EXPECTED
    actions = [line.action for line in app.tp.audit.page(limit=20).lines]
    assert "audience.export" in actions and "audience.link" in actions


def test_the_cli_links_and_exports_now_through_the_api(tmp_path: Path) -> None:
    data = tmp_path / "data"
    out = tmp_path / "out"
    with Touchpoints.open(load_settings(data)) as tp:
        _people(tp)
        tp.audiences.create(VIEWERS)
        destination = _file_destination(tp, out)
    done = cli("audiences", "link", "viewers", str(destination), "--schedule", "every 6 hours",
               data_dir=data)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert f"written to destination {destination} as a file every 6 hours: 3 members" in done.stdout
    bad = cli("audiences", "link", "viewers", str(destination), "--schedule", "weekly",
              data_dir=data)  # fmt: skip
    assert bad.returncode != 0 and "schedule: 'weekly' is not a schedule" in bad.stdout + bad.stderr
    now = cli("audiences", "export-now", "viewers", str(destination), "--json", data_dir=data)
    assert now.returncode == 0, now.stderr
    assert orjson.loads(now.stdout)["rows"] == 3
    shown = cli("audiences", "show", "viewers", data_dir=data)
    assert "as a file every 6 hours" in shown.stdout
    with Touchpoints.open(load_settings(data)) as tp:
        worker = tp.delivery_worker()
        assert [worker.run_once() for _ in range(3)] == [1, 1, 0]  # one link's runs in order
    assert _read(out / "viewers.csv") == EXPECTED


def test_a_write_and_an_erasure_never_interleave(tp: Touchpoints, tmp_path: Path) -> None:
    """The erasure waits for a write in progress (the lock), so the write cannot put the
    person back after the erasure rewrote the file."""
    _people(tp)
    tp.audiences.create(VIEWERS)
    out = tmp_path / "out"
    destination = _file_destination(tp, out)
    tp.audiences.link("viewers", destination, schedule="every hour")
    held = threading.Event()
    tp.audience_files.lock.acquire()  # a write in progress
    erasing = threading.Thread(
        target=lambda: (tp.privacy.erase("user_id:dora"), held.set()), daemon=True
    )
    erasing.start()
    time.sleep(0.3)
    assert not held.is_set()  # the erasure waits for the write
    (out / "viewers.csv").write_text(
        "user_id,anonymous_id,email,member_since,audience_key\n"
        "dora,,,2026-07-01T09:30:00.000Z,viewers\n"
    )  # what that write put there
    tp.audience_files.lock.release()
    erasing.join(30)
    assert held.is_set()
    assert _read(out / "viewers.csv") == []
