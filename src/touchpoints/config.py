"""Settings: one typed place, read from options → environment (TOUCHPOINTS_*) → touchpoints.toml.

The data directory decides where the config file lives, so it is resolved first (override, then
TOUCHPOINTS_DATA_DIR, then ``./touchpoints-data``) and the rest is read with it.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)
from pydantic_settings.exceptions import SettingsError

from touchpoints.channels import CHANNELS, ChannelRule

DEFAULT_DATA_DIR = "touchpoints-data"
CONFIG_FILE_NAME = "touchpoints.toml"


class ConfigError(Exception):
    """The configuration is invalid; the message names the setting and what to do."""


# What probabilistic matching can compare between two persons' traits.
Comparison = Literal["name", "birth_date", "email", "phone", "street", "postcode", "city"]
DEFAULT_COMPARISONS: tuple[Comparison, ...] = ("name", "birth_date", "email", "phone", "postcode")
# The fields a rule of matching may name.
MatchField = Literal[
    "first_name", "last_name", "email", "phone", "birth_date", "street", "postcode", "city"
]
# Rules that tolerate an error in any one of name and birth date: two of the three agree.
DEFAULT_PRIOR_RULES: tuple[tuple[MatchField, ...], ...] = (
    ("first_name", "last_name"),
    ("first_name", "birth_date"),
    ("last_name", "birth_date"),
)


DEFAULT_CONSENT_CATEGORIES = (
    "necessary",
    "analytics",
    "marketing",
    "personalisation",
    "advertising",
)
DEFAULT_CONSENT_PURPOSES = {
    "analyses": "analytics",  # journey analytics, reports
    "personalisation": "personalisation",  # the decision API, next best actions
    "marketing": "marketing",  # destinations and triggers that contact the person
    "advertising": "advertising",  # audiences sent to ad platforms
    "transcripts": "analytics",  # keeping the assistant's conversations
    "predictions": "analytics",  # churn risk and lifetime value per person (profiling)
}


class RetentionRule(BaseModel):
    """Events older than ``days`` that match every condition given (none: every event)."""

    model_config = ConfigDict(extra="forbid")

    days: int = Field(ge=1)
    event: str | None = None
    type: str | None = None
    channel: str | None = None

    @field_validator("channel")
    @classmethod
    def _known_channel(cls, value: str | None) -> str | None:
        if value is not None and value not in CHANNELS:
            raise ValueError(f"unknown channel {value!r}; use one of {', '.join(CHANNELS)}")
        return value


class IdentifierTypeSetting(BaseModel):
    """An identifier type in touchpoints.toml ([[identifier_types]])."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    paths: list[str] = Field(min_length=1)
    normalise: Literal["exact", "lower", "email", "phone"] = "exact"
    limit: int | None = Field(default=None, ge=1)
    priority: int = 50


