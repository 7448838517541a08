"""Suppression: an erased person's identifiers, kept only as keyed hashes, make the warehouse
drop later events that carry them (GDPR Art. 17 and 19: what was erased must not come back
with the next event of a tag or an import).

A hash is HMAC-SHA256 of ``type:value`` (the identifier's normal form) with a key of this
data directory (``suppression.key``, 32 random bytes, readable by its owner only), so the
list reveals no value: without the key, an e-mail address cannot be tried against it. The
check runs where every event is stored (``EventStore.row_filter``): the writer, the replay
of the write-ahead log, imports and the in-process CLI all pass there. It costs nothing
while nothing is suppressed; after that, parsing each event's raw JSON (about 5 µs).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import secrets
import threading
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import orjson

from touchpoints.events import EventRow
from touchpoints.identity.identifiers import Identifier, IdentifierExtractor
from touchpoints.privacy.store import PrivacyStore

log = logging.getLogger("touchpoints.privacy")


class Suppressions:
    def __init__(self, store: PrivacyStore, key_path: Path, extractor: IdentifierExtractor) -> None:
        self.store = store
        self.key_path = key_path
        self.extractor = extractor
        self._key: bytes | None = None
        self._active: frozenset[str] = frozenset(store.suppression_hashes())
        self._lock = threading.Lock()

    def _secret(self) -> bytes:
        if self._key is None:
            if not self.key_path.exists():
                fd = os.open(self.key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "wb") as handle:
                    handle.write(secrets.token_bytes(32))
            self._key = self.key_path.read_bytes()
        return self._key

    def hash(self, identifier: Identifier) -> str:
        message = f"{identifier.type}:{identifier.value}".encode()
        return hmac.new(self._secret(), message, hashlib.sha256).hexdigest()

    @property
    def active(self) -> int:
        return len(self._active)

    def add(self, identifiers: Iterable[Identifier], request_id: int | None) -> int:
        """Suppress ``identifiers`` from now on; how many."""
        hashes = [self.hash(identifier) for identifier in identifiers]
        with self._lock:
            self.store.add_suppressions(hashes, request_id)
            self._active = frozenset(self.store.suppression_hashes())
        return len(hashes)

    def lift(self, request_id: int, by: str) -> int:
        """Accept again the identifiers an erasure request suppressed; how many."""
        with self._lock:
            lifted = self.store.lift_suppressions(
                self.store.suppressions_of_request(request_id), by
            )
            self._active = frozenset(self.store.suppression_hashes())
        return lifted

    def erased(self, identifiers: Iterable[tuple[str, str]]) -> bool:
        """Whether one of ``identifiers`` (type, value) was erased (and is suppressed)."""
        if not self._active:
            return False
        return any(self.hash(Identifier(t, v)) in self._active for t, v in identifiers)

    def suppressed(self, row: EventRow) -> bool:
        """Whether the event carries an identifier that was erased."""
        return self._carries(row.raw)

    def withholds(self, document: str) -> bool:
        """Whether a refused document (an event, or a body of events) carries an erased
        identifier: then the quarantine does not hold it either (counted as dropped). A body
        that is not JSON cannot be read for identifiers; it is held (and an erasure finds it
        by its text, :mod:`.mentions`)."""
        if not self._active:
            return False
        if self._carries(document):
            self._count(1)
            return True
        return False

    def _carries(self, document: str | bytes) -> bool:
        try:
            message = orjson.loads(document)
        except orjson.JSONDecodeError:
            return False
        messages = [message]
        if isinstance(message, dict) and isinstance(message.get("batch"), list):
            messages.extend(message["batch"])
        return any(
            self.hash(found) in self._active
            for item in messages
            if isinstance(item, dict)
            for found in self.extractor.extract(item)
        )

    def _count(self, dropped: int) -> None:
        self.store.count_suppressed(datetime.now(UTC).date(), dropped)
        log.info("dropped %d events that carry an erased identifier", dropped)

    def keep(self, rows: Sequence[EventRow]) -> list[EventRow]:
        """The rows to store: those that carry no erased identifier. Dropped ones are counted
        (per day), never logged: their content is what was erased."""
        if not self._active:
            return list(rows)
        kept = [row for row in rows if not self.suppressed(row)]
        if len(kept) != len(rows):
            self._count(len(rows) - len(kept))
        return kept
