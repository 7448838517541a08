"""The predictions' tables (``prediction_models``, ``predictions``, ``churn_scores``,
``prediction_estimators``, ``next_best_products``, ``next_best_actions``) and what the models
learn from (each person's purchases; who showed interest in and bought which item), read
from the events and the identity map.

A purchase is a ``track`` event of the conversion event's name; its person is the person of
its first identifier (as the journey facts find it); its value the revenue property, when that
is a JSON number. Purchases are counted per day (UTC): two orders on one day are one purchase
occasion with their values added, as the BG/NBD papers count CDNOW.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Literal

import orjson
import pyarrow as pa

from touchpoints.warehouse import Warehouse

# The purchases of a window (days, both ends included): person, day, revenue (JSON).
_PURCHASES_SQL = """
    SELECT i.person AS person, CAST(e."timestamp" AS DATE) AS day,
           json_extract(e.properties, ?) AS value
    FROM events e
    JOIN event_identifiers a ON a.seq = e.seq AND a.pos = 0
    JOIN identifiers i ON i.sid = a.sid
    WHERE e.type = 'track' AND e.event = ? AND CAST(e."timestamp" AS DATE) BETWEEN ? AND ?
"""

# A person's purchase days, and the value of each day (the numeric values added).
_DAYS_SQL = f"""
    SELECT person, day,
           sum(CASE WHEN json_type(value) IN ('BIGINT', 'UBIGINT', 'DOUBLE')
                    THEN value::DOUBLE END) AS amount
    FROM ({_PURCHASES_SQL}) GROUP BY person, day
"""

# Per person: repeat purchase days, days from the first to the last and to the window's end,
# and the average value of the repeat days (the first purchase left out, as Gamma-Gamma
# wants; days without a numeric value left out of the average).
_SUMMARY_SQL = f"""
    WITH days AS ({_DAYS_SQL}),
    ranked AS (SELECT *, min(day) OVER (PARTITION BY person) AS first_day FROM days)
    SELECT person,
           count(*) - 1 AS frequency,
           date_diff('day', min(day), max(day)) AS recency_days,
           date_diff('day', min(day), ?::DATE) AS age_days,
           avg(amount) FILTER (WHERE day > first_day) AS repeat_value
    FROM ranked GROUP BY person ORDER BY person
"""

# What the revenue property holds across the purchases of a window, by JSON type.
_VALUE_TYPES_SQL = """
    SELECT coalesce(json_type(json_extract(e.properties, ?)), 'MISSING') AS kind, count(*)
    FROM events e
    WHERE e.type = 'track' AND e.event = ? AND CAST(e."timestamp" AS DATE) BETWEEN ? AND ?
    GROUP BY ALL
"""

# (person, item, bought, day) of every interest and purchase event up to a day: the item of
# an interest event is a property, a purchase names its items in a list of objects.
_INTERACTIONS_SQL = """
    WITH anchored AS (
        SELECT i.person AS person, e.event AS event, e.properties AS properties,
               CAST(e."timestamp" AS DATE) AS day
        FROM events e
        JOIN event_identifiers a ON a.seq = e.seq AND a.pos = 0
        JOIN identifiers i ON i.sid = a.sid
        WHERE e.type = 'track' AND CAST(e."timestamp" AS DATE) <= ?
          AND (list_contains(?, e.event) OR e.event = ?)
    )
    SELECT person, json_extract_string(properties, ?) AS item, false AS bought, day
    FROM anchored WHERE list_contains(?, event)
    UNION ALL
    SELECT person, unnest(json_extract_string(properties, ?)) AS item, true AS bought, day
    FROM anchored WHERE event = ?
