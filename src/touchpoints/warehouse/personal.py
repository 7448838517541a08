"""The registry of personal data: every table that can hold data about a customer, and how
its rows find their person.

A person is found through their identifiers (``identifiers.sid``); from those, every table
below names the column(s) that lead to the person's rows:

- ``seq``: the rows of the person's events (the events that carry one of their identifiers,
  at any place);
- ``sid``: rows naming one of their identifiers by its surrogate;
- ``person``: rows naming the person (or a person they were merged from) by number;
- ``identifier``: rows naming an identifier by its type and value (links, matched pairs);
- ``text``: documents that may mention an identifier's value anywhere (the quarantine keeps
  what was sent, as it was sent).

Access requests (export) and erasure iterate over :data:`PERSONAL`; retention too, by time.
Every other table says why it holds no customer data in :data:`NOT_PERSONAL`. A test fails
when a table exists that is in neither, so a table added later is covered by export and
erasure from its first day: add it to the schema and here, together.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Finder = Literal["seq", "sid", "person", "identifier", "text"]


@dataclass(frozen=True)
class PersonalTable:
    """A table that can hold data about a person, and how its rows find the person."""

    name: str
    finds: Finder
    columns: tuple[str, ...]  # the column(s) that lead to the person, as ``finds`` says
    holds: str  # what it holds about the person, in a phrase (the export's README lists it)
    time: str | None = None  # the column retention judges a row's age by, if any


PERSONAL: tuple[PersonalTable, ...] = (
    PersonalTable(
        "events",
        "seq",
        ("seq",),
        "every event received: the call, its properties, traits and context, as sent",
        time="timestamp",
    ),
    PersonalTable(
        "identifiers",
        "sid",
        ("sid",),
        "the person's identifiers (user id, e-mail, phone, device ids, …) and their person",
    ),
    PersonalTable(
        "event_identifiers",
        "seq",
        ("seq",),
        "which identifiers each of the person's events carried (every row of an identifier "
        "belongs to an event that carries it)",
    ),
    PersonalTable(
        "identity_merges",
        "sid",
        ("sid",),
        "the merge log: which identifier joined (or left) the person, when and why",
    ),
    PersonalTable(
        "identity_rejections",
        "sid",
        ("sid",),
        "links the merge rules refused (e.g. a second user id), with their evidence",
    ),
    PersonalTable(
        "identity_links",
        "identifier",
        ("type_a", "value_a", "type_b", "value_b"),
        "links made by probabilistic matching or a reviewer between two identifiers",
    ),
    PersonalTable(
        "identity_match_pairs",
        "identifier",
        ("type_a", "value_a", "type_b", "value_b"),
        "pairs probabilistic matching scored, with the evidence and the decision on each",
    ),
    PersonalTable(
        "journey_events",
        "seq",
        ("seq",),
        "each event's fields the analyses read (time, name, channel, path, campaign)",
        time="ts",
    ),
    PersonalTable("journey_properties", "seq", ("seq",), "each event's properties, one a row"),
    PersonalTable("journey_traits", "seq", ("seq",), "the traits each event carried, one a row"),
    PersonalTable(
        "journey_facts",
        "seq",
        ("seq",),
        "each event with its person, device, place in the journey and stage",
        time="ts",
    ),
    PersonalTable(
        "journey_stage_entries",
        "person",
        ("person",),
        "the journey stages the person entered, when, through which event and what came next",
    ),
    PersonalTable(
        "journey_latest_traits",
        "person",
        ("person",),
        "the latest value of each of the person's traits, as the analyses' breakdowns read it",
    ),
    PersonalTable(
        "journey_null_moves",
        "person",
        ("person",),
        "the steps between channels (campaigns) of the person's journey since their last order",
    ),
    PersonalTable(
        "journey_persons",
        "sid",
        ("sid",),
        "the identity map as the journey analyses last saw it",
    ),
    PersonalTable(
        "journey_scratch",
        "seq",
        ("seq",),
        "events of persons whose journeys are being derived again (empty between runs)",
    ),
    PersonalTable(
        "journey_changed",
        "person",
        ("person",),
        "persons whose journeys are to be derived again (after an erasure or retention)",
    ),
    PersonalTable(
        "consent_choices",
        "seq",
        ("seq",),
        "the consent choices the person's events carried (category, granted or denied)",
    ),
    PersonalTable(
        "predictions",
        "person",
        ("person",),
        "the person's predicted lifetime value: purchases expected, probability of being a "
        "customer still, order value, with the model and time they were computed",
    ),
    PersonalTable(
        "churn_scores",
        "person",
        ("person",),
        "the person's churn risk: the probability of no activity in the coming window, its "
        "percentile, and the features of their journey it was computed from (what raised or "
        "lowered it is worked out from them when asked)",
    ),
    PersonalTable(
        "next_best_products",
        "person",
        ("person",),
        "the items the person is likeliest to buy next, with their scores, the model and time "
        "they were chosen",
    ),
    PersonalTable(
        "next_best_actions",
        "person",
        ("person",),
        "the next best action for the person (the rules of next_best_actions that held for "
        "their predictions, with the figures that made them hold) and when it was chosen",
    ),
    PersonalTable(
        "quarantine",
        "text",
        ("raw", "envelope"),
        "refused events and request bodies, as they were sent, with the reasons",
        time="received_at",
    ),
    PersonalTable(
        "outbox",
        "person",
        ("person",),
        "messages to destinations (webhooks, collectors, e-mail) about the person: pending, "
        "delivered and dead letters, with what they carry (an audience file's runs list many "
        "persons and are not here: the audiences the person is in are in audience_members)",
    ),
    PersonalTable(
        "computed_trait_values",
        "person",
        ("person",),
        "the person's computed traits (counts, sums, most frequent, first, last, unique "
        "values of their events' properties), with when they were computed",
    ),
    PersonalTable(
        "audience_members",
        "person",
        ("person",),
        "the audiences the person is in now, and since when",
    ),
    PersonalTable(
        "audience_changes",
        "person",
        ("person",),
        "every time the person entered or exited an audience",
        time="changed_at",
    ),
    PersonalTable(
        "activation_persons",
        "sid",
        ("sid",),
        "the identity map as audiences and computed traits were last evaluated with it",
    ),
    PersonalTable(
        "trigger_firings",
        "person",
        ("person",),
        "every time a trigger fired for the person: what caused it (an event, an audience "
        "entered or exited, a journey stage), when, and what it did",
        time="fired_at",
    ),
    PersonalTable(
        "trigger_delays",
        "person",
        ("person",),
        "the triggers waiting for the person (a delay before a condition is checked again)",
    ),
    PersonalTable(
        "assistant_conversations",
        "identifier",
        ("visitor_type", "visitor_value"),
        "conversations with the service assistant and the agents: channel, how the person "
        "was verified, what was understood, the team it went to, the handover summary, the "
        "outcome",
        time="updated_at",
    ),
    PersonalTable(
        "assistant_messages",
        "identifier",
        ("visitor_type", "visitor_value"),
        "each message of those conversations: when, who wrote it, what was understood "
        "(intent, language, sentiment), and its text where the person consented to "
        "transcripts",
        time="sent_at",
    ),
    PersonalTable(
        "delivery_attempts",
        "person",
        ("person",),
        "each attempt to deliver a message about the person: when, the answer, how long",
    ),
    PersonalTable(
        "decisions",
        "person",
        ("person",),
        "what the website or app was told to show the person in each placement (the rule, "
        "or the default), why, whether they were in the control group, and when",
        time="decided_at",
    ),
)

# Tables that hold no data about a customer, and why.
NOT_PERSONAL: dict[str, str] = {
    "schema_migrations": "the versions of the schema applied to this file",
    "api_keys": "operators' API keys: a hash of each secret, its role and name, no customer data",
    "identity_state": (
        "how far the identity map has read the events, and a fingerprint of the identifier "
        "rules it read them by"
    ),
    "event_sequence": "the last event number given (so that none is given twice)",
    "journey_state": "which stage model and identity map the journey facts were derived with",
    "suppressions": (
        "erased identifiers as keyed hashes (HMAC-SHA256 with the data directory's own key): "
        "what honours an erasure by dropping later events, and reveals no value"
    ),
    "suppressed_events": "how many events were dropped per day for carrying one",
    "privacy_requests": (
        "access and erasure requests: status, times and counts; the subject only as person:N, "
        "a number that refers to nothing once the person is erased"
    ),
    "import_rejects": "the paths of files imports wrote rejected lines to (erasure rewrites them)",
    "export_targets": (
        "the directories the tables were exported to as Parquet (erasure and retention "
        "write their files again)"
    ),
    "identity_results": (
        "the directories of identity maps computed outside touchpoints (touchpoints spark "
        "rebuild) and loaded: paths only (erasure writes their files again)"
    ),
    "prediction_models": (
        "model cards: parameters and metrics fitted on all customers together, the data "
        "window and settings; counts and figures about the whole base, none about one person"
    ),
    "prediction_estimators": (
        "fitted churn models (gradient-boosted trees, a logistic regression): split points "
        "between feature values, leaf values averaged over at least 20 persons, coefficients "
        "over all; no row of any one person"
    ),
    "users": (
        "operators' dashboard accounts (name, role, an argon2 hash of the password), "
        "no customer data"
    ),
    "audit_log": (
        "who did what, when and from where: operators' key or user ids, and persons only by "
        "their pseudonymous number (person:17), never an identifier's value or a trait"
    ),
    "audit_head": "the audit log's chain head: the last line's number and hash",
    "computed_traits": "definitions of computed traits (what is counted, over which days)",
    "audiences": "definitions of audiences: conditions, no person",
    "placements": "definitions of placements: rules, their content and conditions, no person",
    "audience_sizes": "each audience's size and entries and exits per day: counts, no person",
    "audience_destinations": (
        "which destinations each audience is sent to, how, and when (a file link's schedule, "
        "its next run and how many rows its last one wrote)"
    ),
    "activation_state": "how far audiences and computed traits have read the events",
    "triggers": "definitions of triggers: what makes them fire and what they do, no person",
    "trigger_state": "how far triggers have read the events and the audiences' changes",
    "destinations": (
        "where messages go (a URL, a host, a directory), their purposes and secrets: "
        "operators' configuration, no customer data"
    ),
}


def registered(name: str) -> PersonalTable | None:
    """The registry's entry for ``name``, or None for a table that holds no personal data."""
    return next((table for table in PERSONAL if table.name == name), None)
