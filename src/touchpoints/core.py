"""The one core object: ``Touchpoints(settings)`` owns the warehouse and the services.

Faces open a data directory with :meth:`Touchpoints.open` (which first recovers what the
write-ahead log holds, as a database does on open), build the ASGI app with
``touchpoints.api.app.create_app(tp)`` and call it (the server over a port, the CLI in
process); the pages call the services. The core never imports a face. Writes go through the
buffered writer and its write-ahead log while a server runs (``start_writer``), and straight
to the warehouse otherwise.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

from touchpoints.access.audit import AuditLog
from touchpoints.access.keys import KeyStore
from touchpoints.access.proxies import TrustedProxies
from touchpoints.access.users import Users
from touchpoints.activate import DeliveryWorker, Destinations, Senders
from touchpoints.activate.audiences import (
    AudienceFiles,
    Audiences,
    ComputedTraits,
    Evaluation,
    LiveAudiences,
)
from touchpoints.activate.decide import Decider, Facts, Placements, PlacementStore
from touchpoints.activate.triggers import Dispatch, LiveTriggers, Triggers
from touchpoints.assist.agents import Agents
from touchpoints.assist.files import AssistantFileError
from touchpoints.assist.handover import Sources
from touchpoints.assist.maintenance import assistant_job
from touchpoints.assist.results import Touchpoint
from touchpoints.assist.service import Assistant, AssistantSettings
from touchpoints.collect.ingest import Outcome
from touchpoints.collect.process import build_normalizer, judge
from touchpoints.collect.quarantine import Quarantine, ReplayResult
from touchpoints.collect.spool import (
    KEYS_FILE,
    WATCHED_FILE,
    Spools,
    spool_root,
    write_keys,
    write_watched,
)
from touchpoints.collect.writer import Backpressure, BufferedWriter, replay_wal
from touchpoints.config import ConfigError, Settings
from touchpoints.events import EventRow
from touchpoints.export import Exporter, ExportQuery, ExportRun, ExportsReached, export_job
from touchpoints.export.manifest import IdentityRules
from touchpoints.identity.identifiers import IdentifierExtractor, IdentifierType, build_extractor
from touchpoints.identity.linking import Linker
from touchpoints.identity.resolver import CatchUp, IdentityResolver
from touchpoints.jobs import PeriodicJob
from touchpoints.journeys.model import StageModelError, load_model
from touchpoints.journeys.schedule import journeys_job
from touchpoints.journeys.service import Journeys
from touchpoints.journeys.store import Refreshed
from touchpoints.predictions import ChurnRisk, ChurnSettings, LtvSettings, Predictions
from touchpoints.predictions.actions import ActionRulesError, load_actions
from touchpoints.predictions.actions import rules_version as rules_version_of
from touchpoints.predictions.consent import EVERYONE, Allowed
from touchpoints.predictions.figures import Figures
from touchpoints.predictions.offers import Offers
from touchpoints.predictions.results import ScoringRun
from touchpoints.predictions.schedule import scoring_job
from touchpoints.privacy.service import Privacy, PrivacySettings
from touchpoints.profiles import Profiles
from touchpoints.profiles.profile import ConsentRules
from touchpoints.warehouse import EventReader, EventStore, Warehouse

log = logging.getLogger("touchpoints")


def build_identity_extractor(settings: Settings) -> IdentifierExtractor:
    """The identifier types, block list and phone region a data directory's settings define."""
    return build_extractor(
        (
            IdentifierType(t.name, tuple(t.paths), t.normalise, t.limit, t.priority)
            for t in settings.identifier_types
        ),
        settings.identity_block_values,
        settings.identity_block_patterns,
        settings.phone_region,
    )


# What touchpoints keeps in a data directory: personal data, for its owner's eyes only.
_PRIVATE_FILES = ("touchpoints.duckdb", "touchpoints.duckdb.wal", "touchpoints.toml", "server.json")
_PRIVATE_TREES = ("wal", "demo")