"""

_CARD_COLUMNS = (
    "id, kind, version, trained_at, data_from, data_until, period, features, parameters, "
    "metrics, status, message"
)

_PREDICTION_COLUMNS = (
    "person, model_id, scored_at, frequency, recency, age, average_order_value, p_alive, "
    "expected_purchases_30d, expected_purchases_90d, expected_purchases_365d, "
    "expected_order_value, predicted_clv_12m"
)

_FAR_PAST = date(1, 1, 1)


@dataclass(frozen=True)
class CardRow:
    id: int
    kind: str
    version: str
    trained_at: datetime
    data_from: date | None
    data_until: date
    period: str
    features: dict[str, Any]
    parameters: dict[str, Any] | None
    metrics: dict[str, Any] | None
    status: str
    message: str | None


def property_path(name: str) -> str:
    """The JSON path of a top-level property, quoted (a name may hold dots or spaces)."""
    return '$."' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


class PredictionStore:
    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse

    # -- what the models learn from ----------------------------------------------------------
    def summary(self, event: str, revenue: str, since: date | None, until: date) -> pa.Table:
        """Per person with a purchase from ``since`` to ``until`` (days, both included):
        ``person, frequency, recency_days, age_days, repeat_value`` (age to ``until``)."""
        start = since or _FAR_PAST
        return self.warehouse.fetch_arrow(
            _SUMMARY_SQL, [property_path(revenue), event, start, until, until]
        )

    def value_types(
        self, event: str, revenue: str, since: date | None, until: date
    ) -> dict[str, int]:
        """How many of the window's purchases carry the revenue property as each JSON type
        (``DOUBLE``, ``BIGINT``, ``VARCHAR``, …; ``MISSING``: not at all)."""
        rows = self.warehouse.fetchall(
            _VALUE_TYPES_SQL, [property_path(revenue), event, since or _FAR_PAST, until]
        )
        return {str(kind): int(count) for kind, count in rows}

    def purchase_days(self, event: str, after: date, until: date) -> dict[int, int]:
        """Purchase days per person after ``after`` up to ``until`` (a holdout period)."""
        rows = self.warehouse.fetchall(
            f"SELECT person, count(DISTINCT day) FROM ({_PURCHASES_SQL}) GROUP BY person",
            [property_path("revenue"), event, _next(after), until],
        )
        return {int(person): int(count) for person, count in rows}

    def interactions(
        self,
        until: date,
        interest_events: list[str],
        item_property: str,
        purchase_event: str,
        products_property: str,
    ) -> pa.Table:
        """``person, item, bought, day`` of every interest event (its ``item_property``) and
        every item of every purchase (``products_property[].item_property``) up to ``until``
        (items that are not there: null)."""
        item = property_path(item_property)
        products = property_path(products_property) + "[*]." + _json_key(item_property)
        return self.warehouse.fetch_arrow(
            _INTERACTIONS_SQL,
            [
                until,
                interest_events,
                purchase_event,
                item,
                interest_events,
                products,
                purchase_event,
            ],
        )

    # -- model cards -------------------------------------------------------------------------
    def add_card(
        self,
        *,
        kind: str,
        version: str,
        trained_at: datetime,
        data_from: date | None,
        data_until: date,
        period: str,
        features: dict[str, Any],
        parameters: dict[str, Any] | None,
        metrics: dict[str, Any] | None,
        status: str,
        message: str | None,
    ) -> int:
        found = self.warehouse.scalar(
            "INSERT INTO prediction_models (kind, version, trained_at, data_from, data_until, "
            "period, features, parameters, metrics, status, message) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id",
            [
                kind,
                version,
                trained_at,
                data_from,
                data_until,
                period,
                _json(features),
                None if parameters is None else _json(parameters),
                None if metrics is None else _json(metrics),
                status,
                message,
            ],
        )
        return int(found)

    def card(self, card_id: int) -> CardRow | None:
        rows = self.warehouse.fetchall(
            f"SELECT {_CARD_COLUMNS} FROM prediction_models WHERE id = ?", [card_id]
        )
        return _card(rows[0]) if rows else None

    def latest_trained(self, kind: str) -> CardRow | None:
        """The model in use: the newest card of ``kind`` that trained."""
        rows = self.warehouse.fetchall(
            f"SELECT {_CARD_COLUMNS} FROM prediction_models "
            "WHERE kind = ? AND status = 'trained' ORDER BY id DESC LIMIT 1",
            [kind],
        )
        return _card(rows[0]) if rows else None

    def cards(self, kind: str | None, limit: int) -> list[CardRow]:
        where, params = ("WHERE kind = ?", [kind]) if kind else ("", [])
        rows = self.warehouse.fetchall(
            f"SELECT {_CARD_COLUMNS} FROM prediction_models {where} ORDER BY id DESC LIMIT ?",
            [*params, limit],
        )
        return [_card(row) for row in rows]

    # -- scores ------------------------------------------------------------------------------
    def replace_predictions(self, rows: pa.Table) -> None:
        """The latest scores, all at once: the previous ones stay until these are written."""
        with self.warehouse.transaction() as cursor:
            self.warehouse.run("DELETE FROM predictions", cursor=cursor)
            self.warehouse.insert_arrow("predictions", _PREDICTION_COLUMNS, rows, cursor=cursor)

    def prediction(self, person: int) -> dict[str, Any] | None:
        cursor = self.warehouse.run(
            f"SELECT {_PREDICTION_COLUMNS} FROM predictions WHERE person = ?", [person]
        )
        names = [column[0] for column in cursor.description or ()]
        rows = cursor.fetchall()
        return dict(zip(names, rows[0], strict=True)) if rows else None

    def clv_values(self) -> pa.Table:
        """Every scored person's ``predicted_clv_12m`` (those with one)."""
        return self.warehouse.fetch_arrow(
            "SELECT predicted_clv_12m AS clv FROM predictions "
            "WHERE predicted_clv_12m IS NOT NULL AND isfinite(predicted_clv_12m)"
        )

    def top(self, limit: int) -> list[dict[str, Any]]:
        """The persons with the highest 12-month value, with their churn risk if scored."""
        cursor = self.warehouse.run(
            "SELECT p.person, p.predicted_clv_12m, p.p_alive, p.expected_purchases_365d, "
            "c.churn_risk FROM predictions p LEFT JOIN churn_scores c USING (person) "
            "WHERE p.predicted_clv_12m IS NOT NULL AND isfinite(p.predicted_clv_12m) "
            "ORDER BY p.predicted_clv_12m DESC, p.person LIMIT ?",
            [limit],
        )
        names = [column[0] for column in cursor.description or ()]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]

    def scored(self) -> tuple[int, int | None]:
        """(persons scored, the model that scored them)."""
        rows = self.warehouse.fetchall("SELECT count(*), max(model_id) FROM predictions")
        count, model = rows[0]
        return int(count), None if model is None else int(model)


