"""How a message reaches each kind of destination, one function per kind, each answering
with an :class:`Outcome` the worker turns into delivered, retry or dead.

- ``webhook``: an HTTP POST signed per Standard Webhooks (``webhook-id``,
  ``webhook-timestamp``, ``webhook-signature``: ``v1,`` and the base64 HMAC-SHA256 of
  ``id.timestamp.body`` with the ``whsec_`` secret's bytes).
- ``segment``: the message (a Segment-spec event) in a batch to another collector's
  ``/v1/batch``, with its write key (another touchpoints, a RudderStack data plane).
- ``email``: one message through an SMTP server (``to``, ``subject``, ``text``).
- ``file``: audience members (``members``: rows of one shape) as a CSV or Parquet file in a
  directory; an audience file (``snapshot``: a file link's run) under the stable name
  ``<audience key>.csv`` (or ``.parquet``), replaced whole, with the columns of
  :data:`SNAPSHOT_COLUMNS`, the rows its :class:`SnapshotGuard` admits.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import hmac
import io
import os
import secrets
import smtplib
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import make_msgid
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from touchpoints.activate.guard import Refused, check_host, pinned

KINDS = ("webhook", "segment", "email", "file")

# An audience file's columns, in order (docs/audiences.md): the person's user id, their
# anonymous (or device) id, their e-mail address when known, since when they are a member
# (UTC), and the audience's key. In Parquet every one is text but ``member_since``, a
# timestamp.
SNAPSHOT_COLUMNS = ("user_id", "anonymous_id", "email", "member_since", "audience_key")
_SNAPSHOT_SCHEMA = pa.schema(
    [
        pa.field(name, pa.timestamp("us", tz="UTC") if name == "member_since" else pa.string())
        for name in SNAPSHOT_COLUMNS
    ]
)


class SnapshotGuard(Protocol):
    """What an audience file's write asks first (see ``activate.audiences.files``): held
    while the file is written, so an erasure or an unlink that rewrites or removes it comes
    wholly before or wholly after."""

    lock: threading.Lock

    def admitted(self, destination: int, content: dict[str, Any]) -> list[dict[str, Any]] | None:
        """The rows to write (none of an erased person), or None: the link is gone."""


@dataclass(frozen=True)
class Outcome:
    """What one attempt came to: ``status`` the receiver's answer (HTTP or SMTP code) if
    any; ``retry`` whether to try again; ``retry_after`` seconds the receiver asked for;
    ``gone`` the receiver said the destination is gone (HTTP 410): disable it."""

    ok: bool
    status: int | None = None
    retry: bool = False
    retry_after: float | None = None
    gone: bool = False
    error: str | None = None


@dataclass(frozen=True)
class Target:
    """A destination as a sender needs it."""

    id: int
    kind: str
    config: dict[str, Any]
    secrets: dict[str, str]


def new_webhook_secret() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` header's value (Standard Webhooks, version 1)."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def http_outcome(response: httpx.Response) -> Outcome:
    """2xx delivered; 408, 429 and 5xx retried (Retry-After honoured); 410 gone; any other
    answer (4xx, a redirect, which is not followed) dead at once: trying again changes
    nothing."""
    status = response.status_code
    if 200 <= status < 300:
        return Outcome(ok=True, status=status)
    if status == 410:
        return Outcome(ok=False, status=status, gone=True, error="410 Gone: destination gone")
    error = f"HTTP {status}"
    if status in (408, 429) or status >= 500:
        return Outcome(
            ok=False, status=status, retry=True, retry_after=_retry_after(response), error=error
        )
    return Outcome(ok=False, status=status, error=error)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    from email.utils import parsedate_to_datetime

    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


class Senders:
    """The senders, with the settings every attempt needs (timeout, the address guard)."""

    def __init__(
        self, timeout: float, allow_private: bool, snapshots: SnapshotGuard | None = None
    ) -> None:
        self.timeout = timeout
        self.allow_private = allow_private
        self.snapshots = snapshots
        self._http = httpx.Client(timeout=timeout, follow_redirects=False)
        self.by_kind: dict[str, Callable[[Target, str, bytes], Outcome]] = {
            "webhook": self.webhook,
            "segment": self.segment,
            "email": self.email,
            "file": self.file,
        }

    def close(self) -> None:
        self._http.close()

    def send(self, target: Target, message_id: str, payload: bytes) -> Outcome:
        return self._guarded(lambda: self.by_kind[target.kind](target, message_id, payload))

    def send_many(self, target: Target, messages: list[tuple[str, bytes]]) -> Outcome:
        """Several messages in one request where the kind takes a batch (a collector's
        ``/v1/batch``), one answer for all; else the one message."""
        if target.kind == "segment":
            return self._guarded(lambda: self._segment_batch(target, messages))
        (only,) = messages
        return self.send(target, *only)

    def _guarded(self, call: Callable[[], Outcome]) -> Outcome:
        """``call``'s outcome, or what a refused address, a timeout or a failed connection
        comes to."""
        try:
            return call()
        except Refused as exc:
            return Outcome(ok=False, error=f"refused: {exc}")
        except httpx.TimeoutException:
            return Outcome(ok=False, retry=True, error=f"timed out after {self.timeout:g} s")
        except (httpx.TransportError, OSError) as exc:
            return Outcome(ok=False, retry=True, error=f"{type(exc).__name__}: {exc}"[:300])

    def _post(self, url: str, body: bytes, headers: dict[str, str]) -> Outcome:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        address = check_host(parts.hostname or "", port, self.allow_private)
        target, host, extensions = pinned(url, address)  # the address checked, no other
        response = self._http.post(
            target, content=body, headers={**headers, **host}, extensions=extensions
        )
        return http_outcome(response)

    def webhook(self, target: Target, message_id: str, payload: bytes) -> Outcome:
        timestamp = int(time.time())
        headers = {
            "content-type": "application/json",
            "webhook-id": message_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": sign(target.secrets["secret"], message_id, timestamp, payload),
        }
        return self._post(target.config["url"], payload, headers)

    def segment(self, target: Target, message_id: str, payload: bytes) -> Outcome:
        return self._segment_batch(target, [(message_id, payload)])

    def _segment_batch(self, target: Target, messages: list[tuple[str, bytes]]) -> Outcome:
        batch = []
        for message_id, payload in messages:
            event = orjson.loads(payload)
            event.setdefault("messageId", message_id)
            batch.append(event)
        body = orjson.dumps({"batch": batch})
        auth = base64.b64encode(f"{target.secrets['write_key']}:".encode()).decode()
        headers = {"content-type": "application/json", "authorization": f"Basic {auth}"}
        return self._post(target.config["url"].rstrip("/") + "/v1/batch", body, headers)

    def email(self, target: Target, message_id: str, payload: bytes) -> Outcome:
        config = target.config
        content = orjson.loads(payload)
        check_host(config["host"], int(config.get("port", 25)), self.allow_private)
        mail = EmailMessage()
        mail["From"] = config["sender"]
        mail["To"] = content["to"]
        mail["Subject"] = content.get("subject", "")
        mail["Message-ID"] = make_msgid(idstring=message_id.replace("@", "-"))
        mail.set_content(content.get("text", ""))
        try:
            with smtplib.SMTP(
                config["host"], int(config.get("port", 25)), timeout=self.timeout
            ) as smtp:
                if config.get("starttls"):
                    smtp.starttls(context=ssl.create_default_context())
                if target.secrets.get("password"):
                    smtp.login(config.get("user", ""), target.secrets["password"])
                smtp.send_message(mail)
        except smtplib.SMTPResponseException as exc:
            # 4xx: try again later; 5xx: refused for good.
            return Outcome(
                ok=False,
                status=exc.smtp_code,
                retry=400 <= exc.smtp_code < 500,
                error=f"SMTP {exc.smtp_code}",
            )
        except smtplib.SMTPRecipientsRefused:
            return Outcome(ok=False, status=550, error="SMTP: recipient refused")
        return Outcome(ok=True, status=250)

    def file(self, target: Target, message_id: str, payload: bytes) -> Outcome:
        content = orjson.loads(payload)
        if content.get("snapshot"):
            return self._snapshot(target, content)
        members: list[dict[str, Any]] = content.get("members", [])
        directory = Path(target.config["directory"])
        directory.mkdir(parents=True, exist_ok=True)
        fmt = target.config.get("format", "csv")
        name = f"{content.get('name', 'export')}-{message_id}.{fmt}"
        final = directory / name
        partial = directory / f".{name}.partial"
        if fmt == "parquet":
            pq.write_table(pa.Table.from_pylist(members), partial)
        else:
            partial.write_text(_csv(members))
        os.chmod(partial, 0o600)
        os.replace(partial, final)  # whole or not at all: a reader never sees half a file
        return Outcome(ok=True)

    def _snapshot(self, target: Target, content: dict[str, Any]) -> Outcome:
        """An audience file: the link's one file, replaced whole by this run's rows."""
        guard = self.snapshots
        held: AbstractContextManager[Any] = guard.lock if guard is not None else nullcontext()
        with held:
            rows = guard.admitted(target.id, content) if guard is not None else content["members"]
            if rows is None:
                return Outcome(
                    ok=False, error="not written: the audience is no longer exported here"
                )
            write_snapshot(snapshot_path(target.config, str(content["name"])), rows)
        return Outcome(ok=True)


def snapshot_path(config: dict[str, Any], key: str) -> Path:
    """Where a file destination keeps the audience ``key``'s file."""
    return Path(config["directory"]) / f"{key}.{config.get('format', 'csv')}"