class Settings(BaseSettings):
    """Every setting of touchpoints, with its default and why it exists."""

    model_config = SettingsConfigDict(env_prefix="TOUCHPOINTS_", extra="forbid")

    data_dir: Path = Field(
        default=Path(DEFAULT_DATA_DIR),
        description="Directory holding the DuckDB file, the write-ahead log and demo files.",
    )
    host: str = Field(default="127.0.0.1", description="Address the server listens on.")
    port: int = Field(default=8080, ge=1, le=65535, description="Port the server listens on.")
    collectors: int = Field(
        default=0,
        ge=0,
        le=64,
        description=(
            "Collector processes the server starts beside itself (0: none; the server "
            "collects alone). They share collect_port, only validate, log and acknowledge "
            "events, and hand them to the server, which writes them."
        ),
    )
    collect_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Port the collector processes share; unset: port + 1.",
    )

    tls_cert: Path | None = Field(
        default=None,
        description=(
            "Certificate (PEM, with its chain) to serve HTTPS with; relative paths are inside "
            "the data directory. Unset: plain HTTP (behind a TLS-terminating proxy)."
        ),
    )
    tls_key: Path | None = Field(
        default=None, description="Private key (PEM) of tls_cert; set both or neither."
    )
    trusted_proxies: list[str] = Field(
        default_factory=list,
        description=(
            "Addresses (or networks) of reverse proxies whose X-Forwarded-For and "
            "X-Forwarded-Proto are believed; empty: those headers are ignored."
        ),
    )
    max_connections: int = Field(
        default=1000,
        ge=1,
        description=(
            "Open connections the server holds at most; beyond, new requests are answered 503."
        ),
    )
    keep_alive_seconds: float = Field(
        default=5.0, gt=0, description="An idle kept-alive connection is closed after this."
    )
    header_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        description="A request's line and headers must arrive within this (else 408, closed).",
    )
    body_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        description="A request's body must arrive within this of its headers (else 408, closed).",
    )
    max_header_bytes: int = Field(
        default=16 * 1024,
        ge=1024,
        description="Largest request line and headers together (else 431, closed).",
    )
    max_body_bytes: int = Field(
        default=1024 * 1024,
        ge=1024,
        description=(
            "Largest request body of any route (else 413); the collector's own limits, "
            "max_event_bytes and max_batch_bytes, are tighter. At least max_batch_bytes."
        ),
    )
    rate_limit_api: float = Field(
        default=500.0,
        ge=0,
        description="Requests a second each read or admin key may make to the API (0: no limit).",
    )
    rate_limit_api_burst: int = Field(
        default=1000, ge=1, description="Requests a read or admin key may make at once."
    )
    rate_limit_collect: float = Field(
        default=5000.0,
        ge=0,
        description="Requests a second each write key may send to the collector (0: no limit).",
    )
    rate_limit_collect_burst: int = Field(
        default=10_000, ge=1, description="Requests a write key may send at once."
    )

    max_event_bytes: int = Field(
        default=32 * 1024, ge=1024, description="Largest accepted single event (Segment: 32 KB)."
    )
    max_batch_bytes: int = Field(
        default=500 * 1024, ge=1024, description="Largest accepted request body (Segment: 500 KB)."
    )
    max_batch_events: int = Field(
        default=2500, ge=1, description="Most events in one batch (Segment: 2,500)."
    )
    max_message_id_length: int = Field(
        default=100, ge=8, description="Longest accepted messageId (Segment: 100)."
    )

    flush_interval_ms: int = Field(
        default=250, ge=1, description="How often buffered events are written to the warehouse."
    )
    flush_max_events: int = Field(
        default=50_000, ge=1, description="Write a batch as soon as this many events are buffered."
    )
    max_pending_events: int = Field(
        default=500_000,
        ge=1,
        description="Buffered, not yet written events above which collectors answer 429.",
    )
    wal_fsync: bool = Field(
        default=False,
        description=(
            "fsync the write-ahead log before acknowledging (grouped per batch of requests). "
            "Off, an acknowledged event survives a killed server; on, it also survives power loss."
        ),
    )
    wal_fsync_interval_ms: float = Field(
        default=2.0, ge=0, description="Longest wait to group requests into one fsync."
    )

    channel_rules: list[ChannelRule] = Field(
        default_factory=list, description="Rules checked before the built-in channel rules."
    )
    builtin_channel_rules: bool = Field(
        default=True, description="Use the built-in channel rules after the user rules."
    )
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    identifier_types: list[IdentifierTypeSetting] = Field(
        default_factory=list,
        description=(
            "Identifier types added to the built-in ones, or changing one of the same name "
            "(e.g. its limit)."
        ),
    )
    identity_block_values: list[str] = Field(
        default_factory=list,
        description="Values never taken as identifiers (e.g. a shared kiosk's device id).",
    )
    identity_block_patterns: list[str] = Field(
        default_factory=list, description="Regular expressions for such values."
    )
    phone_region: str = Field(
        default="DE",
        pattern=r"^[A-Z]{2}$",
        description="Country for phone numbers written without one (ISO 3166 code).",
    )
    trait_source_priority: dict[str, list[str]] = Field(
        default_factory=dict,
        description=(
            "Per trait, sources whose values win over newer ones from others, best first "
            '(e.g. postal_code = ["crm_export"]).'
        ),
    )

    match_comparisons: list[Comparison] = Field(
        default_factory=lambda: list(DEFAULT_COMPARISONS),
        min_length=1,
        description="What probabilistic matching compares between two persons' traits.",
    )
    match_threshold: float = Field(
        default=0.95,
        gt=0,
        lt=1,
        description="Match probability at or above which two persons are linked.",
    )
    match_review_from: float = Field(
        default=0.5,
        gt=0,
        lt=1,
        description="Pairs from this probability up to the threshold go to the review list.",
    )
    match_prior: float | None = Field(
        default=None,
        gt=0,
        lt=1,
        description=(
            "The chance that two random persons are one (duplicates / all pairs); unset: "
            "estimated from match_prior_rules."
        ),
    )
    match_prior_rules: list[list[MatchField]] = Field(
        default_factory=lambda: [list(rule) for rule in DEFAULT_PRIOR_RULES],
        description=(
            "Rules whose pairs (divided by 0.9, the share of true pairs they are taken to "
            "find) estimate match_prior: pairs agreeing on every field of a rule."
        ),
    )

    stage_model: Path | None = Field(
        default=None,
        description=(
            "A YAML file with the journey stage model (relative paths: inside the data "
            "directory); unset: the built-in model."
        ),
    )
    journeys_refresh_seconds: float = Field(
        default=60,
        ge=0,
        le=24 * 3600,
        description=(
            "How often a running server brings the kept journey facts up to date in the "
            "background (the first time a few seconds after it starts), so an analysis does "
            "not pay for deriving them, and answers again the questions asked in the last "
            "15 minutes when they changed; 0: only when an analysis asks."
        ),
    )

    consent_categories: list[str] = Field(
        default_factory=lambda: list(DEFAULT_CONSENT_CATEGORIES),
        min_length=1,
        description="The consent categories a person chooses (Segment's categoryPreferences).",
    )
    consent_defaults: dict[str, bool] = Field(
        default_factory=lambda: {"necessary": True},
        description=(
            "Per category, what holds for a person who never chose (EU-style: only the "
            "strictly necessary); a category not named here is not granted."
        ),
    )
    consent_purposes: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_CONSENT_PURPOSES),
        description="Which consent category each use of a person's data needs.",
    )
    consent_analyses: Literal["exclude", "aggregate"] = Field(
        default="exclude",
        description=(
            "Persons who denied the analyses' category: left out of every analysis "
            "(exclude), or counted in figures but never listed by name (aggregate)."
        ),
    )
    retention: list[RetentionRule] = Field(
        default_factory=list,
        description=(
            "How long events are kept, per event name, type or channel (the first rule an "
            "event matches decides); no rule: kept."
        ),
    )
    quarantine_retention_days: int | None = Field(
        default=None,
        ge=1,
        description="Days refused events are kept in the quarantine; unset: until deleted.",
    )
    privacy_deadline_days: int = Field(
        default=30,
        ge=1,
        description="Days to answer an access or erasure request (GDPR: one month).",
    )
    destinations_retry_schedule: list[float] = Field(
        default_factory=lambda: [0.0, 5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0],
        min_length=1,
        description="Seconds before each attempt to deliver a message (the first: after it "
        "was written); a message failing the last is a dead letter. Svix's schedule.",
    )
    destinations_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        le=300,
        description="Seconds one delivery attempt may take (connect, send, answer).",
    )
    destinations_keep_days: int = Field(
        default=30,
        ge=1,
        description="Days delivered messages, dead letters and their attempts are kept.",
    )
    destinations_allow_private: bool = Field(
        default=False,
        description="Let destinations send to private, loopback and link-local addresses.",
    )

    predictions_conversion_event: str = Field(
        default="Order Completed",
        min_length=1,
        description="The track event that is a purchase, for the lifetime-value models.",
    )
    predictions_revenue_property: str = Field(
        default="revenue",
        pattern=r'^[^"\\]+$',
        description="The purchase event's property holding its value (a JSON number).",
    )
    predictions_discount_rate: float = Field(
        default=0.01,
        ge=0,
        lt=1,
        description=(
            "Monthly discount rate of the 12-month lifetime value (0.01: about 12.7 % a year)."
        ),
    )
    predictions_period: Literal["days", "weeks"] = Field(
        default="weeks",
        description=(
            "The time unit the lifetime-value models count in (their alpha parameter, "
            "frequency and recency): the papers count weeks."
        ),
    )
    predictions_churn_events: list[Annotated[str, Field(min_length=1)]] = Field(
        default_factory=list,
        description=(
            "The events that count as activity for churn risk: a person has churned who does "
            "none of them for predictions_churn_window_days; empty: any event."
        ),
    )
    predictions_churn_window_days: int = Field(
        default=90,
        ge=7,
        le=730,
        description="Days without activity that make a person churned (and the label's window).",
    )
    predictions_churn_population: Literal["purchasers", "everyone"] = Field(
        default="purchasers",
        description=(
            "Whose churn risk is predicted: persons with a predictions_conversion_event "
            "(purchasers) or everyone; either way only those active in the last window."
        ),
    )
    predictions_offers_method: Literal["co-occurrence", "factorisation"] = Field(
        default="co-occurrence",
        description=(
            "How next best offers are chosen: item-to-item co-occurrence, or implicit-feedback "
            "matrix factorisation (ALS); touchpoints predict evaluate-offers measures both."
        ),
    )
    next_best_actions: Path | None = Field(
        default=None,
        description=(
            "A YAML file of next best action rules (relative paths are inside the data "
            "directory), checked at start; unset: none."
        ),
    )
    predictions_score_interval_hours: float = Field(
        default=24,
        ge=0,
        le=24 * 366,
        description=(
            "How often a running server scores everyone with the models in use (lifetime "
            "value and churn risk), in a thread beside the writer; 0: only on demand "
            "(touchpoints predict score, POST /v1/predictions/score)."
        ),
    )
    export_dir: Path | None = Field(
        default=None,
        description=(
            "A directory a running server exports the tables to as Parquet every "
            "export_interval_minutes (as touchpoints export --to does); relative paths are "
            "inside the data directory. Unset: no continuous export."
        ),
    )
    export_interval_minutes: float = Field(
        default=60,
        ge=1,
        le=60 * 24 * 31,
        description="How often a running server with an export_dir exports what is new.",
    )
    audiences_live: bool = Field(
        default=True,
        description=(
            "Evaluate computed traits and audiences for the persons each written batch of "
            "events (or a merge, an unmerge) touched, at once; false: only on the schedule."
        ),
    )
    audiences_interval_minutes: float = Field(
        default=60,
        ge=0,
        le=24 * 60,
        description=(
            "Minutes between evaluations of every computed trait and audience for everyone "
            "(windows of days move on), besides one just after each midnight (UTC); "
            "0: only at midnight."
        ),
    )
    audiences_keep_days: int = Field(
        default=365,
        ge=1,
        le=36500,
        description="Days each entry into and exit from an audience is kept in its history.",
    )

    assistant_intents: Path | None = Field(
        default=None,
        description=(
            "A YAML file of the assistant's intents with example phrases (relative paths are "
            "inside the data directory), checked at start; unset: the built-in file."
        ),
    )
    assistant_faq: Path | None = Field(
        default=None,
        description="A YAML file of the questions the assistant answers; unset: built in.",
    )
    assistant_routing: Path | None = Field(
        default=None,
        description="A YAML file of the teams and the routing rules of handovers; unset: built-in.",
    )
    assistant_dealers: Path | None = Field(
        default=None,
        description=(
            "A YAML file of the business hours, booking address and dealers the assistant "
            "names; unset: built-in (the demo's)."
        ),
    )
    assistant_identity_secret: str | None = Field(
        default=None,
        min_length=16,
        description=(
            "The secret a site signs its signed-in users' ids with (user_hash: HMAC-SHA256); "
            "unset: the assistant takes no user ids (one-time codes only)."
        ),
    )
    assistant_code_destination: str | None = Field(
        default=None,
        description=(
            "The e-mail destination (name or id) one-time codes are sent through; unset: no "
            "codes (customers prove who they are by signing in)."
        ),
    )
    assistant_code_sms_destination: str | None = Field(
        default=None,
        description=(
            "The webhook destination (name or id) of an SMS gateway one-time codes go to the "
            "phone on file through (it receives to, channel sms and text); unset: codes by "
            "e-mail only."
        ),
    )
    assistant_code_tries: int = Field(
        default=3, ge=1, le=10, description="Attempts at a one-time code before it is void."
    )
    assistant_code_minutes: int = Field(
        default=10, ge=1, le=60, description="Minutes a one-time code is valid."
    )
    assistant_transcript_days: int = Field(
        default=90,
        ge=1,
        description="Days closed conversations and their messages are kept.",
    )
    assistant_redact: bool = Field(
        default=True,
        description="Replace e-mail addresses, phone and card numbers in kept message texts.",
    )
    assistant_max_message_chars: int = Field(
        default=2000, ge=50, le=20000, description="The longest message the assistant reads."
    )
    assistant_first_response_seconds: int = Field(
        default=120,
        ge=1,
        description="Target time from a handover to a person's first reply (the figures).",
    )
    assistant_warm: bool = Field(
        default=True,
        description=(
            "Load the assistant's language model as the server starts (about 4 s of CPU on "
            "2 cores, and its memory), so the first customer does not wait; false: at the "
            "first message, for a server that does not use the assistant."
        ),
    )
    assistant_idle_minutes: int = Field(
        default=30,
        ge=1,
        le=1440,
        description="Minutes after which a conversation with the assistant alone is closed.",
    )
    assistant_demo_site: bool = Field(
        default=False,
        description=(
            "Serve a demo web site with the chat widget at /assistant/demo, whose sign-in "
            "takes any user id: for demos on fictitious data only."
        ),
    )

    @field_validator("consent_categories")
    @classmethod
    def _categories_lower(cls, names: list[str]) -> list[str]:
        bad = [n for n in names if not re.fullmatch(r"[a-z][a-z0-9_]*", n)]
        if bad:
            raise ValueError(f"write categories in lower case, letters, digits and _: {bad}")
        return names

    @model_validator(mode="after")
    def _consent_names_known(self) -> Settings:
        known = set(self.consent_categories)
        for name in self.consent_defaults:
            if name not in known:
                raise ValueError(f"consent_defaults: {name!r} is not one of consent_categories")
        for purpose, category in self.consent_purposes.items():
            if category not in known:
                raise ValueError(
                    f"consent_purposes.{purpose}: {category!r} is not one of consent_categories"
                )
        return self

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies_are_addresses(cls, value: list[str]) -> list[str]:
        for proxy in value:
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError:
                raise ValueError(
                    f"{proxy!r} is not an IP address or network (e.g. 127.0.0.1, 10.0.0.0/8)"
                ) from None
        return value

    @field_validator("match_comparisons")
    @classmethod
    def _comparisons_distinct(cls, names: list[str]) -> list[str]:
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"named more than once: {', '.join(twice)}")
        return names

    @field_validator("match_prior_rules")
    @classmethod
    def _prior_rules_well_formed(cls, rules: list[list[str]]) -> list[list[str]]:
        if not rules:
            raise ValueError("give at least one rule, or set match_prior")
        for index, rule in enumerate(rules):
            if not rule:
                raise ValueError(f"rule {index} is empty; name at least one field")
            if len(set(rule)) != len(rule):
                raise ValueError(f"rule {index} names a field twice: {rule}")
        return rules

    @field_validator("identity_block_patterns")
    @classmethod
    def _patterns_compile(cls, patterns: list[str]) -> list[str]:
        for i, pattern in enumerate(patterns):
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"pattern {i} ({pattern!r}) is not a valid regex: {exc}") from None
        return patterns

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # The file is bound per call in load_settings (model_config["toml_file"]).
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls))

    @model_validator(mode="after")
    def _review_below_threshold(self) -> Settings:
        if self.match_review_from > self.match_threshold:
            raise ValueError(
                f"match_review_from ({self.match_review_from}) must not exceed match_threshold "
                f"({self.match_threshold}): pairs at or above the threshold are linked, the "
                "review list holds those just below it"
            )
        return self

    @model_validator(mode="after")
    def _sizes_consistent(self) -> Settings:
        if self.max_event_bytes > self.max_batch_bytes:
            raise ValueError("max_event_bytes must not exceed max_batch_bytes")
        if self.max_batch_events > self.max_pending_events:
            # A full batch could never be accepted: it would get 429 for ever.
            raise ValueError("max_batch_events must not exceed max_pending_events")
        return self

    @model_validator(mode="after")
    def _limits_consistent(self) -> Settings:
        if self.max_body_bytes < self.max_batch_bytes:
            raise ValueError(
                "max_body_bytes must be at least max_batch_bytes (a full batch is a body)"
            )
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ValueError("tls_cert and tls_key: set both (HTTPS) or neither (HTTP)")
        if self.collectors and self.collectors_port == self.port:
            raise ValueError(
                f"collect_port ({self.collectors_port}) must differ from port: the collector "
                "processes share their own port"
            )
        return self

    @property
    def collectors_port(self) -> int:
        """The port collector processes share (``collect_port``, else ``port`` + 1)."""
        if self.collect_port is not None:
            return self.collect_port
        return self.port + 1 if self.port < 65535 else self.port - 1

    def _inside(self, path: Path | None) -> Path | None:
        if path is None:
            return None
        return path if path.is_absolute() else self.data_dir / path

    @property
    def tls_cert_path(self) -> Path | None:
        return self._inside(self.tls_cert)

    @property
    def tls_key_path(self) -> Path | None:
        return self._inside(self.tls_key)

    @property
    def database_path(self) -> Path:
        return self.data_dir / "touchpoints.duckdb"

    @property
    def stage_model_path(self) -> Path | None:
        if self.stage_model is None:
            return None
        return (
            self.stage_model if self.stage_model.is_absolute() else self.data_dir / self.stage_model
        )

    @property
    def next_best_actions_path(self) -> Path | None:
        if self.next_best_actions is None:
            return None
        found = self.next_best_actions
        return found if found.is_absolute() else self.data_dir / found

    def assistant_file(self, name: str) -> Path | None:
        """An assistant file setting's path (relative: inside the data directory)."""
        return self._inside(getattr(self, f"assistant_{name}"))

    @property
    def export_dir_path(self) -> Path | None:
        return self._inside(self.export_dir)

    @property
    def wal_dir(self) -> Path:
        return self.data_dir / "wal"

    @property
    def config_path(self) -> Path:
        return self.data_dir / CONFIG_FILE_NAME

    @property
    def server_file(self) -> Path:
        """Written by a running server so the CLI can find it and talk to it."""
        return self.data_dir / "server.json"

    @property
    def base_url(self) -> str:
        scheme = "https" if self.tls_cert is not None else "http"
        return f"{scheme}://{self.host}:{self.port}"


