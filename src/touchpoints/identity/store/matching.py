"""Storage of probabilistic matching: the person records it compares, the pairs it found and
the review list (``identity_match_pairs``), and our own statements on the database Splink
works in (normalising the input, checking it, counting pairs, reading the scores).

What Splink runs itself is Splink's business; every statement here, on the warehouse or on
Splink's database, goes through the SQL gateway.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

import duckdb
import pyarrow as pa

from touchpoints.identity.identifiers import Identifier
from touchpoints.warehouse import Warehouse, arrow_sql, registered, run_sql, utc_now

# Where each compared field is found in a person's traits (first path that has a value).
TRAIT_PATHS: dict[str, tuple[str, ...]] = {
    "first_name": ("first_name", "firstName", "firstname"),
    "last_name": ("last_name", "lastName", "lastname"),
    "email": ("email",),
    "phone": ("phone",),
    "birth_date": ("birthday", "birth_date", "birthDate"),
    "street": ("street", "address.street", "address_line1", "address.line1"),
    "postcode": (
        "postal_code",
        "postalCode",
        "address.postal_code",
        "address.postalCode",
        "zip",
    ),
    "city": ("city", "address.city"),
}
FIELDS = tuple(TRAIT_PATHS)
_DATE_FORMATS = ("%Y-%m-%d", "%d.%m.%Y", "%Y%m%d")
# A pair's status as it stands: a pair whose link was removed (unmerged) is "unlinked".
_PAIRS_SQL = """
    SELECT p.pair_id, p.run_id, p.type_a, p.value_a, p.type_b, p.value_b, p.probability,
           CASE WHEN l.removed THEN 'unlinked' ELSE p.status END AS status,
           p.created_at, p.decided_at, p.link_id, p.note, p.evidence
    FROM identity_match_pairs p LEFT JOIN identity_links l USING (link_id)