class ChurnStore:
    """Churn risk's tables: the fitted estimators of the model cards, each person's scores."""

    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse

    def add_estimator(self, model_id: int, fmt: str, sha256: str, data: bytes) -> None:
        self.warehouse.run(
            "INSERT INTO prediction_estimators (model_id, format, sha256, estimator) "
            "VALUES (?, ?, ?, ?)",
            [model_id, fmt, sha256, data],
        )

    def estimator(self, model_id: int) -> tuple[str, str, bytes] | None:
        """(format, sha256, bytes) of a card's fitted estimator."""
        rows = self.warehouse.fetchall(
            "SELECT format, sha256, estimator FROM prediction_estimators WHERE model_id = ?",
            [model_id],
        )
        if not rows:
            return None
        fmt, sha256, data = rows[0]
        return str(fmt), str(sha256), bytes(data)

    def replace_scores(self, rows: pa.Table) -> None:
        """The latest churn scores, all at once: the previous ones stay until these are
        written."""
        with self.warehouse.transaction() as cursor:
            self.warehouse.run("DELETE FROM churn_scores", cursor=cursor)
            self.warehouse.insert_arrow("churn_scores", _CHURN_COLUMNS, rows, cursor=cursor)

    def score(self, person: int) -> dict[str, Any] | None:
        rows = self.warehouse.fetchall(
            f"SELECT {_CHURN_COLUMNS} FROM churn_scores WHERE person = ?", [person]
        )
        if not rows:
            return None
        found = dict(zip(_CHURN_COLUMNS.split(", "), rows[0], strict=True))
        if found["contributions"] is not None:
            found["contributions"] = orjson.loads(found["contributions"])
        return found

    def by(self, column: Literal["stage", "channel"]) -> list[tuple[str | None, int, float, int]]:
        """(name, persons, mean risk, persons at 50 % or more) per stage or channel."""
        if column not in ("stage", "channel"):
            raise ValueError(column)
        rows = self.warehouse.fetchall(_CHURN_BY_SQL.format(column=column))
        return [(name, int(n), float(risk), int(high)) for name, n, risk, high in rows]

    def scored(self) -> tuple[int, int | None]:
        """(persons scored, the model that scored them)."""
        rows = self.warehouse.fetchall("SELECT count(*), max(model_id) FROM churn_scores")
        count, model = rows[0]
        return int(count), None if model is None else int(model)


# Churn risk per group of persons: persons, mean risk, persons at 50 % or more.
_CHURN_BY_SQL = """
    SELECT {column} AS name, count(*) AS persons, avg(churn_risk) AS mean_risk,
           count(*) FILTER (WHERE churn_risk >= 0.5) AS high_risk
    FROM churn_scores GROUP BY ALL ORDER BY persons DESC, name NULLS LAST
"""

_CHURN_COLUMNS = (
    "person, model_id, scored_at, churn_risk, churn_percentile, contributions, stage, channel, "
    "features"
)