def resolve_data_dir(data_dir: Path | str | None = None) -> Path:
    if data_dir is not None:
        return Path(data_dir)
    env = os.environ.get("TOUCHPOINTS_DATA_DIR")
    return Path(env) if env else Path(DEFAULT_DATA_DIR)


def load_settings(data_dir: Path | str | None = None, **overrides: Any) -> Settings:
    """Read the settings for ``data_dir``; raise ConfigError naming every bad setting."""
    resolved = resolve_data_dir(data_dir)
    config_file = resolved / CONFIG_FILE_NAME
    toml_file: Path | None = None
    if config_file.exists():
        try:
            with config_file.open("rb") as handle:
                file_values = tomllib.load(handle)
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"{config_file}: not valid TOML: {exc}") from exc
        if "data_dir" in file_values:
            raise ConfigError(f"{config_file}: data_dir cannot be set inside the data directory")
        toml_file = config_file
    clean = {key: value for key, value in overrides.items() if value is not None}
    clean["data_dir"] = resolved

    class _BoundSettings(Settings):
        model_config = SettingsConfigDict(toml_file=toml_file)

    try:
        return _BoundSettings(**clean)
    except ValidationError as exc:
        origin = f" (from environment, {config_file} or options)"
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: "
            f"{err['msg'].removeprefix('Value error, ')}"
            for err in exc.errors()
        )
        raise ConfigError(f"invalid settings{origin}: {problems}") from exc
    except SettingsError as exc:  # e.g. TOUCHPOINTS_CHANNEL_RULES that is not JSON
        cause = f": {exc.__cause__}" if exc.__cause__ else ""
        raise ConfigError(f"invalid settings (from environment): {exc}{cause}") from exc


