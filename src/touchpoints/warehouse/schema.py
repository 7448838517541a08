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
)

LATEST_VERSION = MIGRATIONS[-1].version
