"""The privacy of one data directory: one object the core builds and the faces call for
subject requests (export, erasure), suppressions, retention and the overview a
data-protection officer reads.

Consent itself is the profiles' (a person's choices are part of their profile, and every part
that uses personal data asks ``Profiles.allows(person, purpose)``); this part reaches every
store through the registry of personal data (:mod:`touchpoints.warehouse.personal`).
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from touchpoints.answers import Answer
from touchpoints.config import RetentionRule
from touchpoints.errors import Conflict, InvalidRequest
from touchpoints.identity.identifiers import IdentifierExtractor
from touchpoints.identity.resolver import IdentityResolver
from touchpoints.jobs import PeriodicJob
from touchpoints.journeys.service import Journeys
from touchpoints.privacy.requests import Requests
from touchpoints.privacy.results import (
    Erasure,
    Lifted,
    PrivacyRequest,
    RequestList,
    RetentionRun,
    Suppression,
)
from touchpoints.privacy.retention import Retention, retention_job
from touchpoints.privacy.rights import Pause, ReachExports, ReachFiles, Rights
from touchpoints.privacy.store import PrivacyStore
from touchpoints.privacy.suppression import Suppressions
from touchpoints.profiles import Profiles
from touchpoints.warehouse import Warehouse

SUPPRESSION_KEY_FILE = "suppression.key"


class PrivacySettings(Answer):
    """What the settings say about privacy, as the overview shows it."""

    consent_categories: list[str]
    consent_defaults: dict[str, bool]
    consent_purposes: dict[str, str]
    consent_analyses: str
    retention: list[RetentionRule]
    quarantine_retention_days: int | None
    privacy_deadline_days: int


class PrivacyOverview(Answer):
    open_requests: int = Field(description="Requests received and not yet done")
    overdue_requests: int = Field(description="Of those, past their due time")
    requests: list[PrivacyRequest] = Field(description="The latest requests, newest first")
    suppression: Suppression
    settings: PrivacySettings


class Privacy:
    def __init__(
        self,
        warehouse: Warehouse,
        identity: IdentityResolver,
        profiles: Profiles,
        journeys: Journeys,
        extractor: IdentifierExtractor,
        data_dir: Path,
        settings: PrivacySettings,
        pause_writes: Pause | None = None,
        reach_exports: ReachExports | None = None,
        reach_files: ReachFiles | None = None,
    ) -> None:
        self.store = PrivacyStore(warehouse)
        self.settings = settings
        self.suppressions = Suppressions(self.store, data_dir / SUPPRESSION_KEY_FILE, extractor)
        self.requests = Requests(self.store, settings.privacy_deadline_days)
        self.rights = Rights(
            warehouse,
            identity,
            profiles,
            journeys,
            self.suppressions,
            self.requests,
            pause_writes,
            reach_exports,
            reach_files,
        )
        self.retention = Retention(
            warehouse,
            identity,
            settings.retention,
            settings.quarantine_retention_days,
            reach_exports,
        )

    # -- subject rights --------------------------------------------------------------------------
    def export(self, key: str, by: str | None = None) -> tuple[PrivacyRequest, bytes]:
        """Everything about the person behind ``key``, as a ZIP archive (GDPR Art. 15, 20)."""
        return self.rights.export(key, by)

    def erase(self, key: str, by: str | None = None, note: str | None = None) -> Erasure:
        """The person behind ``key`` erased everywhere, and suppressed (GDPR Art. 17, 19)."""
        return self.rights.erase(key, by, note)

    def request(self, request_id: int) -> PrivacyRequest:
        return self.requests.get(request_id)

    def request_list(self, status: str | None = None, limit: int = 100) -> RequestList:
        return self.requests.listing(status, limit)

    # -- suppression ----------------------------------------------------------------------------
    def suppression(self) -> Suppression:
        active, dropped = self.store.suppressed_counts()
        return Suppression(identifiers=active, events_dropped=dropped)

    def lift(self, request_id: int, by: str) -> Lifted:
        """Accept again the events of the identifiers erasure request ``request_id``
        suppressed (the person asked to come back, or the erasure was a mistake)."""
        request = self.requests.get(request_id)  # NotFound for an unknown request
        if request.kind != "erasure" or request.status != "done":
            raise Conflict(
                f"request {request_id} is a {request.status} {request.kind} request: only a "
                "done erasure suppressed identifiers"
            )
        return Lifted(request_id=request.id, lifted=self.suppressions.lift(request.id, by))

    # -- retention -------------------------------------------------------------------------------
    def run_retention(self, dry_run: bool = False) -> RetentionRun:
        return self.retention.run(dry_run=dry_run)

    def retention_job(self) -> PeriodicJob[RetentionRun] | None:
        """The daily retention job a server runs, when something has a retention period."""
        if not self.settings.retention and not self.settings.quarantine_retention_days:
            return None
        return retention_job(self.retention)

    # -- imports ---------------------------------------------------------------------------------
    def reject_file(self, path: str) -> None:
        """Remember a file an import wrote rejected lines to: an erasure scrubs it."""
        found = Path(path)
        if not found.is_absolute():
            raise InvalidRequest(f"path: give an absolute path, not {path!r}")
        if not found.is_file():
            raise InvalidRequest(f"path: {path!r} is not a file this server can read")
        self.store.add_reject_file(str(found))

    # -- the overview ------------------------------------------------------------------------------
    def overview(self) -> PrivacyOverview:
        latest = self.requests.listing(limit=20).requests
        received = self.requests.listing(status="received", limit=10_000).requests
        return PrivacyOverview(
            open_requests=len(received),
            overdue_requests=sum(1 for request in received if request.overdue),
            requests=latest,
            suppression=self.suppression(),
            settings=self.settings,
        )
