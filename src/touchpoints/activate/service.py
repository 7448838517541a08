"""Destinations and their outbox: what producers (audiences, triggers, an operator's test)
send through, and what the faces show.

A producer calls :meth:`Destinations.enqueue` inside its own warehouse transaction (pass
its cursor): the message is written with the change that caused it, or not at all. A person
who has not granted every purpose the destination declares is not enqueued; the message is
counted as skipped. The :class:`~touchpoints.activate.worker.DeliveryWorker` delivers.
"""

from __future__ import annotations

import secrets as random_secrets
import threading
from collections.abc import Callable, Collection, Iterable, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import duckdb
import orjson

from touchpoints.activate.results import (
    Attempt,
    AttemptList,
    CreatedDestination,
    Destination,
    DestinationList,
    Enqueued,
    Message,
    MessageList,
    Replayed,
)
from touchpoints.activate.senders import KINDS, new_webhook_secret
from touchpoints.activate.store import ActivationStore
from touchpoints.errors import Conflict, InvalidRequest, NotFound
from touchpoints.warehouse import Warehouse, utc_now

# Per kind: the settings a destination needs, the ones it may have, and its secrets.
_REQUIRED = {
    "webhook": ("url",),
    "segment": ("url",),
    "email": ("host", "sender"),
    "file": ("directory",),
}
_OPTIONAL = {
    "webhook": (),
    "segment": ("forward",),
    "email": ("port", "user", "starttls"),
    "file": ("format",),
}
# What a collector destination may forward as it is collected (config ``forward``).
FORWARDABLE = ("track", "identify", "page", "screen", "group", "alias")
_SECRETS = {"webhook": ("secret",), "segment": ("write_key",), "email": ("password",), "file": ()}