def write_snapshot(path: Path, rows: Sequence[dict[str, Any]]) -> None:
    """``rows`` as the audience file ``path`` (CSV or Parquet by its suffix), whole or not at
    all: written beside it, then renamed over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    cells = [{name: row.get(name) for name in SNAPSHOT_COLUMNS} for row in rows]
    if path.suffix == ".parquet":
        for row in cells:
            if isinstance(row["member_since"], str):
                row["member_since"] = datetime.fromisoformat(row["member_since"])
        pq.write_table(pa.Table.from_pylist(cells, schema=_SNAPSHOT_SCHEMA), partial)
    else:
        for row in cells:
            if isinstance(row["member_since"], datetime):
                row["member_since"] = row["member_since"].isoformat(timespec="milliseconds")
        out = io.StringIO()
        writer = csv.DictWriter(out, fieldnames=SNAPSHOT_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(cells)
        partial.write_text(out.getvalue())
    os.chmod(partial, 0o600)
    os.replace(partial, path)


def read_snapshot(path: Path) -> list[dict[str, Any]]:
    """The rows of the audience file ``path`` as written (CSV cells as text)."""
    if path.suffix == ".parquet":
        return list(pq.read_table(path).to_pylist())
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _csv(members: list[dict[str, Any]]) -> str:
    columns: list[str] = []
    for member in members:
        columns.extend(key for key in member if key not in columns)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns)
    writer.writeheader()
    writer.writerows(members)
    return out.getvalue()