DEFAULT_CONFIG_TOML = """\
# touchpoints settings. Environment variables TOUCHPOINTS_<NAME> override these.
# Every setting is described in docs/configuration.md.
# host = "127.0.0.1"
# port = 8080
# collectors = 0                # collector processes beside the server (serve --collectors)
# collect_port: unset (port + 1), the port they share
# tls_cert: unset (plain HTTP); HTTPS: tls_cert = "cert.pem" and tls_key = "key.pem"
# tls_key: unset
# trusted_proxies = []          # e.g. ["127.0.0.1"]: a reverse proxy on this machine
# max_connections = 1000        # beyond, new requests are answered 503
# keep_alive_seconds = 5.0      # an idle kept-alive connection is closed after this
# header_timeout_seconds = 10.0 # a request's headers must arrive within this (else 408)
# body_timeout_seconds = 30.0   # its body within this of its headers (else 408)
# max_header_bytes = 16384      # request line and headers together (else 431)
# max_body_bytes = 1048576      # any request body (else 413); at least max_batch_bytes
# rate_limit_api = 500.0        # requests a second per read or admin key (0: no limit; 429)
# rate_limit_api_burst = 1000   # requests such a key may make at once
# rate_limit_collect = 5000.0   # requests a second per write key (0: no limit; 429)
# rate_limit_collect_burst = 10000
# max_event_bytes = 32768       # Segment's limit per event
# max_batch_bytes = 512000      # Segment's limit per request
# max_batch_events = 2500       # Segment's limit per batch
# max_message_id_length = 100   # Segment's limit
# flush_interval_ms = 250       # how often buffered events are written to DuckDB
# flush_max_events = 50000      # write at once when this many are buffered
# max_pending_events = 500000   # above this, collectors answer 429 with Retry-After
# wal_fsync = false             # true: acknowledged events also survive power loss
# wal_fsync_interval_ms = 2.0   # longest wait to group requests into one fsync
# builtin_channel_rules = true  # false: only your channel_rules decide the channel
# log_level = "info"            # debug, info, warning or error
#
# Identity resolution (see docs/identity.md):
# phone_region = "DE"             # country for phone numbers written without one
# identity_block_values = []      # e.g. ["KIOSK-TABLET-1"]: never an identifier
# identity_block_patterns = []    # e.g. ["^kiosk-"]
# trait_source_priority = {}      # e.g. { postal_code = ["crm_export"] }
# match_comparisons = ["name", "birth_date", "email", "phone", "postcode"]  # street, city
# match_threshold = 0.95          # linked at or above this match probability
# match_review_from = 0.5         # from here up to the threshold: the review list
# match_prior: unset (estimated from match_prior_rules); e.g. match_prior = 0.0001
# match_prior_rules = [["first_name","last_name"],["first_name","birth_date"],["last_name","birth_date"]]
#
# Journeys (see docs/journeys.md):
# stage_model: unset (the built-in model); yours, in the data directory: stage_model = "stages.yaml"
# journeys_refresh_seconds = 60   # the server keeps the journey facts current; 0: on demand
# identifier_types = []           # more types, or a built-in one changed, e.g.
# [[identifier_types]]
# name = "loyalty_card"
# paths = ["traits.loyalty_card", "properties.loyalty_card"]
# normalise = "lower"             # exact, lower, email or phone
# limit = 1                       # most per person; leave out for no limit
#
# Privacy (see docs/privacy.md):
# consent_categories = ["necessary", "analytics", "marketing", "personalisation", "advertising"]
# consent_defaults = { necessary = true }      # a person who never chose: only these
# consent_purposes: which category each use needs (analyses: analytics, personalisation,
#   marketing, advertising, transcripts and predictions: analytics),
#   e.g. { transcripts = "necessary" }
# consent_analyses = "exclude"    # or "aggregate": counted, never listed by name
# quarantine_retention_days: unset (kept until deleted)
# privacy_deadline_days = 30      # to answer an access or erasure request
# destinations_retry_schedule = [0, 5, 300, 1800, 7200, 18000, 36000]   # seconds
# destinations_timeout_seconds = 10.0
# destinations_keep_days = 30         # delivered messages, dead letters, the delivery log
# destinations_allow_private = false   # true: may send to 127.0.0.1, 10.0.0.0/8, …
# retention = []                  # e.g. raw web page views 13 months, orders 10 years:
# [[retention]]
#   type = "page"
#   channel = "web"
#   days = 395
# [[retention]]
#   event = "Order Completed"
#   days = 3650
#
# Predictions (see docs/predictions.md):
# predictions_conversion_event = "Order Completed"  # the track event that is a purchase
# predictions_revenue_property = "revenue"          # its value, a JSON number
# predictions_discount_rate = 0.01                  # a month, for the 12-month lifetime value
# predictions_period = "weeks"                      # or "days": the models' time unit
# predictions_churn_events = []                    # activity for churn risk; []: any event
# predictions_churn_window_days = 90                # no activity this long: churned
# predictions_churn_population = "purchasers"       # or "everyone"
# predictions_score_interval_hours = 24            # the server scores everyone; 0: off
# predictions_offers_method = "co-occurrence"       # or "factorisation" (matrix factorisation)
# audiences_live = true                   # evaluate persons as their events arrive
# audiences_interval_minutes = 60         # everyone again (and just after midnight, UTC)
# audiences_keep_days = 365               # entries into and exits from audiences
# next_best_actions: unset (no rules); e.g. next_best_actions = "actions.yaml"
#
# The service assistant (see docs/assistant.md):
# assistant_intents: unset (the built-in intents); yours: assistant_intents = "intents.yaml"
# assistant_faq: unset (the built-in FAQ); yours: assistant_faq = "faq.yaml"
# assistant_routing: unset (the built-in teams and rules); yours: assistant_routing = "routing.yaml"
# assistant_dealers: unset (the built-in demo dealers); yours: assistant_dealers = "dealers.yaml"
# assistant_identity_secret: unset (no signed-in users); better in TOUCHPOINTS_ASSISTANT_IDENTITY_SECRET
# assistant_code_destination: unset (no one-time codes); e.g. assistant_code_destination = "mail"
# assistant_code_sms_destination: unset (codes by e-mail only); e.g. = "sms-gateway"
# assistant_code_tries = 3
# assistant_code_minutes = 10
# assistant_transcript_days = 90      # closed conversations and their messages
# assistant_redact = true             # e-mail addresses, phone and card numbers in kept texts
# assistant_max_message_chars = 2000
# assistant_first_response_seconds = 120   # target from handover to a person's first reply
# assistant_warm = true             # load the language model as the server starts
# assistant_idle_minutes = 30         # a conversation with the assistant alone is closed
# assistant_demo_site = false         # true: /assistant/demo, sign in as anyone (demo data only)
# Open tables (see docs/export.md):
# export_dir: unset (no continuous export); e.g. export_dir = "/srv/lake/touchpoints"
# export_interval_minutes = 60    # how often a server with an export_dir exports
#
# Channel rules are checked before the built-in ones (see docs/channels.md):
# [[channel_rules]]
# field = "context.library.name"
# equals = "twilio"
# channel = "sms"
"""  # noqa: E501 (a setting's line stays whole: tests/unit/test_docs.py reads it)