class Destinations:
    def __init__(
        self,
        warehouse: Warehouse,
        purposes: Iterable[str],
        allows: Callable[[str, str], bool],
        first_delay: float = 0.0,
    ) -> None:
        self.store = ActivationStore(warehouse)
        self.purposes = set(purposes)
        self.allows = allows
        self.first_delay = first_delay
        self.skipped: dict[int, int] = {}  # per destination, since start: persons without consent
        self.wake = threading.Event()  # set when a message written is committed, or replayed
        # Held by whoever changes destinations or the outbox's states (the delivery worker
        # between sends, an operator, an erasure), so no two change the same rows at once: DuckDB
        # would fail one of them. Writing new messages needs no hold.
        self.writing = threading.RLock()
        # What is read on every delivery round and dispatch, kept between them: a
        # destination's kind, config, secrets and purposes never change once made; whether
        # any forwards collected events changes only when one is made, disabled or enabled
        # (each a statement less per round: tens of milliseconds each on two busy cores,
        # benchmarks/triggers.py).
        self._targets: dict[int, tuple[str, dict[str, Any], dict[str, str], list[str]]] = {}
        self._changes = 0  # destinations made, disabled or enabled in this process
        self._forwarding: tuple[int, bool] | None = None  # (at _changes, any forwarding)

    # -- configuring -------------------------------------------------------------------------
    def create(
        self,
        kind: str,
        name: str,
        config: dict[str, Any],
        purposes: list[str],
        secrets: dict[str, str] | None = None,
    ) -> CreatedDestination:
        config, given = _checked(kind, config, dict(secrets or {}))
        unknown = sorted(set(purposes) - self.purposes)
        if unknown:
            raise InvalidRequest(
                f"purposes: unknown {', '.join(unknown)}; known: {', '.join(sorted(self.purposes))}"
                " (consent_purposes)"
            )
        if kind == "webhook":
            secret = given.get("secret") or new_webhook_secret()
            if not secret.startswith("whsec_"):
                raise InvalidRequest("secrets.secret: a webhook secret starts with whsec_")
            given["secret"] = secret
        new_id = self.store.add_destination(
            kind,
            name,
            orjson.dumps(config).decode(),
            orjson.dumps(given).decode(),
            orjson.dumps(sorted(set(purposes))).decode(),
            utc_now(),
        )
        if config.get("forward"):
            self.store.start_forwarding(new_id)
        self._changes += 1
        return CreatedDestination(destination=self.get(new_id), secrets=given)

    def listing(self) -> DestinationList:
        counts = self.store.counts()
        return DestinationList(
            destinations=[self._answer(row, counts) for row in self.store.destinations()]
        )

    def get(self, destination_id: int) -> Destination:
        return self._answer(self._row(destination_id), self.store.counts())

    def disable(self, destination_id: int, reason: str | None = None) -> Destination:
        self._row(destination_id)
        with self.writing:
            self.store.set_state(
                destination_id, "disabled", reason or "disabled by an operator", utc_now()
            )
            self._changes += 1
        return self.get(destination_id)

    def enable(self, destination_id: int) -> Destination:
        self._row(destination_id)
        with self.writing:
            self.store.set_state(destination_id, "enabled", None, utc_now())
            self._changes += 1
        self.wake.set()
        return self.get(destination_id)

    def target(self, destination_id: int) -> tuple[str, dict[str, Any], dict[str, str]]:
        """The kind, config and secrets (for the worker only: never an answer)."""
        kind, config, secrets, _ = self._target(destination_id)
        return kind, config, secrets

    def _target(
        self, destination_id: int, cursor: duckdb.DuckDBPyConnection | None = None
    ) -> tuple[str, dict[str, Any], dict[str, str], list[str]]:
        found = self._targets.get(destination_id)
        if found is None:
            row = self.store.destination(destination_id, cursor=cursor)
            if row is None:
                raise NotFound(f"no destination {destination_id}")
            found = (row[1], orjson.loads(row[3]), orjson.loads(row[4]), orjson.loads(row[5]))
            self._targets[destination_id] = found
        return found

    # -- the outbox --------------------------------------------------------------------------
    def enqueue(
        self,
        destination_id: int,
        payload: dict[str, Any],
        *,
        person: int | None = None,
        ordering_key: str | None = None,
        message_id: str | None = None,
        cursor: duckdb.DuckDBPyConnection | None = None,
    ) -> Enqueued:
        """Write one message to ``destination_id`` about ``person`` (None: about nobody, such
        as a test), in the transaction of ``cursor`` when given. Messages of one
        ``ordering_key`` (default: the person) are delivered in the order written."""
        row = self.store.destination(destination_id, cursor=cursor)
        if row is None:
            raise NotFound(f"no destination {destination_id}")
        if person is not None:
            for purpose in orjson.loads(row[5]):
                if not self.allows(f"person:{person}", purpose):
                    self.skipped[destination_id] = self.skipped.get(destination_id, 0) + 1
                    return Enqueued(message_id=None, skipped=f"no consent for {purpose}")
        message_id = message_id or "msg_" + random_secrets.token_hex(16)
        key = ordering_key or (f"person:{person}" if person is not None else message_id)
        try:
            body = orjson.dumps(payload).decode()
        except TypeError as exc:  # a number past 64 bits
            raise InvalidRequest(f"payload: {exc}") from None
        now = utc_now()
        due = now + timedelta(seconds=self.first_delay)
        self.store.enqueue([(message_id, destination_id, person, key, body)], now, due, cursor)
        self.store.warehouse.after_commit(self.wake.set)
        return Enqueued(message_id=message_id)

    def enqueue_many(
        self,
        destination_id: int,
        messages: Sequence[tuple[int, dict[str, Any], str]],
        *,
        consented: Collection[int],
        cursor: duckdb.DuckDBPyConnection,
    ) -> int:
        """Write messages ``(person, payload, message id)`` to ``destination_id`` in the
        transaction of ``cursor``, each person's in the order given: a producer with many
        (an audience's members) that found, set-based, the persons who granted every purpose
        the destination declares (``consented``, see :meth:`purposes_of`). Messages about
        anyone else are not written, and counted as skipped. Returns how many were written."""
        rows = [
            (message_id, destination_id, person, f"person:{person}", orjson.dumps(payload).decode())
            for person, payload, message_id in messages
            if person in consented
        ]
        skipped = len(messages) - len(rows)
        if skipped:
            self.skipped[destination_id] = self.skipped.get(destination_id, 0) + skipped
        if rows:
            now = utc_now()
            due = now + timedelta(seconds=self.first_delay)
            self.store.enqueue(rows, now, due, cursor)
            self.store.warehouse.after_commit(self.wake.set)
        return len(rows)

    def purposes_of(
        self, destination_id: int, cursor: duckdb.DuckDBPyConnection | None = None
    ) -> tuple[str, list[str]]:
        """The kind of ``destination_id`` and the consent purposes it declares."""
        kind, _, _, purposes = self._target(destination_id, cursor)
        return kind, list(purposes)

    def test(self, destination_id: int, to: str | None = None) -> Enqueued:
        """A test message about nobody, in the kind's shape (an e-mail needs ``to``)."""
        kind = self._row(destination_id)[1]
        now = utc_now().isoformat(timespec="seconds") + "Z"
        payloads: dict[str, dict[str, Any]] = {
            "webhook": {"type": "touchpoints.test", "destination": destination_id, "at": now},
            "segment": {
                "type": "track",
                "event": "Touchpoints Test",
                "anonymousId": "touchpoints-test",
                "timestamp": now,
            },
            "email": {"to": to, "subject": "touchpoints test", "text": f"A test, sent {now}."},
            "file": {"name": "touchpoints-test", "members": [{"test": True, "at": now}]},
        }
        if kind == "email" and not to:
            raise InvalidRequest("to: a test e-mail needs an address to go to")
        return self.enqueue(destination_id, payloads[kind])

    def forward(self, limit: int = 1000) -> int:
        """Put the events collected since the last call in the outbox of every destination
        that forwards them (a collector with ``forward``), with the consent its purposes
        need, checked against each event's person; the destination's place in the events
        moves in the same transaction, so each event is put there once. Returns how many."""
        written = 0
        changes = self._changes
        if self._forwarding == (changes, False):
            return 0
        forwarding = self.store.forwarding()
        self._forwarding = (changes, bool(forwarding))  # a change meanwhile outdates it
        for destination, config, purposes, after in forwarding:
            rows = self.store.events_to_forward(after, limit)
            if not rows:
                continue
            types = set(str(orjson.loads(config).get("forward", "")).split(","))
            allowed: dict[tuple[int, str], bool] = {}
            messages = []
            for _seq, kind, message_id, raw, person in rows:
                if kind not in types:
                    continue
                if person is None or not all(
                    self._allowed(person, purpose, allowed) for purpose in orjson.loads(purposes)
                ):
                    self.skipped[destination] = self.skipped.get(destination, 0) + 1
                    continue
                event = orjson.loads(raw)
                event.setdefault("messageId", message_id)
                body = orjson.dumps(event).decode()
                new_id = "msg_" + random_secrets.token_hex(16)
                messages.append((new_id, destination, person, f"person:{person}", body))
            now = utc_now()
            with self.store.warehouse.transaction() as cursor:
                if messages:
                    due = now + timedelta(seconds=self.first_delay)
                    self.store.enqueue(messages, now, due, cursor)
                self.store.forwarded(destination, rows[-1][0], cursor)
            written += len(messages)
        if written:
            self.wake.set()
        return written

    def _allowed(self, person: int, purpose: str, seen: dict[tuple[int, str], bool]) -> bool:
        if (person, purpose) not in seen:
            seen[(person, purpose)] = self.allows(f"person:{person}", purpose)
        return seen[(person, purpose)]

    def messages(
        self, destination: int | None = None, state: str | None = None, limit: int = 100
    ) -> MessageList:
        rows = self.store.messages(destination, state, limit)
        return MessageList(messages=[_message(row) for row in rows])

    def attempts(self, destination: int | None = None, limit: int = 100) -> AttemptList:
        fields = list(Attempt.model_fields)
        rows = self.store.attempts(destination, limit)
        return AttemptList(
            attempts=[Attempt(**dict(zip(fields, row, strict=True))) for row in rows]
        )

    def replay(self, destination: int | None, message_ids: list[str]) -> Replayed:
        """Dead letters (all of ``destination``'s, or the ones named) sent again."""
        if destination is not None:
            row = self._row(destination)
            if row[6] != "enabled":
                raise Conflict(f"destination {destination} is disabled: enable it first")
        with self.writing:
            replayed = self.store.replay(destination, message_ids, utc_now())
        self.wake.set()
        return Replayed(replayed=replayed)

    # -- helpers -----------------------------------------------------------------------------
    def _row(self, destination_id: int) -> tuple[Any, ...]:
        row = self.store.destination(destination_id)
        if row is None:
            raise NotFound(f"no destination {destination_id}")
        return row

    def _answer(self, row: tuple[Any, ...], counts: dict[int, dict[str, int]]) -> Destination:
        found = counts.get(row[0], {})
        ok, failed = found.get("attempts_ok", 0), found.get("attempts_failed", 0)
        return Destination(
            id=row[0],
            kind=row[1],
            name=row[2],
            config=orjson.loads(row[3]),
            purposes=orjson.loads(row[5]),
            state=row[6],
            state_reason=row[7],
            created_at=row[8],
            changed_at=row[9],
            pending=found.get("pending", 0),
            delivered=found.get("delivered", 0),
            dead=found.get("dead", 0),
            attempts_ok=ok,
            attempts_failed=failed,
            success_rate=round(ok / (ok + failed), 4) if ok + failed else None,
            skipped=self.skipped.get(row[0], 0),
        )


