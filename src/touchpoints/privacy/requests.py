"""Access and erasure requests: each recorded with its status and times, due a configured
number of days after it was received (GDPR: one month), and closed with what was done
(counts, never the data)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

from touchpoints.errors import NotFound
from touchpoints.privacy.results import PrivacyRequest, RequestList
from touchpoints.privacy.store import PrivacyStore


class Requests:
    def __init__(self, store: PrivacyStore, deadline_days: int) -> None:
        self.store = store
        self.deadline = timedelta(days=deadline_days)

    def open(
        self, kind: str, subject: str, by: str | None, note: str | None = None
    ) -> PrivacyRequest:
        """A request received now, due after the deadline."""
        due = _now() + self.deadline
        return self.get(self.store.open_request(kind, subject, due, by, note))

    def close(
        self, request: PrivacyRequest, status: str, subject: str, outcome: dict[str, Any]
    ) -> PrivacyRequest:
        """Done (or refused), with what was done; the subject is now ``subject``
        (``person:N``: no identifier of the person stays with the request)."""
        self.store.close_request(request.id, status, subject, orjson.dumps(outcome).decode())
        return self.get(request.id)

    def get(self, request_id: int) -> PrivacyRequest:
        row = self.store.request(request_id)
        if row is None:
            raise NotFound(f"no privacy request {request_id}")
        return _request(row)

    def listing(self, status: str | None = None, limit: int = 100) -> RequestList:
        return RequestList(requests=[_request(row) for row in self.store.requests(status, limit)])


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _request(row: tuple[Any, ...]) -> PrivacyRequest:
    request_id, kind, subject, status, received, due, done, by, note, outcome = row
    return PrivacyRequest(
        id=request_id,
        kind=kind,
        subject=subject,
        status=status,
        received_at=received,
        due_at=due,
        done_at=done,
        overdue=done is None and due < _now(),
        requested_by=by,
        note=note,
        outcome=orjson.loads(outcome) if outcome else None,
    )
