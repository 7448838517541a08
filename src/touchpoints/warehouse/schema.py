"""Versioned migrations: each is applied once, in order, and recorded in schema_migrations.

Types are kept to what Spark and Ibis map one to one (VARCHAR, BIGINT, TIMESTAMP, BOOLEAN);
JSON documents are stored as text so the same queries run on both engines. All times are UTC.
"""

from __future__ import annotations

from dataclasses import dataclass


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
)

LATEST_VERSION = MIGRATIONS[-1].version
