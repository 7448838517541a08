"""Versioned migrations: each is applied once, in order, and recorded in schema_migrations.

Types are kept to what Spark and Ibis map one to one (VARCHAR, BIGINT, TIMESTAMP, BOOLEAN);
JSON documents are stored as text so the same queries run on both engines. All times are UTC.
"""

from __future__ import annotations

from dataclasses import dataclass

# The consent choices the events from a seq on carry (a query continued by its caller):
# Segment's ``context.consent.categoryPreferences``, ``{category: true|false}``, categories
# in lower case; anything but true and false is no choice.
CONSENT_CHOICES_SQL = """
    SELECT e.seq, lower(k.key), k.value::BOOLEAN
    FROM events e, json_each(json_extract(e.context, '$.consent.categoryPreferences')) k
    WHERE e.context LIKE '%categoryPreferences%' AND json_type(k.value) = 'BOOLEAN'
"""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    statements: tuple[str, ...]


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "events, quarantine, api keys",
        (
            """
            CREATE TABLE events (
                seq BIGINT NOT NULL,
                message_id VARCHAR NOT NULL,
                id_hash BIGINT NOT NULL,
                type VARCHAR NOT NULL,
                event VARCHAR,
                name VARCHAR,
                user_id VARCHAR,
                anonymous_id VARCHAR,
                previous_id VARCHAR,
                group_id VARCHAR,
                properties VARCHAR,
                traits VARCHAR,
                context VARCHAR,
                integrations VARCHAR,
                timestamp TIMESTAMP NOT NULL,
                original_timestamp TIMESTAMP,
                sent_at TIMESTAMP,
                received_at TIMESTAMP NOT NULL,
                channel VARCHAR NOT NULL,
                source VARCHAR NOT NULL,
                raw VARCHAR NOT NULL
            )
            """,
            "CREATE SEQUENCE quarantine_id_seq START 1",
            """
            CREATE TABLE quarantine (
                id BIGINT PRIMARY KEY DEFAULT nextval('quarantine_id_seq'),
                received_at TIMESTAMP NOT NULL,
                source VARCHAR NOT NULL,
                route VARCHAR NOT NULL,
                kind VARCHAR NOT NULL,
                reasons VARCHAR NOT NULL,
                raw VARCHAR NOT NULL,
                envelope VARCHAR,
                status VARCHAR NOT NULL DEFAULT 'held',
                replayed_at TIMESTAMP
            )
            """,
            """
            CREATE TABLE api_keys (
                id VARCHAR PRIMARY KEY,
                role VARCHAR NOT NULL,
                name VARCHAR,
                prefix VARCHAR NOT NULL,
                key_hash VARCHAR NOT NULL UNIQUE,
                created_at TIMESTAMP NOT NULL,
                revoked_at TIMESTAMP
            )
            """,
        ),
    ),
    Migration(
        2,
        "identity map: identifiers, event identifiers, merge log, rejected links",
        (
            # No primary keys or indexes: DuckDB turns an UPDATE of an indexed table into a
            # delete and insert that can trip its own constraint; uniqueness is kept by the
            # one writer (identity/resolver.py).
            """
            CREATE TABLE identifiers (
                sid BIGINT NOT NULL,
                type VARCHAR NOT NULL,
                value VARCHAR NOT NULL,
                first_seq BIGINT NOT NULL,
                person BIGINT NOT NULL,
                detached BOOLEAN NOT NULL
            )
            """,
            """
            CREATE TABLE event_identifiers (
                seq BIGINT NOT NULL,
                pos SMALLINT NOT NULL,
                sid BIGINT NOT NULL
            )
            """,
            """
            CREATE TABLE identity_merges (
                seq BIGINT,
                message_id VARCHAR,
                created_at TIMESTAMP NOT NULL,
                kind VARCHAR NOT NULL,
                kept BIGINT NOT NULL,
                absorbed BIGINT,
                sid BIGINT NOT NULL,
                note VARCHAR
            )
            """,
            """
            CREATE TABLE identity_rejections (
                seq BIGINT NOT NULL,
                message_id VARCHAR NOT NULL,
                created_at TIMESTAMP NOT NULL,
                person BIGINT NOT NULL,
                other BIGINT NOT NULL,
                sid BIGINT NOT NULL,
                rule VARCHAR NOT NULL
            )
            """,
            "CREATE TABLE identity_state (processed_seq BIGINT NOT NULL)",
            "INSERT INTO identity_state VALUES (0)",
        ),
    ),
    Migration(
        3,
        "probabilistic links and the review list of matched pairs",
        (
            # A link joins two identifiers that share no event (a probabilistic match accepted
            # by its score or by a reviewer). It is kept by value, not by surrogate, so a
            # rebuild (which renumbers surrogates) applies it again; it acts as if it were an
            # event right after ``after_seq``.
            """
            CREATE TABLE identity_links (
                link_id BIGINT NOT NULL,
                after_seq BIGINT NOT NULL,
                type_a VARCHAR NOT NULL,
                value_a VARCHAR NOT NULL,
                type_b VARCHAR NOT NULL,
                value_b VARCHAR NOT NULL,
                source VARCHAR NOT NULL,
                probability DOUBLE,
                created_at TIMESTAMP NOT NULL,
                removed BOOLEAN NOT NULL,
                note VARCHAR
            )
            """,
            """
            CREATE TABLE identity_match_pairs (
                pair_id BIGINT NOT NULL,
                run_id BIGINT NOT NULL,
                type_a VARCHAR NOT NULL,
                value_a VARCHAR NOT NULL,
                type_b VARCHAR NOT NULL,
                value_b VARCHAR NOT NULL,
                probability DOUBLE NOT NULL,
                status VARCHAR NOT NULL,
                created_at TIMESTAMP NOT NULL,
                decided_at TIMESTAMP,
                link_id BIGINT,
                note VARCHAR
            )
            """,
            "ALTER TABLE identity_merges ADD COLUMN link_id BIGINT",
            "ALTER TABLE identity_rejections ADD COLUMN link_id BIGINT",
            "ALTER TABLE identity_rejections ALTER COLUMN message_id DROP NOT NULL",
        ),
    ),
    Migration(
        4,
        "journey events: the narrow, typed copy of events that journey analytics read",
        (
            # One row per event: the fields analyses group and filter by, in types both DuckDB
            # and Spark have. The person is not stored: it comes from the identity map at query
            # time (event_identifiers, identifiers), so merges and rebuilds need no rewrite.
            """
            CREATE TABLE journey_events (
                seq BIGINT NOT NULL,
                ts TIMESTAMP NOT NULL,
                type VARCHAR NOT NULL,
                event VARCHAR NOT NULL,
                channel VARCHAR NOT NULL,
                source VARCHAR NOT NULL,
                path VARCHAR,
                campaign VARCHAR,
                medium VARCHAR
            )
            """,
            # Each event's top-level scalar properties, one row each: property filters as
            # semi-joins, which every engine runs (Ibis has no portable JSON access).
            """
            CREATE TABLE journey_properties (
                seq BIGINT NOT NULL,
                key VARCHAR NOT NULL,
                text_value VARCHAR,
                number_value DOUBLE
            )
            """,
            # Traits an event carries (identify traits, context.traits), the same way: what
            # analyses by person need (a birth date for age groups, a city, a segment).
            """
            CREATE TABLE journey_traits (
                seq BIGINT NOT NULL,
                key VARCHAR NOT NULL,
                text_value VARCHAR,
                number_value DOUBLE
            )
            """,
        ),
    ),
    Migration(
        5,
        "journey facts: events with their person and stage, and stage entries, kept in step",
        (
            # What every analysis starts from, kept instead of recomputed per query: each
            # event with its person (from the identity map), its anchor identifier (device),
            # its place in the person's events, the stage the person was in, the channel of
            # their event before, and whether it is their first event with its channel (or
            # name) in that stage (the journey map counts persons with these). Derived per
            # person: when the identity map moves identifiers between persons, or a person
            # gets new events, that person's rows are computed again (journeys/store.py).
            # Columns are nullable (unlike journey_events): Ibis unions need equal schemas,
            # and outer joins give nulls.
            """
            CREATE TABLE journey_facts (
                seq BIGINT,
                ts TIMESTAMP,
                type VARCHAR,
                event VARCHAR,
                channel VARCHAR,
                source VARCHAR,
                path VARCHAR,
                campaign VARCHAR,
                medium VARCHAR,
                device BIGINT,
                person BIGINT,
                order_in_person BIGINT,
                stage_index BIGINT,
                previous_channel VARCHAR,
                first_channel_in_stage BOOLEAN,
                first_event_in_stage BOOLEAN
            )
            """,
            """
            CREATE TABLE journey_stage_entries (
                person BIGINT,
                stage VARCHAR,
                stage_index BIGINT,
                entered_at TIMESTAMP,
                entered_seq BIGINT,
                channel VARCHAR,
                event VARCHAR
            )
            """,
            # The identity map as the facts last saw it: the difference names the persons
            # whose rows must be derived again.
            "CREATE TABLE journey_persons (sid BIGINT NOT NULL, person BIGINT NOT NULL)",
            # The events of the persons being derived again, while they are.
            """
            CREATE TABLE journey_scratch (
                seq BIGINT,
                ts TIMESTAMP,
                type VARCHAR,
                event VARCHAR,
                channel VARCHAR,
                source VARCHAR,
                path VARCHAR,
                campaign VARCHAR,
                medium VARCHAR,
                device BIGINT,
                person BIGINT
            )
            """,
            "CREATE TABLE journey_changed (person BIGINT NOT NULL)",
            # Which stage model and which identity map generation the facts were derived with,
            # and up to which journey event.
            """
            CREATE TABLE journey_state (
                model VARCHAR NOT NULL,
                generation BIGINT NOT NULL,
                facts_seq BIGINT NOT NULL
            )
            """,
            # A rebuild of the identity map renumbers what it likes: it starts a new generation.
            "ALTER TABLE identity_state ADD COLUMN generation BIGINT DEFAULT 0",
        ),
    ),
    Migration(
        6,
        "privacy: consent choices, suppressed identifiers, subject requests, import rejects",
        (
            # Each consent choice an event carries (Segment's context.consent
            # .categoryPreferences): written with the event (warehouse/events.py), read by
            # the profile (state and history), the journey analyses (who denied analytics)
            # and every consent check.
            """
            CREATE TABLE consent_choices (
                seq BIGINT NOT NULL,
                category VARCHAR NOT NULL,
                granted BOOLEAN NOT NULL
            )
            """,
            f"INSERT INTO consent_choices {CONSENT_CHOICES_SQL} AND e.seq >= 0",
            # Identifiers erased, kept only as keyed hashes (HMAC-SHA256 with the data
            # directory's own key): the collector drops later events that carry them.
            """
            CREATE TABLE suppressions (
                hash VARCHAR NOT NULL,
                request_id BIGINT,
                created_at TIMESTAMP NOT NULL,
                lifted_at TIMESTAMP,
                lifted_by VARCHAR
            )
            """,
            "CREATE TABLE suppressed_events (day DATE NOT NULL, events BIGINT NOT NULL)",
            # Access and erasure requests: status, times and what was done (counts, never
            # the data). ``subject`` is the key asked for while the request is open, and
            # person:N once it is done (an erased person's identifiers are kept nowhere).
            "CREATE SEQUENCE privacy_request_id START 1",
            """
            CREATE TABLE privacy_requests (
                id BIGINT PRIMARY KEY DEFAULT nextval('privacy_request_id'),
                kind VARCHAR NOT NULL,
                subject VARCHAR NOT NULL,
                status VARCHAR NOT NULL,
                received_at TIMESTAMP NOT NULL,
                due_at TIMESTAMP NOT NULL,
                done_at TIMESTAMP,
                requested_by VARCHAR,
                note VARCHAR,
                outcome VARCHAR
            )
            """,
            # Where imports wrote the lines they rejected: erasure rewrites those files too.
            """
            CREATE TABLE import_rejects (
                path VARCHAR NOT NULL,
                written_at TIMESTAMP NOT NULL
            )
            """,
        ),
    ),
    Migration(
        7,
        "access: dashboard users and the audit log with its hash chain",
        (
            # Operators of the dashboard. Only an argon2 hash of each password; names are
            # kept in lower case and unique (by the one writer: access/users.py), no index
            # (see migration 2).
            """
            CREATE TABLE users (
                id VARCHAR NOT NULL,
                name VARCHAR NOT NULL,
                role VARCHAR NOT NULL,
                password_hash VARCHAR NOT NULL,
                created_at TIMESTAMP NOT NULL,
                changed_at TIMESTAMP NOT NULL,
                password_changed_at TIMESTAMP NOT NULL,
                last_signin_at TIMESTAMP,
                disabled_at TIMESTAMP
            )
            """,
            # Append-only: who did what to which target, when and from where. Each line's
            # hash covers the previous line's hash and its own fields (access/audit.py).
            # Targets name persons by number (person:17), never by an identifier's value.
            """
            CREATE TABLE audit_log (
                seq BIGINT NOT NULL,
                logged_at TIMESTAMP NOT NULL,
                actor VARCHAR NOT NULL,
                action VARCHAR NOT NULL,
                target VARCHAR,
                origin VARCHAR,
                detail VARCHAR,
                prev_hash VARCHAR NOT NULL,
                hash VARCHAR NOT NULL
            )
            """,
            # The chain's head: the last line's number and hash, written with every append,
            # so that lines cut off the end are noticed too.
            "CREATE TABLE audit_head (seq BIGINT NOT NULL, hash VARCHAR NOT NULL)",
            f"INSERT INTO audit_head VALUES (0, '{'0' * 64}')",
        ),
    ),
    Migration(
        8,
        "write keys scoped to a source",
        # NULL: the key's events have its id as their source (keys made before, as ever).
        ("ALTER TABLE api_keys ADD COLUMN source VARCHAR",),
    ),
    Migration(
        9,
        "predictions: model cards of every training run, and each person's latest scores",
        (
            # One card per training run, kept whether it succeeded or not: the kind and
            # version of the model, the data window it learnt from (days, UTC, both ends
            # included), the settings and period unit it used, its parameters and metrics
            # (JSON text), and its status (trained, or failed with the reason). The newest
            # trained card of a kind is the model in use; a failed run changes nothing else.
            "CREATE SEQUENCE prediction_model_id START 1",
            """
            CREATE TABLE prediction_models (
                id BIGINT PRIMARY KEY DEFAULT nextval('prediction_model_id'),
                kind VARCHAR NOT NULL,
                version VARCHAR NOT NULL,
                trained_at TIMESTAMP NOT NULL,
                data_from DATE,
                data_until DATE NOT NULL,
                period VARCHAR NOT NULL,
                features VARCHAR NOT NULL,
                parameters VARCHAR,
                metrics VARCHAR,
                status VARCHAR NOT NULL,
                message VARCHAR
            )
            """,
            # Each person's figures from the latest scoring (one row a person), with the
            # model that made them and when; the RFM summary they were computed from is kept
            # beside them (periods in the model's unit).
            """
            CREATE TABLE predictions (
                person BIGINT NOT NULL,
                model_id BIGINT NOT NULL,
                scored_at TIMESTAMP NOT NULL,
                frequency BIGINT NOT NULL,
                recency DOUBLE NOT NULL,
                age DOUBLE NOT NULL,
                average_order_value DOUBLE,
                p_alive DOUBLE NOT NULL,
                expected_purchases_30d DOUBLE NOT NULL,
                expected_purchases_90d DOUBLE NOT NULL,
                expected_purchases_365d DOUBLE NOT NULL,
                expected_order_value DOUBLE,
                predicted_clv_12m DOUBLE
            )
            """,
        ),
    ),
    Migration(
        10,
        "churn risk: each person's latest churn scores, and the fitted estimators",
        (
            # Each person's churn risk from the latest scoring (one row a person): the
            # probability of no activity in the window after scoring, its percentile among
            # the persons scored, and the features that pushed it up or down (JSON: the base
            # risk and a list of {feature, value, points}, biggest first), with the model and
            # the time; the furthest stage entered and the channel most used in the window
            # before (null: none), for the figures by stage and channel.
            """
            CREATE TABLE churn_scores (
                person BIGINT NOT NULL,
                model_id BIGINT NOT NULL,
                scored_at TIMESTAMP NOT NULL,
                churn_risk DOUBLE NOT NULL,
                churn_percentile DOUBLE NOT NULL,
                contributions VARCHAR NOT NULL,
                stage VARCHAR,
                channel VARCHAR
            )
            """,
            # The fitted estimator of a model card that needs one to score (churn risk), as
            # joblib bytes with their SHA-256 (the card names it too); kept
            # in the warehouse, so it is written in the card's transaction, backed up and
            # copied with the data, and never read from a file anyone else could have put.
            """
            CREATE TABLE prediction_estimators (
                model_id BIGINT PRIMARY KEY,
                format VARCHAR NOT NULL,
                sha256 VARCHAR NOT NULL,
                estimator BLOB NOT NULL
            )
            """,
        ),
    ),
    Migration(
        11,
        "each matched pair's evidence",
        # JSON: the comparison levels and match weights that scored the pair (labels and
        # numbers, never values); NULL for pairs scored before.
        ("ALTER TABLE identity_match_pairs ADD COLUMN evidence VARCHAR",),
    ),
    Migration(
        12,
        "activation: destinations, the outbox of messages to them, and the delivery log",
        (
            # Destinations: where messages go. ``config`` holds what may be shown (a URL, a
            # host, a directory); ``secrets`` what may not (a signing secret, a write key, a
            # password), shown once when the destination is made and never again.
            "CREATE SEQUENCE destination_id_seq START 1",
            """
            CREATE TABLE destinations (
                id BIGINT NOT NULL,
                kind VARCHAR NOT NULL,
                name VARCHAR NOT NULL,
                config VARCHAR NOT NULL,
                secrets VARCHAR NOT NULL,
                purposes VARCHAR NOT NULL,
                state VARCHAR NOT NULL,
                state_reason VARCHAR,
                created_at TIMESTAMP NOT NULL,
                changed_at TIMESTAMP NOT NULL,
                forwarded_seq BIGINT
            )
            """,
            # ``forwarded_seq``: for a collector that collected events are forwarded to, the
            # last event put in the outbox (moved in the same transaction as the messages).
            # The durable outbox: a message is written in the same transaction as the change
            # that caused it, and leaves ``pending`` only when delivered or dead (a dead
            # letter, replayable). ``seq`` orders the messages of one ordering key (a person)
            # per destination. No indexes (see migration 2): one writer keeps ids unique.
            "CREATE SEQUENCE outbox_seq START 1",
            """
            CREATE TABLE outbox (
                seq BIGINT NOT NULL,
                message_id VARCHAR NOT NULL,
                destination BIGINT NOT NULL,
                person BIGINT,
                ordering_key VARCHAR NOT NULL,
                payload VARCHAR NOT NULL,
                created_at TIMESTAMP NOT NULL,
                next_attempt_at TIMESTAMP NOT NULL,
                attempts INTEGER NOT NULL,
                state VARCHAR NOT NULL,
                last_status INTEGER,
                last_error VARCHAR,
                done_at TIMESTAMP
            )
            """,
            # Every attempt: when, the answer's status, how long it took, and what failed.
            """
            CREATE TABLE delivery_attempts (
                message_id VARCHAR NOT NULL,
                destination BIGINT NOT NULL,
                person BIGINT,
                attempt INTEGER NOT NULL,
                attempted_at TIMESTAMP NOT NULL,
                status INTEGER,
                outcome VARCHAR NOT NULL,
                latency_ms DOUBLE NOT NULL,
                error VARCHAR
            )
            """,
        ),
    ),
    Migration(
        13,
        "predictions: each person's next best products and next best action",
        (
            # The items a person is likeliest to buy next from the latest scoring (JSON: a
            # list of {item, score}, best first; never an item they bought), with the model
            # card of the fit that chose them (its method: co-occurrence or factorisation).
            """
            CREATE TABLE next_best_products (
                person BIGINT NOT NULL,
                model_id BIGINT NOT NULL,
                scored_at TIMESTAMP NOT NULL,
                method VARCHAR NOT NULL,
                products VARCHAR NOT NULL
            )
            """,
            # The next best action from the latest scoring: the name of the highest-priority
            # rule of next_best_actions that holds for the person's figures, and every rule
            # that holds (JSON: {name, action, channel, priority, reason, because}), with the
            # version of the rules file (the start of its SHA-256).
            """
            CREATE TABLE next_best_actions (
                person BIGINT NOT NULL,
                scored_at TIMESTAMP NOT NULL,
                rules_version VARCHAR NOT NULL,
                action VARCHAR NOT NULL,
                actions VARCHAR NOT NULL
            )
            """,
        ),
    ),
    Migration(
        14,
        "churn reasons from each person's features, when they are asked for",
        (
            # Churn scoring keeps each person's features (in the order of the model card's
            # features; null: missing) and explains a person's risk when it is asked for:
            # tree SHAP for everyone at scoring would take ten minutes for 1,000,000
            # persons. Scores made before keep their reasons in contributions.
            "ALTER TABLE churn_scores ADD COLUMN features DOUBLE[]",
            "ALTER TABLE churn_scores ALTER COLUMN contributions DROP NOT NULL",
        ),
    ),
    Migration(
        15,
        "the events' sequence: a seq is never given twice, even after the newest are deleted",
        (
            # The last seq given (written with every batch): an erasure or retention that
            # deletes the newest events must not hand their numbers out again, for the
            # identity map, the journey tables and an export go by "every seq above N".
            # Started at the highest seq any of them has seen.
            "CREATE TABLE event_sequence (last_seq BIGINT NOT NULL)",
            """
            INSERT INTO event_sequence SELECT greatest(
                (SELECT coalesce(max(seq), 0) FROM events),
                (SELECT coalesce(max(processed_seq), 0) FROM identity_state),
                (SELECT coalesce(max(seq), 0) FROM journey_events)
            )
            """,
        ),
    ),
    Migration(
        16,
        "the directories the tables were exported to as Parquet",
        # touchpoints export --to DIR, or the server's export_dir: erasure and retention
        # write again the files there that held what they removed (export/service.py).
        (
            """
            CREATE TABLE export_targets (
                path VARCHAR NOT NULL,
                first_at TIMESTAMP NOT NULL,
                last_at TIMESTAMP NOT NULL
            )
            """,
        ),
    ),
    Migration(
        17,
        "the identifier rules the stored event identifiers were found by",
        # A fingerprint of the rules (IdentifierExtractor.fingerprint); NULL: unknown, or
        # found by more than one set of rules. A rebuild reuses the stored event identifiers
        # when it equals today's rules, and extracts them from every event again otherwise.
        ("ALTER TABLE identity_state ADD COLUMN rules VARCHAR",),
    ),
    Migration(
        18,
        "audiences and computed traits: definitions, values, members, their history and sizes",
        (
            # Definitions, as validated JSON (activate/audiences/conditions.py, traits.py);
            # ``key`` is unique (kept by the one writer: no index, see migration 2).
            "CREATE SEQUENCE computed_trait_id START 1",
            """
            CREATE TABLE computed_traits (
                id BIGINT NOT NULL,
                key VARCHAR NOT NULL,
                name VARCHAR NOT NULL,
                definition VARCHAR NOT NULL,
                created_at TIMESTAMP NOT NULL,
                changed_at TIMESTAMP NOT NULL,
                evaluated_at TIMESTAMP
            )
            """,
            # Each person's value of each computed trait: ``value`` as JSON (a number, a text,
            # a list), and as a number or text for tests. Only persons with a value have a row.
            """
            CREATE TABLE computed_trait_values (
                trait_id BIGINT NOT NULL,
                person BIGINT NOT NULL,
                value VARCHAR NOT NULL,
                number_value DOUBLE,
                text_value VARCHAR,
                computed_at TIMESTAMP NOT NULL
            )
            """,
            "CREATE SEQUENCE audience_id START 1",
            """
            CREATE TABLE audiences (
                id BIGINT NOT NULL,
                key VARCHAR NOT NULL,
                name VARCHAR NOT NULL,
                definition VARCHAR NOT NULL,
                created_at TIMESTAMP NOT NULL,
                changed_at TIMESTAMP NOT NULL,
                evaluated_at TIMESTAMP
            )
            """,
            # Who is in each audience now, since when; and every entry and exit.
            """
            CREATE TABLE audience_members (
                audience_id BIGINT NOT NULL,
                person BIGINT NOT NULL,
                entered_at TIMESTAMP NOT NULL
            )
            """,
            # ``seq`` orders them (one evaluation's changes share their moment).
            "CREATE SEQUENCE audience_change_seq START 1",
            """
            CREATE TABLE audience_changes (
                seq BIGINT NOT NULL,
                audience_id BIGINT NOT NULL,
                person BIGINT NOT NULL,
                change VARCHAR NOT NULL,
                changed_at TIMESTAMP NOT NULL
            )
            """,
            # Each audience's size at the end of each day (UTC), and how many entered and
            # exited that day: counts, no person.
            """
            CREATE TABLE audience_sizes (
                audience_id BIGINT NOT NULL,
                day DATE NOT NULL,
                size BIGINT NOT NULL,
                entered BIGINT NOT NULL,
                exited BIGINT NOT NULL
            )
            """,
            # Destinations an audience's membership is sent to, and how (identify: the
            # audience's key as a trait, true or false; track: Audience Entered / Exited).
            """
            CREATE TABLE audience_destinations (
                audience_id BIGINT NOT NULL,
                destination_id BIGINT NOT NULL,
                mode VARCHAR NOT NULL,
                linked_at TIMESTAMP NOT NULL,
                synced_at TIMESTAMP,
                sent BIGINT NOT NULL
            )
            """,
            # The identity map as the last evaluation saw it (the journey tables' persons),
            # and the last event it saw: their differences name the persons to evaluate again.
            # ``persons_hash``: a checksum of that map (the sum of a hash of each identifier
            # and its person), so an evaluation after new events only need not compare it.
            "CREATE TABLE activation_persons (sid BIGINT NOT NULL, person BIGINT NOT NULL)",
            """
            CREATE TABLE activation_state (
                evaluated_seq BIGINT NOT NULL,
                evaluated_at TIMESTAMP,
                persons_hash BIGINT
            )
            """,
            "INSERT INTO activation_state VALUES (0, NULL, NULL)",
        ),
    ),
    Migration(
        19,
        "the service assistant: conversations and their messages",
        (
            # A conversation with the assistant (and the person it was handed to). The
            # visitor is the identifier the client gave first (anonymous_id of the widget's
            # cookie, the phone of an SMS or a call, a signed-in user id), normalised as the
            # identity map stores it: export and erasure find the rows by it. ``person`` is
            # who the identity map knew it as; ``verified`` how the person was proven
            # (signed_in, code). ``summary``: the handover summary (JSON).
            """
            CREATE TABLE assistant_conversations (
                id VARCHAR NOT NULL,
                channel VARCHAR NOT NULL,
                visitor_type VARCHAR NOT NULL,
                visitor_value VARCHAR NOT NULL,
                person BIGINT,
                verified VARCHAR,
                verified_person BIGINT,
                language VARCHAR,
                state VARCHAR NOT NULL,
                intent VARCHAR,
                team VARCHAR,
                priority VARCHAR,
                rule VARCHAR,
                handover_intent VARCHAR,
                summary VARCHAR,
                agent VARCHAR,
                outcome VARCHAR,
                rating INTEGER,
                messages INTEGER NOT NULL,
                started_at TIMESTAMP NOT NULL,
                updated_at TIMESTAMP NOT NULL,
                handed_over_at TIMESTAMP,
                first_human_at TIMESTAMP,
                closed_at TIMESTAMP
            )
            """,
            # Every message, in and out. ``text`` only with the person's consent to keep
            # transcripts (and redacted when assistant_redact is on); what was understood
            # is kept either way (it is also on the message's event).
            """
            CREATE TABLE assistant_messages (
                conversation VARCHAR NOT NULL,
                number INTEGER NOT NULL,
                visitor_type VARCHAR NOT NULL,
                visitor_value VARCHAR NOT NULL,
                sent_at TIMESTAMP NOT NULL,
                author VARCHAR NOT NULL,
                agent VARCHAR,
                text VARCHAR,
                intent VARCHAR,
                confidence DOUBLE,
                language VARCHAR,
                sentiment VARCHAR,
                sentiment_score DOUBLE,
                outcome VARCHAR,
                source VARCHAR
            )
            """,
        ),
    ),
    Migration(
        20,
        "triggers: definitions, firings per person, pending delays, how far they have read",
        (
            # Definitions, as validated JSON (activate/triggers/definition.py); ``key`` is
            # unique (kept by the one writer).
            "CREATE SEQUENCE trigger_id START 1",
            """
            CREATE TABLE triggers (
                id BIGINT NOT NULL,
                key VARCHAR NOT NULL,
                name VARCHAR NOT NULL,
                definition VARCHAR NOT NULL,
                enabled BOOLEAN NOT NULL,
                created_at TIMESTAMP NOT NULL,
                changed_at TIMESTAMP NOT NULL
            )
            """,
            # Each time a trigger fired for a person: the cause (an event's seq, an audience
            # change's seq or a stage entry's event), the steps done so far and its state
            # (waiting: a delay is pending; done; stopped: a re-checked condition failed).
            # The frequency cap counts these rows.
            "CREATE SEQUENCE trigger_firing_id START 1",
            """
            CREATE TABLE trigger_firings (
                id BIGINT NOT NULL,
                trigger_id BIGINT NOT NULL,
                person BIGINT NOT NULL,
                cause VARCHAR NOT NULL,
                cause_seq BIGINT,
                fired_at TIMESTAMP NOT NULL,
                state VARCHAR NOT NULL,
                steps_done BIGINT NOT NULL,
                detail VARCHAR,
                changed_at TIMESTAMP NOT NULL
            )
            """,
            # Delays waiting: the firing goes on at ``step`` once ``due_at`` has passed (kept
            # here, so a delay survives a restart).
            """
            CREATE TABLE trigger_delays (
                firing_id BIGINT NOT NULL,
                trigger_id BIGINT NOT NULL,
                person BIGINT NOT NULL,
                step BIGINT NOT NULL,
                due_at TIMESTAMP NOT NULL
            )
            """,
            # How far triggers have read the journey facts (events and stage entries, by
            # event seq) and the audiences' entries and exits (by their seq).
            """
            CREATE TABLE trigger_state (
                events_seq BIGINT NOT NULL,
                audience_seq BIGINT NOT NULL
            )
            """,
            """
            INSERT INTO trigger_state SELECT
                (SELECT coalesce(max(last_seq), 0) FROM event_sequence),
                (SELECT coalesce(max(seq), 0) FROM audience_changes)
            """,
        ),
    ),
    Migration(
        21,
        "personalisation: placements and the decision log",
        (
            # Placements as validated JSON (activate/decide/definitions.py); ``key`` is unique
            # (kept by the one writer).
            "CREATE SEQUENCE placement_id START 1",
            """
            CREATE TABLE placements (
                id BIGINT NOT NULL,
                key VARCHAR NOT NULL,
                name VARCHAR NOT NULL,
                definition VARCHAR NOT NULL,
                created_at TIMESTAMP NOT NULL,
                changed_at TIMESTAMP NOT NULL
            )
            """,
            # Each decision (an exposure): the person by number at the time, the rule whose
            # content was shown (NULL: the default), the strategy, why (rule, default,
            # control, consent) and whether the person was held out in the control group.
            """
            CREATE TABLE decisions (
                placement_id BIGINT NOT NULL,
                person BIGINT NOT NULL,
                rule VARCHAR,
                strategy VARCHAR NOT NULL,
                reason VARCHAR NOT NULL,
                control BOOLEAN NOT NULL,
                decided_at TIMESTAMP NOT NULL
            )
            """,
        ),
    ),
    Migration(
        22,
        "audience files: a file destination's snapshot of an audience's members, on a schedule",
        (
            # A link of mode ``file`` writes the audience's members as one whole file on a
            # schedule (``every 15 minutes``, ``every 2 hours``, ``daily at 06:00``, UTC):
            # the schedule as written (normalised), the next run, and the rows of the last one.
            "ALTER TABLE audience_destinations ADD COLUMN schedule VARCHAR",
            "ALTER TABLE audience_destinations ADD COLUMN next_run_at TIMESTAMP",
            "ALTER TABLE audience_destinations ADD COLUMN last_rows BIGINT",
        ),
    ),
    Migration(
        23,
        "the directories of identity maps computed outside touchpoints and loaded",
        # touchpoints identity load OUT: OUT's persons files hold identifiers' values, so an
        # erasure writes them again without the person (identity/outside.py reach_results).
        (
            """
            CREATE TABLE identity_results (
                path VARCHAR PRIMARY KEY,
                loaded_at TIMESTAMP NOT NULL
            )
            """,
        ),
    ),
    Migration(
        24,
        "each stage entry's progress kept with it: the next entry, a later stage, the next one",
        (
            # What the journey map asked a self-join and a window of every entry on each
            # analysis (0.5 s at 10.6 M events), derived with the entries: the stage of the
            # person's next entry (journey order), when a later stage was first entered
            # after it, and whether the next stage (index + 1) was.
            "ALTER TABLE journey_stage_entries ADD COLUMN next_index BIGINT",
            "ALTER TABLE journey_stage_entries ADD COLUMN went_on_at TIMESTAMP",
            "ALTER TABLE journey_stage_entries ADD COLUMN to_next BOOLEAN",
            # The entries kept so far have none of it: the next refresh derives every
            # person again (a state naming no model).
            "DELETE FROM journey_state",
        ),
    ),
    Migration(
        25,
        "each person's latest value of each trait, kept with the journey facts",
        (
            # What the breakdowns by age group or by a trait (funnels, the channel mix, the
            # map's segments) asked a join of every trait value with the facts and a window
            # for (0.14-0.17 s at 10.6 M events), derived per person with the facts.
            """
            CREATE TABLE journey_latest_traits (
                person BIGINT,
                key VARCHAR,
                text_value VARCHAR,
                number_value DOUBLE
            )
            """,
            # Empty until derived: the next refresh derives every person again.
            "DELETE FROM journey_state",
        ),
    ),
    Migration(
        26,
        "each person's null-path moves (channel and campaign), kept with the journey facts",
        (
            # What attribution counted with a window over every null-path touch (0.75-0.86 s
            # of 1.47 s at 10.6 M events), derived per person with the facts for the
            # question asked unless told otherwise (journeys.attribution.kept_null_moves).
            """
            CREATE TABLE journey_null_moves (
                person BIGINT,
                by_key VARCHAR,
                from_state VARCHAR,
                to_state VARCHAR,
                moves BIGINT
            )
            """,
            # Empty until derived: the next refresh derives every person again.
            "DELETE FROM journey_state",
        ),
    ),
)

LATEST_VERSION = MIGRATIONS[-1].version