def make_private(data_dir: Path) -> None:
    """The data directory and what touchpoints keeps in it readable by its owner only
    (directories 0700, files 0600), whatever the umask they were made with: run on every
    open, so an install made before this is put right too. Only touchpoints' own files are
    touched (a data directory may be a place that holds other things)."""
    paths = [data_dir, *(data_dir / name for name in _PRIVATE_FILES)]
    for tree in _PRIVATE_TREES:
        paths.append(data_dir / tree)
        if (data_dir / tree).is_dir():
            paths.extend((data_dir / tree).rglob("*"))
    for path in paths:
        try:
            found = path.lstat()
        except FileNotFoundError:
            continue
        if stat.S_ISLNK(found.st_mode) or found.st_uid != os.getuid():
            continue
        wanted = 0o700 if stat.S_ISDIR(found.st_mode) else 0o600
        if stat.S_IMODE(found.st_mode) != wanted:
            path.chmod(wanted)


class Touchpoints:
    def __init__(self, settings: Settings, *, read_only: bool = False) -> None:
        self.settings = settings
        # The stage model is read and validated here, once (settings only name its file).
        try:
            model = load_model(settings.stage_model_path)
        except StageModelError as exc:
            raise ConfigError(f"stage_model: {exc}") from None
        actions = settings.next_best_actions_path
        try:
            self.action_rules = load_actions(actions) if actions is not None else None
        except ActionRulesError as exc:
            raise ConfigError(f"next_best_actions: {exc}") from None
        rules_version = rules_version_of(actions) if actions is not None else None
        self.warehouse = Warehouse(settings.database_path, read_only=read_only)
        make_private(settings.data_dir)
        self.keys = KeyStore(self.warehouse)
        self.users = Users(self.warehouse)
        self.audit = AuditLog(self.warehouse)
        self.proxies = TrustedProxies(settings.trusted_proxies)
        self.events = EventReader(self.warehouse)
        self.store = EventStore(self.warehouse)
        self.quarantine = Quarantine(self.warehouse)
        extractor = build_identity_extractor(settings)
        self.identity = IdentityResolver(self.warehouse, extractor)
        self.profiles = Profiles(
            self.warehouse,
            self.identity,
            settings.trait_source_priority,
            ConsentRules(
                tuple(settings.consent_categories),
                dict(settings.consent_defaults),
                dict(settings.consent_purposes),
            ),
        )
        self.linker = Linker(
            self.identity,
            tuple(settings.match_comparisons),
            settings.match_threshold,
            settings.match_review_from,
            settings.phone_region,
            settings.match_prior,
            tuple(tuple(rule) for rule in settings.match_prior_rules),
        )
        analyses = settings.consent_purposes.get("analyses")
        self.journeys = Journeys(
            self.warehouse,
            model,
            self.profiles.resolve,
            consent=(analyses, settings.consent_analyses) if analyses else None,
        )
        self.predictions = Predictions(
            self.warehouse,
            self.profiles.resolve,
            LtvSettings(
                conversion_event=settings.predictions_conversion_event,
                revenue_property=settings.predictions_revenue_property,
                discount_rate=settings.predictions_discount_rate,
                period=settings.predictions_period,
            ),
            allowed=self._predictions_allowed,
        )
        # Churn risk reads the journeys as analyses do: without persons who denied them.
        self.churn = ChurnRisk(
            self.warehouse,
            self.profiles.resolve,
            self.journeys.source,
            model,
            ChurnSettings(
                events=tuple(settings.predictions_churn_events),
                window_days=settings.predictions_churn_window_days,
                population=settings.predictions_churn_population,
                conversion_event=settings.predictions_conversion_event,
                revenue_property=settings.predictions_revenue_property,
            ),
            allowed=self._predictions_allowed,
        )
        self.offers = Offers(
            self.warehouse,
            self.profiles.resolve,
            settings.predictions_conversion_event,
            settings.predictions_offers_method,
            today=lambda: self.predictions.today(),
            allowed=self._predictions_allowed,
        )
        self.figures = Figures(
            self.predictions, self.churn, self.offers, self.action_rules, rules_version
        )
        # The predictions are traits of the person's profile; a scoring run makes the
        # cached profiles stale.
        self.profiles.predicted = self.figures.traits
        self.figures.listeners.append(self.profiles.forget)
        self.normalizer = build_normalizer(settings)
        self.writer: BufferedWriter | None = None
        self.jobs: list[PeriodicJob[Any]] = []  # a server's schedule
        self.exporter = Exporter(self.warehouse, self._current, _written_by(), self._identity_rules)
        self.privacy = Privacy(
            self.warehouse,
            self.identity,
            self.profiles,
            self.journeys,
            extractor,
            settings.data_dir,
            _privacy_settings(settings),
            pause_writes=self._paused_writes,
            reach_exports=self._reach_exports,
            reach_files=self._reach_audience_files,
        )
        self.destinations = Destinations(
            self.warehouse,
            settings.consent_purposes,
            self.profiles.allows,
            first_delay=settings.destinations_retry_schedule[0],
        )
        self.delivery: DeliveryWorker | None = None
        # Computed traits and audiences, evaluated as the identity map reports persons changed.
        self.evaluation = Evaluation(
            self.warehouse,
            self.journeys,
            self.destinations,
            settings.consent_defaults,
            self.profiles.consenting,
        )
        self.identity.listeners.append(self.evaluation.touched)
        self.traits = ComputedTraits(self.evaluation, self.profiles.resolve)
        # Audience files: a file destination's copy of an audience's members, on a schedule;
        # a run never writes rows of an erased identifier.
        self.audience_files = AudienceFiles(
            self.evaluation, self.destinations, self.privacy.suppressions.erased
        )
        self.audiences = Audiences(
            self.evaluation,
            self.destinations,
            self.profiles.resolve,
            settings.consent_categories,
            self.audience_files,
        )
        self.live: LiveAudiences | None = None
        # Triggers, dispatched as the writer commits events and as audiences change.
        self.dispatch = Dispatch(
            self.warehouse, self.evaluation, self._write_calls, applied=self.identity.processed_seq
        )
        self.identity.listeners.append(self.dispatch.touched)
        self.evaluation.listeners.append(self.dispatch.audiences_changed)
        self.store.listeners.append(self.dispatch.appended)
        self.triggers = Triggers(self.dispatch, self.audiences, self.profiles.resolve)
        self.live_triggers: LiveTriggers | None = None
        try:
            self.assistant = Assistant(
                self.warehouse,
                _assistant_settings(settings),
                self.profiles,
                self.destinations,
                self._assistant_sources(),
                self._record_assistant,
            )
        except AssistantFileError as exc:
            raise ConfigError(f"assistant: {exc}") from None
        self.agents = Agents(self.assistant)
        # Personalisation: decisions read each person's facts from memory, dropped when the
        # identity map, an evaluation of audiences or a scoring run changes them.
        placement_store = PlacementStore(self.warehouse)
        self.facts = Facts(placement_store, self.profiles.get)
        self.identity.listeners.append(self.facts.changed)
        self.evaluation.evaluated.append(self.facts.changed)
        self.figures.listeners.append(self.facts.forget)
        self.placements = Placements(
            placement_store,
            self.evaluation,
            self.profiles,
            self.facts,
            self.journeys.person_source,
            settings.consent_categories,
        )
        self.evaluation.named_by.append(self.placements.naming)
        self.decider = Decider(
            self.placements,
            self.profiles,
            self.facts,
            settings.consent_purposes.get("personalisation"),
        )
        # An erased person's identifiers keep their events out, whichever way they come.
        self.store.row_filter = self.privacy.suppressions.keep
        self.quarantine.withhold = self.privacy.suppressions.withholds

    # -- lifecycle ---------------------------------------------------------------------------
    @classmethod
    def open(cls, settings: Settings) -> Touchpoints:
        """Open a data directory as every face does: the core, then :meth:`recover`."""
        tp = cls(settings)
        try:
            recovered = tp.recover()
        except BaseException:
            tp.close()
            raise
        if recovered:
            log.info("recovered %d events from the write-ahead log", recovered)
        return tp

    def recover(self) -> int:
        """Store what a killed server acknowledged but did not write (the write-ahead log,
        and the logs its collector processes left), and bring the identity map up to the
        stored events; return the events replayed."""
        replayed = replay_wal(self.settings.wal_dir, self.store)
        replayed += self.spools.recover()
        self.identity.catch_up()
        return replayed

    @property
    def spools(self) -> Spools:
        """What collector processes hand over (``touchpoints serve --collectors N``)."""
        return Spools(self.settings.wal_dir, self.store, self.quarantine.hold_rows)

    def _publish_keys(self) -> None:
        """Write the keys that may send events where collector processes read them."""
        write_keys(self.settings.wal_dir, self.keys.snapshot())

    def _publish_watched(self, names: frozenset[str]) -> None:
        """Write the event names triggers fire on where collector processes read them. A
        failure costs only the early hand-over (the processes keep the names they had), so
        it is logged and the dispatch goes on."""
        try:
            write_watched(self.settings.wal_dir, names)
        except OSError as exc:
            log.warning("could not write the names triggers fire on: %s", exc)

    def start_writer(self) -> int:
        """Recover (see :meth:`recover`), then start the buffered writer, the scheduled
        jobs (retention, daily; scoring, predictions_score_interval_hours), the delivery
        worker (destinations' outbox) and the live evaluation of audiences."""
        replayed = self.recover()
        self.writer = BufferedWriter(
            self.store,
            self.settings.wal_dir,
            flush_interval_ms=self.settings.flush_interval_ms,
            flush_max_events=self.settings.flush_max_events,
            max_pending_events=self.settings.max_pending_events,
            fsync=self.settings.wal_fsync,
            fsync_interval_ms=self.settings.wal_fsync_interval_ms,
            after_write=self.catch_up,
            spools=self.spools,
            watch_spools=bool(self.settings.collectors),
            urgent=self.dispatch.urgent,
        )
        self.writer.start()
        if self.settings.collectors:
            self.keys.on_change = self._publish_keys
            self._publish_keys()
            # The event names triggers fire on, for the processes to hand such events over
            # at once: written whenever the dispatch finds them changed, and now.
            self.dispatch.on_watched = self._publish_watched
            self._publish_watched(self.dispatch.watched)
        if not self.jobs:  # started once, however often the app starts (a second set
            # would run on unstopped when the first is replaced)
            jobs = (
                self.privacy.retention_job(),
                self.scoring_job(),
                self.export_job(),
                self.journeys_job(),
                self.audience_files.job(),
                assistant_job(
                    self.assistant,
                    self.agents,
                    refresh=self.journeys.person_source,
                    warm=self.settings.assistant_warm,
                ),
            )
            self.jobs = [job for job in jobs if job is not None]
            for job in self.jobs:
                job.start()
        if self.delivery is None:  # started once, however often the app starts
            self.delivery = self.delivery_worker()
            self.delivery.start()
        if self.live is None:
            self.live = LiveAudiences(
                self.evaluation,
                interval_minutes=self.settings.audiences_interval_minutes,
                live=self.settings.audiences_live,
                keep_days=self.settings.audiences_keep_days,
            )
            self.live.start()
        if self.live_triggers is None:
            self.live_triggers = LiveTriggers(self.dispatch)
            self.live_triggers.start()
        self.placements.decisions.start()
        self.audit.start()
        return replayed

    def delivery_worker(self) -> DeliveryWorker:
        """A delivery worker for this data directory's destinations (not started)."""
        settings = self.settings
        return DeliveryWorker(
            self.destinations,
            Senders(
                settings.destinations_timeout_seconds,
                settings.destinations_allow_private,
                snapshots=self.audience_files,
            ),
            settings.destinations_retry_schedule,
            keep_days=settings.destinations_keep_days,
        )

    def scoring_job(self) -> PeriodicJob[ScoringRun] | None:
        """Scoring every ``predictions_score_interval_hours`` (None: 0, on demand only)."""
        hours = self.settings.predictions_score_interval_hours
        return scoring_job(self.figures.score, hours * 3600) if hours else None

    def journeys_job(self) -> PeriodicJob[Refreshed] | None:
        """The journey facts kept current every ``journeys_refresh_seconds`` (None: 0), the
        first time five seconds after the start (recovery and the identity map first), and
        the questions asked recently answered again when they changed."""
        seconds = self.settings.journeys_refresh_seconds
        return journeys_job(self.journeys.keep_current, seconds, first=5) if seconds else None

    def export_job(self) -> PeriodicJob[ExportRun] | None:
        """The export to ``export_dir`` every ``export_interval_minutes`` (None: unset)."""
        directory = self.settings.export_dir_path
        if directory is None:
            return None
        query = ExportQuery(to=str(directory.absolute()))
        return export_job(
            lambda: self.exporter.run(query), self.settings.export_interval_minutes * 60
        )

    def _current(self) -> None:
        """The identity map and the journey facts up to date with the stored events."""
        self.identity.catch_up()
        self.journeys.refresh()

    def _identity_rules(self) -> IdentityRules:
        """The identity rules the exported map follows (the export's manifest notes them)."""
        return IdentityRules(rules=self.identity.store.rules(), limits=dict(self.identity.limits))

    def _reach_exports(self) -> ExportsReached:
        """The export directories written before, without what was just removed."""
        directory = self.settings.export_dir_path
        return self.exporter.reach(directory.absolute() if directory else None)

    def _reach_audience_files(
        self, values: Sequence[tuple[str, str]], persons: Sequence[int]
    ) -> int:
        """An erased person out of the audience files and their runs in the outbox."""
        return self.audience_files.erase(values, persons)

    def _predictions_allowed(self) -> Allowed:
        """Whose consent allows predictions (profiling): the category of the purpose
        ``predictions`` granted by the person's latest choice, or by its default
        (``consent_defaults``) for a person who never chose, as ``Profiles.allows`` answers
        for one person. By default only ``necessary`` is granted without a choice, so a
        person who never chose is not scored."""
        purposes = self.settings.consent_purposes
        category = purposes.get("predictions") or purposes.get("analyses")
        if category is None:
            return EVERYONE
        source = self.journeys.person_source()
        latest = source.arrow(source.latest_choices(category))
        persons = latest.column("person").to_numpy()
        granted = latest.column("granted").to_numpy(zero_copy_only=False).astype(bool)
        return Allowed(
            default=bool(self.settings.consent_defaults.get(category, False)),
            granted=frozenset(int(p) for p in persons[granted]),
            denied=frozenset(int(p) for p in persons[~granted]),
        )

    @contextmanager
    def _paused_writes(self) -> Iterator[None]:
        """The writer held still (its buffer written first, if one runs), the outbox's
        states (the delivery worker between its writes) and the evaluation of audiences."""
        self.placements.decisions.flush()  # the decisions made so far, erased with the rest
        with ExitStack() as held:
            if self.writer is not None:
                held.enter_context(self.writer.paused())
            held.enter_context(self.destinations.writing)
            held.enter_context(self.assistant.paused())
            held.enter_context(self.evaluation.lock)
            held.enter_context(self.dispatch.lock)
            yield

    def stop_writer(self) -> int | None:
        """Stop the scheduled jobs and the writer (writing what it buffers); how many events
        it held (None: no writer ran)."""
        if self.live_triggers is not None:
            self.live_triggers.stop()
            self.live_triggers = None
        self.placements.decisions.stop()
        if self.live is not None:
            self.live.stop()
            self.live = None
        if self.delivery is not None:
            self.delivery.stop()
            self.delivery = None
        for job in self.jobs:
            job.stop()
        self.jobs = []
        if self.writer is None:
            return None
        pending = self.writer.pending
        self.writer.stop()
        self.writer = None
        if self.keys.on_change is not None:  # the collector processes have stopped
            self.keys.on_change = None
            self.dispatch.on_watched = None
            for name in (KEYS_FILE, WATCHED_FILE):
                (spool_root(self.settings.wal_dir) / name).unlink(missing_ok=True)
        return pending

    def close(self) -> None:
        self.stop_writer()
        self.audit.close()  # what was recorded is written: a clean shutdown loses no line
        self.warehouse.close()

    def __enter__(self) -> Touchpoints:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- collecting --------------------------------------------------------------------------
    def judge(
        self,
        payload: Any,
        route: str,
        *,
        source: str,
        received_at: int | None = None,
        enforce_batch_limit: bool = True,
        default_id_prefix: str | None = None,
    ) -> Outcome:
        """Validate a request body without storing anything."""
        return judge(
            self.settings,
            self.normalizer,
            payload,
            route,
            source=source,
            received_at=received_at,
            enforce_batch_limit=enforce_batch_limit,
            default_id_prefix=default_id_prefix,
        )

    def write_rows(self, rows: list[EventRow]) -> int:
        """Store rows: through the writer while a server runs (return how many were handed
        over), else now (return how many were new). Replay and imports come this way."""
        if self.writer is not None:
            self.writer.submit(rows)
            return len(rows)
        inserted = self.store.append(rows).inserted
        self.catch_up()
        return inserted

    def catch_up(self) -> CatchUp:
        """The identity map caught up with what is stored, from the rows of the last append
        where they are the next to apply (not read back)."""
        return self.identity.catch_up(self.store.take_fresh())

    def _write_calls(self, calls: list[dict[str, Any]]) -> None:
        """Calls touchpoints makes itself (a trigger setting a trait), stored as collected
        ones are, from the source ``touchpoints-triggers``."""
        rows: list[EventRow] = []
        for call in calls:
            outcome = self.judge(call, str(call["type"]), source="touchpoints-triggers")
            rows.extend(outcome.rows)
        if rows:
            self.write_rows(rows)

    def replay_quarantine(self, ids: list[int] | None = None) -> ReplayResult:
        return self.quarantine.replay(self.normalizer, self.write_rows, ids)

    # -- the assistant -----------------------------------------------------------------------
    def _record_assistant(self, messages: list[dict[str, Any]]) -> None:
        """The assistant's events, through the collector's judge and writer as any sender's
        (source ``assistant``). A customer's message is never refused for them: a refusal
        or a full writer is logged (a count, no content) and the conversation goes on."""
        if not messages:
            return
        outcome = self.judge({"batch": messages}, "batch", source="assistant")
        if outcome.rejected or outcome.body_problems:
            log.warning("assistant: %d of its events were refused", len(outcome.rejected) or 1)
        if outcome.rows:
            try:
                self.write_rows(outcome.rows)
            except Backpressure:
                log.warning(
                    "assistant: %d events not written: the writer is full", len(outcome.rows)
                )

    def _assistant_sources(self) -> Sources:
        """What a handover's summary and routing read about the customer."""

        def name(person: int) -> str | None:
            traits = self.profiles.get(person).traits
            parts = [traits[t].value for t in ("first_name", "last_name") if t in traits]
            return " ".join(str(part) for part in parts) or None

        def stage(person: int) -> str | None:
            return self.journeys.kept_stage(person)

        def predicted(person: int) -> dict[str, object]:
            return {name: trait.value for name, trait in self.figures.traits(person).items()}

        def recent(person: int) -> list[Touchpoint]:
            """The latest touchpoints but the conversation's own messages."""
            rows = self.profiles.timeline(person, 40)
            return [
                Touchpoint(
                    at=row["timestamp"],
                    event=row.get("event") or row.get("name") or row.get("type"),
                    channel=row["channel"],
                )
                for row in rows
                if not str(row.get("event") or "").startswith("Live Chat Message")
            ][:8]

        return Sources(name, stage, predicted, self.audiences.keys_of, recent)