def _message(row: tuple[Any, ...]) -> Message:
    (
        _,
        message_id,
        destination,
        person,
        key,
        _,
        created,
        due,
        attempts,
        state,
        status,
        error,
        done,
    ) = row
    return Message(
        message_id=message_id,
        destination=destination,
        person=person,
        ordering_key=key,
        created_at=created,
        next_attempt_at=due,
        attempts=attempts,
        state=state,
        last_status=status,
        last_error=error,
        done_at=done,
    )


def _checked(
    kind: str, config: dict[str, Any], secrets: dict[str, str]
) -> tuple[dict[str, Any], dict[str, str]]:
    """A destination's config and secrets as its kind wants them, or InvalidRequest naming
    the field."""
    if kind not in KINDS:
        raise InvalidRequest(f"kind: {kind!r} is not one of {', '.join(KINDS)}")
    for name, value in [*config.items(), *secrets.items()]:
        _check_value(name, value)
    allowed = set(_REQUIRED[kind]) | set(_OPTIONAL[kind])
    extra = sorted(set(config) - allowed)
    if extra:
        raise InvalidRequest(
            f"config: {kind} takes no {', '.join(extra)} (it takes {', '.join(sorted(allowed))})"
        )
    missing = [name for name in _REQUIRED[kind] if not config.get(name)]
    if missing:
        raise InvalidRequest(f"config.{missing[0]}: a {kind} destination needs it")
    wrong = sorted(set(secrets) - set(_SECRETS[kind]))
    if wrong:
        raise InvalidRequest(f"secrets: {kind} takes no {', '.join(wrong)}")
    _check_kind(kind, config, secrets)
    return config, secrets