class NextBestStore:
    """Each person's next best products and next best action from the latest scoring."""

    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse

    def replace_products(
        self, offers: pa.Table, model_id: int, scored_at: datetime, method: str
    ) -> None:
        """The latest offers, all at once (the previous stay until these are written):
        ``offers`` has a row per (person, item) with its score, each person's best first;
        each person's are kept as one JSON list of ``{item, score}``."""
        with self.warehouse.transaction() as cursor:
            with self.warehouse.registered("offers_chosen", offers, cursor):
                self.warehouse.run("DELETE FROM next_best_products", cursor=cursor)
                self.warehouse.run(_PRODUCTS_SQL, [model_id, scored_at, method], cursor=cursor)

    def replace_actions(self, rows: pa.Table) -> None:
        """The latest actions, all at once (the previous stay until these are written)."""
        with self.warehouse.transaction() as cursor:
            self.warehouse.run("DELETE FROM next_best_actions", cursor=cursor)
            self.warehouse.insert_arrow("next_best_actions", _ACTION_COLUMNS, rows, cursor=cursor)

    def products(self, person: int) -> dict[str, Any] | None:
        rows = self.warehouse.fetchall(
            f"SELECT {_PRODUCT_COLUMNS} FROM next_best_products WHERE person = ?", [person]
        )
        if not rows:
            return None
        found = dict(zip(_PRODUCT_COLUMNS.split(", "), rows[0], strict=True))
        found["products"] = orjson.loads(found["products"])
        return found

    def action(self, person: int) -> dict[str, Any] | None:
        rows = self.warehouse.fetchall(
            f"SELECT {_ACTION_COLUMNS} FROM next_best_actions WHERE person = ?", [person]
        )
        if not rows:
            return None
        found = dict(zip(_ACTION_COLUMNS.split(", "), rows[0], strict=True))
        found["actions"] = orjson.loads(found["actions"])
        return found

    def figures(self) -> pa.Table:
        """Every scored person's figures the action rules ask about: lifetime value, churn
        risk with stage and channel, and their first offer (null where not scored)."""
        return self.warehouse.fetch_arrow(_FIGURES_SQL)

    def counts(self) -> tuple[int, int]:
        """(persons with offers, persons with an action)."""
        rows = self.warehouse.fetchall(
            "SELECT (SELECT count(*) FROM next_best_products), "
            "(SELECT count(*) FROM next_best_actions)"
        )
        return int(rows[0][0]), int(rows[0][1])


_PRODUCT_COLUMNS = "person, model_id, scored_at, method, products"
# Each person's offers (rows in their order: best first) as one JSON list.
_PRODUCTS_SQL = f"""
    INSERT INTO next_best_products ({_PRODUCT_COLUMNS})
    SELECT person, ?, ?, ?,
           to_json(list({{'item': item, 'score': score}} ORDER BY n))::VARCHAR
    FROM (SELECT *, row_number() OVER () AS n FROM offers_chosen)
    GROUP BY person
"""
_ACTION_COLUMNS = "person, scored_at, rules_version, action, actions"

# Per person scored by any model: the figures an action rule may ask about.
_FIGURES_SQL = """
    WITH persons AS (
        SELECT person FROM predictions UNION SELECT person FROM churn_scores
        UNION SELECT person FROM next_best_products
    )
    SELECT persons.person AS person, p.p_alive, p.expected_purchases_30d,
           p.expected_purchases_90d, p.expected_purchases_365d, p.predicted_clv_12m,
           c.churn_risk, c.churn_percentile, c.stage, c.channel,
           json_extract_string(o.products, '$[0].item') AS top_offer
    FROM persons
    LEFT JOIN predictions p USING (person)
    LEFT JOIN churn_scores c USING (person)
    LEFT JOIN next_best_products o USING (person)
    ORDER BY persons.person
"""


def _json_key(name: str) -> str:
    """A JSON path step for a key (quoted: it may hold dots or spaces)."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _next(day: date) -> date:
    return date.fromordinal(day.toordinal() + 1)


def _json(value: Any) -> str:
    return orjson.dumps(value).decode()


def _card(row: tuple[Any, ...]) -> CardRow:
    (
        card_id,
        kind,
        version,
        trained_at,
        data_from,
        data_until,
        period,
        features,
        parameters,
        metrics,
        status,
        message,
    ) = row
    return CardRow(
        int(card_id),
        kind,
        version,
        trained_at,
        data_from,
        data_until,
        period,
        orjson.loads(features),
        None if parameters is None else orjson.loads(parameters),
        None if metrics is None else orjson.loads(metrics),
        status,
        message,
    )