"""


class StoredPair(NamedTuple):
    pair_id: int
    run_id: int
    a: Identifier
    b: Identifier
    probability: float
    status: str
    created_at: datetime
    decided_at: datetime | None
    link_id: int | None
    note: str | None
    evidence: str | None  # JSON (matching.PAIR_SCHEMA)


class NewPair(NamedTuple):
    a: Identifier
    b: Identifier
    probability: float
    status: str  # linked, refused or review
    link_id: int | None
    note: str | None
    evidence: str | None = None


# -- the person records ----------------------------------------------------------------------
def _field_sql(field: str) -> str:
    paths = TRAIT_PATHS[field]
    found = ", ".join(
        [f"json_extract_string(e.traits, '$.{p}')" for p in paths]
        + [f"json_extract_string(e.context, '$.traits.{p}')" for p in paths]
    )
    value = f"nullif(trim(coalesce({found})), '')"
    if field == "birth_date":
        parsed = ", ".join(f"try_strptime(left({value}, 10), '{f}')" for f in _DATE_FORMATS)
        return f"strftime(coalesce({parsed}), '%Y-%m-%d')"
    return value


def person_records_sql(priorities: dict[str, int], persons: bool = False) -> str:
    """One record per person with an e-mail, a phone, or two of first name, last name and
    birth date (a CRM export's duplicate may lack one of them): the latest value of each field.

    With ``persons``, only the persons given as the one parameter (a BIGINT list)."""
    ranks = " ".join(f"WHEN '{t}' THEN {int(n)}" for t, n in sorted(priorities.items()))
    fields = ",\n".join(f"{_field_sql(f)} AS {f}" for f in FIELDS)
    latest = ",\n".join(
        f"arg_max({f}, (timestamp, seq)) FILTER (WHERE {f} IS NOT NULL) AS {f}" for f in FIELDS
    )
    only = "AND i.person IN (SELECT unnest(?::BIGINT[]))" if persons else ""
    return f"""
        WITH ev AS (
            SELECT i.person, e.timestamp, e.seq, {fields}
            FROM events e
            JOIN event_identifiers ei ON ei.seq = e.seq AND ei.pos = 0
            JOIN identifiers i ON i.sid = ei.sid
            WHERE (e.traits IS NOT NULL OR e.context LIKE '%"traits"%') {only}
        ),
        latest AS (SELECT person, {latest} FROM ev GROUP BY person),
        named AS (
            SELECT person,
                   arg_min(type || ':' || value, (CASE type {ranks} ELSE 1000 END, sid))
                       AS record_id
            FROM identifiers WHERE NOT detached GROUP BY person
        )
        SELECT n.record_id, l.person, {", ".join(f"l.{f}" for f in FIELDS)}
        FROM latest l JOIN named n USING (person)
        WHERE l.email IS NOT NULL OR l.phone IS NOT NULL
           OR (l.first_name IS NOT NULL)::INT + (l.last_name IS NOT NULL)::INT
              + (l.birth_date IS NOT NULL)::INT >= 2
        ORDER BY n.record_id
    """


class MatchStore:
    """The records matching reads and the pairs it keeps, in one warehouse."""

    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse

    def records(self, priorities: dict[str, int], persons: list[int] | None = None) -> pa.Table:
        """(record_id, person, one column per field) of every person, or of ``persons``."""
        sql = person_records_sql(priorities, persons is not None)
        return self.warehouse.fetch_arrow(sql, [persons] if persons is not None else None)

    def next_run_id(self) -> int:
        sql = "SELECT coalesce(max(run_id), 0) FROM identity_match_pairs"
        return 1 + int(self.warehouse.scalar(sql))

    def known_pairs(self) -> set[tuple[str, str]]:
        """(``type:value``, ``type:value``) of every pair on record, whatever its status."""
        return {
            (f"{ta}:{va}", f"{tb}:{vb}")
            for ta, va, tb, vb in self.warehouse.fetchall(
                "SELECT type_a, value_a, type_b, value_b FROM identity_match_pairs"
            )
        }

    def add_pairs(self, run_id: int, pairs: Sequence[NewPair]) -> None:
        """Keep one run's pairs (one Arrow batch); decided now unless left for review."""
        if not pairs:
            return
        first = 1 + int(
            self.warehouse.scalar("SELECT coalesce(max(pair_id), 0) FROM identity_match_pairs")
        )
        now = utc_now()
        table = pa.table(
            {
                "pair_id": pa.array(range(first, first + len(pairs)), pa.int64()),
                "run_id": pa.array([run_id] * len(pairs), pa.int64()),
                "type_a": pa.array([p.a.type for p in pairs], pa.string()),
                "value_a": pa.array([p.a.value for p in pairs], pa.string()),
                "type_b": pa.array([p.b.type for p in pairs], pa.string()),
                "value_b": pa.array([p.b.value for p in pairs], pa.string()),
                "probability": pa.array([p.probability for p in pairs], pa.float64()),
                "status": pa.array([p.status for p in pairs], pa.string()),
                "created_at": pa.array([now] * len(pairs), pa.timestamp("us")),
                "decided_at": pa.array(
                    [now if p.status != "review" else None for p in pairs], pa.timestamp("us")
                ),
                "link_id": pa.array([p.link_id for p in pairs], pa.int64()),
                "note": pa.array([p.note for p in pairs], pa.string()),
                "evidence": pa.array([p.evidence for p in pairs], pa.string()),
            }
        )
        self.warehouse.insert_arrow("identity_match_pairs", ", ".join(table.column_names), table)

    def pairs(
        self, status: str = "review", limit: int = 50, offset: int = 0
    ) -> tuple[int, list[StoredPair]]:
        """(how many, a page of) pairs with ``status`` ("all": any), most probable first."""
        where = "" if status == "all" else "WHERE status = ?"
        params: list[Any] = [] if status == "all" else [status]
        total = int(self.warehouse.scalar(f"SELECT count(*) FROM ({_PAIRS_SQL}) {where}", params))
        rows = self.warehouse.fetchall(
            f"SELECT * FROM ({_PAIRS_SQL}) {where} "
            "ORDER BY probability DESC, pair_id LIMIT ? OFFSET ?",
            [*params, limit, offset],
        )
        return total, [_pair(row) for row in rows]

    def pair(self, pair_id: int) -> StoredPair | None:
        rows = self.warehouse.fetchall(f"SELECT * FROM ({_PAIRS_SQL}) WHERE pair_id = ?", [pair_id])
        return _pair(rows[0]) if rows else None

    def decide(self, pair_id: int, status: str, link_id: int | None, note: str | None) -> None:
        self.warehouse.run(
            "UPDATE identity_match_pairs SET status = ?, decided_at = ?, link_id = ?, note = ? "
            "WHERE pair_id = ?",
            [status, utc_now(), link_id, note, pair_id],
        )


def _pair(row: Sequence[Any]) -> StoredPair:
    (pair_id, run_id, type_a, value_a, type_b, value_b, probability, status) = row[:8]
    created_at, decided_at, link_id, note, evidence = row[8:]
    return StoredPair(
        pair_id,
        run_id,
        Identifier(type_a, value_a),
        Identifier(type_b, value_b),
        probability,
        status,
        created_at,
        decided_at,
        link_id,
        note,
        evidence,
    )


# -- our statements on Splink's database -------------------------------------------------------
def progress_bar(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether DuckDB shows its progress bar on ``con`` (Splink's work turns it off)."""
    return bool(_scalar(con, "SELECT current_setting('enable_progress_bar')"))


def set_progress_bar(con: duckdb.DuckDBPyConnection, on: bool) -> None:
    run_sql(con, f"SET enable_progress_bar = {bool(on)}")


def normalise_records(
    con: duckdb.DuckDBPyConnection, records: pa.Table, target: str, raw: str, region_code: int
) -> None:
    """``records`` into the temporary table ``target``, cleaned (see :func:`normalise_sql`),
    through the Arrow table registered as ``raw`` for the one statement."""
    with registered(con, raw, records):
        run_sql(con, normalise_sql(raw, target, records.column_names, region_code))


def normalise_sql(source: str, target: str, present: list[str], region_code: int) -> str:
    """One set-based step: every column as text, cleaned; absent columns as NULL; national
    phone numbers get the country code ``region_code``."""

    def text(column: str) -> str:
        return f"CAST({column} AS VARCHAR)" if column in present else "CAST(NULL AS VARCHAR)"

    def words(column: str) -> str:
        return f"NULLIF(lower(trim(regexp_replace({text(column)}, '\\s+', ' ', 'g'))), '')"

    def name(column: str) -> str:
        return f"NULLIF({german_name_sql(text(column))}, '')"

    return f"""
        CREATE TEMP TABLE {target} AS
        WITH cleaned AS (
            SELECT
                CAST(record_id AS VARCHAR) AS record_id,
                {name("first_name")} AS first_name,
                {name("last_name")} AS last_name,
                NULLIF(lower(trim({text("email")})), '') AS email,
                regexp_replace({text("phone")}, '[^0-9]', '', 'g') AS phone_digits,
                NULLIF(trim({text("birth_date")}), '') AS birth_date_text,
                NULLIF(upper(regexp_replace({text("postcode")}, '\\s', '', 'g')), '') AS postcode,
                {words("street")} AS street,
                {words("city")} AS city
            FROM {source}
        )
        SELECT
            record_id, first_name, last_name, first_name || ' ' || last_name AS full_name, email,
            CASE
                WHEN length(phone_digits) < 6 THEN NULL
                WHEN phone_digits LIKE '00%' THEN substr(phone_digits, 3)
                WHEN phone_digits LIKE '0%' THEN '{int(region_code)}' || substr(phone_digits, 2)
                ELSE phone_digits
            END AS phone,
            birth_date_text,
            CASE WHEN regexp_full_match(birth_date_text, '\\d{{4}}-\\d{{2}}-\\d{{2}}')
                THEN TRY_CAST(birth_date_text AS DATE) END AS birth_date,
            street, postcode, city
        FROM cleaned
    """


def german_name_sql(expression: str) -> str:
    """A name as German CRM systems disagree on it, in one form: lower case, umlauts and ß
    written out as a system without them does (Müller → mueller, Weiß → weiss), hyphens,
    dots and runs of spaces as one space (Hans-Peter → hans peter). Accents of other
    languages are dropped (José → jose)."""
    lowered = f"lower({expression})"
    for char, spelt in (("ä", "ae"), ("ö", "oe"), ("ü", "ue"), ("ß", "ss")):
        lowered = f"replace({lowered}, '{char}', '{spelt}')"
    spaced = f"regexp_replace(strip_accents({lowered}), '[\\s.\\-]+', ' ', 'g')"
    return f"trim({spaced})"


def input_problems(con: duckdb.DuckDBPyConnection, table: str) -> list[str]:
    """What is wrong with the normalised records, one message each. Messages name record
    ids, never values: an error message may end up in a log."""
    null_ids = _count(con, f"SELECT count(*) - count(record_id) FROM {table}")
    if null_ids:
        return [f"{null_ids} record(s) have no record_id; every record needs one"]
    problems = {
        "record_id must be unique; used more than once:": "GROUP BY record_id HAVING count(*) > 1",
        "birth_date is not an ISO date (YYYY-MM-DD) in record_id": (
            "WHERE birth_date_text IS NOT NULL AND birth_date IS NULL"
        ),
    }
    found = []
    for message, condition in problems.items():
        ids = run_sql(
            con, f"SELECT record_id FROM {table} {condition} ORDER BY 1 LIMIT 5"
        ).fetchall()
        if ids:
            found.append(f"{message} {', '.join(repr(row[0]) for row in ids)}")
    return found


def filled_counts(
    con: duckdb.DuckDBPyConnection, table: str, columns: Sequence[str]
) -> dict[str, int]:
    """How many records have a value in each of ``columns``."""
    if not columns:
        return {}
    row = run_sql(
        con, f"SELECT {', '.join(f'count({c})' for c in columns)} FROM {table}"
    ).fetchall()[0]
    return dict(zip(columns, (int(n) for n in row), strict=True))


def record_count(con: duckdb.DuckDBPyConnection, table: str) -> int:
    return _count(con, f"SELECT count(*) FROM {table}")


def pair_count(
    con: duckdb.DuckDBPyConnection,
    table: str,
    rules: Sequence[Sequence[str]],
    columns: Sequence[str] = (),
) -> int:
    """Distinct pairs agreeing on every column of at least one rule and conflicting on
    nothing that would tell two persons apart (see :func:`pair_count_sql`); ``columns``:
    the table's own, when not given."""
    present = columns or [row[0] for row in run_sql(con, f"DESCRIBE {table}").fetchall()]
    return _count(con, pair_count_sql(table, rules, present))


def rule_pair_count(con: duckdb.DuckDBPyConnection, table: str, rule: Sequence[str]) -> int:
    """Pairs agreeing on every column of ``rule``, counted per group (no join is made)."""
    columns = ", ".join(rule)
    not_null = " AND ".join(f"{c} IS NOT NULL" for c in rule)
    return _count(
        con,
        f"SELECT coalesce(sum(n * (n - 1) // 2), 0) FROM "
        f"(SELECT count(*) AS n FROM {table} WHERE {not_null} GROUP BY {columns})",
    )


# A prior rule's pair is a likely match only if nothing else tells the two apart: a
# different e-mail or phone (both given), or, when the rule leaves the birth date out, birth
# dates further apart than one error makes (a digit off or day and month transposed are
# within two edits). Counting namesakes born years apart inflated the prior: twice the true
# share on the German CRM export of issue 16 (1,869 pairs found for 1,000 duplicates; 930
# with this condition), and on web customers with few distinct names (tests/people.py)
# fifteen times, so expectation maximisation took namesakes for matches and linked 94 pairs
# of different customers (0 with it).
_CONFLICTS = {
    "email": "coalesce(l.email <> r.email, false)",
    "phone": "coalesce(l.phone <> r.phone, false)",
    "birth_date": "coalesce(damerau_levenshtein(CAST(l.birth_date AS VARCHAR), "
    "CAST(r.birth_date AS VARCHAR)) > 2, false)",
}


def pair_count_sql(table: str, rules: Sequence[Sequence[str]], columns: Sequence[str] = ()) -> str:
    """Distinct pairs agreeing on every column of at least one rule (a union of equi-joins),
    leaving out pairs that conflict on one of ``columns`` the rule does not name (the
    table's columns among e-mail, phone and birth date)."""
    joins = []
    for rule in rules:
        conflicts = [_CONFLICTS[c] for c in columns if c in _CONFLICTS and c not in rule]
        unless = "".join(f" AND NOT {c}" for c in conflicts)
        joins.append(
            f"SELECT l.record_id AS id_l, r.record_id AS id_r FROM {table} AS l JOIN {table} AS r "
            f"ON {' AND '.join(f'l.{c} = r.{c}' for c in rule)} "
            f"WHERE l.record_id < r.record_id{unless}"
        )
    return f"SELECT count(*) FROM ({' UNION '.join(joins)})"


def scored_pairs(
    con: duckdb.DuckDBPyConnection, scores: str, low: float, comparisons: Sequence[str] = ()
) -> pa.Table:
    """(record_id_l, record_id_r, match_probability, and per comparison its gamma, match
    weight and term-frequency adjustment when Splink wrote them) of Splink's scores table
    ``scores`` at or above ``low``, sorted by the two ids."""
    present = {row[0] for row in run_sql(con, f"DESCRIBE {scores}").fetchall()}
    extra = [
        f"{prefix}{name}"
        for name in comparisons
        for prefix in ("gamma_", "mw_", "mw_tf_adj_")
        if f"{prefix}{name}" in present
    ]
    columns = ", ".join(["record_id_l", "record_id_r", "match_probability", *extra])
    return arrow_sql(
        con,
        f"SELECT {columns} FROM {scores} "
        f"WHERE match_probability >= {float(low)!r} ORDER BY record_id_l, record_id_r",
    )


def score_bands(
    con: duckdb.DuckDBPyConnection, scores: str, edges: Sequence[float]
) -> tuple[int, list[int]]:
    """(all pairs, pairs per band) of Splink's scores table: band i holds
    ``edges[i] <= p < edges[i + 1]``, the last band everything from its edge up."""
    counts = ", ".join(
        f"count(*) FILTER (WHERE match_probability >= {float(low)!r}"
        + (f" AND match_probability < {float(edges[i + 1])!r})" if i + 1 < len(edges) else ")")
        for i, low in enumerate(edges)
    )
    row = run_sql(con, f"SELECT count(*), {counts} FROM {scores}").fetchall()[0]
    return int(row[0]), [int(n) for n in row[1:]]


def drop_table(con: duckdb.DuckDBPyConnection, table: str) -> None:
    run_sql(con, f"DROP TABLE IF EXISTS {table}")


def _count(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    return int(_scalar(con, sql))


def _scalar(con: duckdb.DuckDBPyConnection, sql: str) -> Any:
    return run_sql(con, sql).fetchall()[0][0]