def _check_value(name: str, value: object) -> None:
    """A config or secret value is a short string, a number or a yes/no."""
    if isinstance(value, bool) or (isinstance(value, int) and abs(value) < 2**53):
        return
    if isinstance(value, str) and len(value) <= 2000 and "\x00" not in value:
        return
    raise InvalidRequest(f"{name}: give a string (up to 2,000 characters), a number or true/false")


def _check_kind(kind: str, config: dict[str, Any], secrets: dict[str, str]) -> None:
    """What one kind of destination asks of its config and secrets."""
    if config.get("forward"):
        unknown = set(str(config["forward"]).split(",")) - set(FORWARDABLE)
        if unknown:
            raise InvalidRequest(
                f"config.forward: {', '.join(sorted(unknown))} unknown; a comma-separated list "
                f"of {', '.join(FORWARDABLE)}"
            )
    if kind == "segment" and not secrets.get("write_key"):
        raise InvalidRequest(
            "secrets.write_key: a segment destination needs the collector's write key"
        )
    if "url" in config:
        parts = urlsplit(str(config["url"]))
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InvalidRequest("config.url: an http:// or https:// URL")
    if "port" in config and (not isinstance(config["port"], int) or not 0 < config["port"] < 65536):
        raise InvalidRequest("config.port: a port number, 1 to 65535")
    if kind == "file":
        directory = Path(str(config["directory"]))
        if not directory.is_absolute():
            raise InvalidRequest("config.directory: an absolute path")
        if not directory.is_dir():
            raise InvalidRequest(f"config.directory: {directory} is not a directory; make it first")
        if config.get("format", "csv") not in ("csv", "parquet"):
            raise InvalidRequest("config.format: csv or parquet")