def _assistant_settings(settings: Settings) -> AssistantSettings:
    return AssistantSettings(
        intents=settings.assistant_file("intents"),
        faq=settings.assistant_file("faq"),
        routing=settings.assistant_file("routing"),
        dealers=settings.assistant_file("dealers"),
        identity_secret=settings.assistant_identity_secret,
        code_destination=settings.assistant_code_destination,
        code_sms_destination=settings.assistant_code_sms_destination,
        code_tries=settings.assistant_code_tries,
        code_minutes=settings.assistant_code_minutes,
        transcript_days=settings.assistant_transcript_days,
        redact=settings.assistant_redact,
        max_chars=settings.assistant_max_message_chars,
        first_response_seconds=settings.assistant_first_response_seconds,
        idle_minutes=settings.assistant_idle_minutes,
        order_event=settings.predictions_conversion_event,
        marketing_category=settings.consent_purposes.get("marketing"),
    )


def _written_by() -> str:
    try:
        return f"touchpoints {metadata.version('touchpoints')}"
    except metadata.PackageNotFoundError:
        return "touchpoints"


def _privacy_settings(settings: Settings) -> PrivacySettings:
    return PrivacySettings(
        consent_categories=list(settings.consent_categories),
        consent_defaults=dict(settings.consent_defaults),
        consent_purposes=dict(settings.consent_purposes),
        consent_analyses=settings.consent_analyses,
        retention=list(settings.retention),
        quarantine_retention_days=settings.quarantine_retention_days,
        privacy_deadline_days=settings.privacy_deadline_days,
    )
