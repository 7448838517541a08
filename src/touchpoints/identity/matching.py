"""Probabilistic matching: which person records are one person, and how sure we are.

Deterministic stitching (``identifiers.py``) joins records that share an identifier. It cannot
join "Ida Lnage, 16.03.1963, 90402" (no e-mail) to "Ida Lange, 16.03.1963, 90402,
ida.lange@posteo.de": they share none. This module scores such pairs with the Fellegi–Sunter
model, run by Splink on DuckDB. The model is unsupervised: u (how often a level agrees by
chance) comes from random pairs, m (how often it agrees for a true match) from expectation
maximisation, so no labelled pairs are needed.

Pairs at or above ``threshold`` are accepted; pairs in the review band are listed for a person
to decide; everything else is dropped. Results depend only on the records and the settings:
u-sampling is seeded (by hashing ids, not by thread order) and the output is sorted, so two
runs give the same pairs.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Literal, Self, get_args

import duckdb
import phonenumbers
import pyarrow as pa
import pyarrow.compute as pc
import splink.internals.expectation_maximisation as splink_em
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from splink import DuckDBAPI, Linker, SettingsCreator, block_on
from splink.internals.comparison_level import M_U_CLAMP_MIN

from touchpoints.identity.comparisons import MISSING_BOTH, splink_comparisons
from touchpoints.identity.store import matching as store

Column = Literal[
    "first_name", "last_name", "email", "phone", "birth_date", "street", "postcode", "city"
]
Comparison = Literal["name", "birth_date", "email", "phone", "street", "postcode", "city"]
Rule = tuple[Column, ...]

COLUMNS: tuple[str, ...] = get_args(Column)
# The columns each comparison reads: a training rule that blocks on any of them cannot
# estimate that comparison's m (every blocked pair agrees on it).
COMPARISON_COLUMNS: dict[str, tuple[str, ...]] = {
    "name": ("first_name", "last_name"),
    **{name: (name,) for name in ("birth_date", "email", "phone", "street", "postcode", "city")},
}
_ID = pa.string()
# evidence: JSON, a list of {"comparison", "level", "weight"}: the prior's weight first, then
# each comparison's level and match weight (log2 of its Bayes factor, term frequency included);
# the weights add up to the pair's match weight. Labels and numbers only, never values.
PAIR_SCHEMA = pa.schema(
    {
        "record_id_l": _ID,
        "record_id_r": _ID,
        "match_probability": pa.float64(),
        "evidence": pa.string(),
    }
)
# A prior resting on fewer pairs than this is a guess: the run says so.
PRIOR_MIN_PAIRS = 20
# The probability bands of the diagnostic: how many scored pairs fall in each.
BANDS: tuple[float, ...] = (0.0, 0.01, 0.1, 0.5, 0.8, 0.9, 0.95, 0.99)


class MatchSettings(BaseModel):
    """What to compare, which pairs to score, how to train and where to draw the lines.

    The defaults suit person records from a CRM of up to about a million records (beyond,
    the blocking rules make too many pairs). ``city`` is left out of the default comparisons
    because it is nearly implied by ``postcode``: Fellegi–Sunter assumes the comparisons are
    independent, and two correlated ones count the same evidence twice.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    comparisons: tuple[Comparison, ...] = ("name", "birth_date", "email", "phone", "postcode")
    blocking_rules: tuple[Rule, ...] = Field(
        (
            ("first_name", "last_name"),
            ("birth_date",),
            ("email",),
            ("phone",),
            ("postcode", "first_name"),
            ("postcode", "last_name"),
        ),
        description="Pairs agreeing exactly on all columns of at least one rule are scored.",
    )
    block_swapped_names: bool = Field(True, description="Also score swapped first/last names.")
    # "joint": one comparison of first and last name together (Splink's forename-surname
    # levels): right where other fields (e-mail, phone, address) carry evidence too.
    # "split": first and last name compared one by one, each with a swapped level, so a typo
    # in one still leaves the other's full weight and EM can train each in sessions blocked on
    # the other field: right for exports of names and birth dates only (issue 16).
    name_comparison: Literal["joint", "split"] = Field(
        "joint", description="How the name comparison compares first and last name."
    )
    # Off by default: on FEBRL 3 the extra level shifts EM's estimates enough to lose one of
    # 6,405 pairs; identity match turns it on (German CRM exports mix date formats).
    date_transposed: bool = Field(
        False, description="A birth-date level for day and month transposed (03.04./04.03.)."
    )
    # Off by default (Splink's: a missing value is neutral); identity match turns it on. See
    # ``comparisons._birth_date_comparison``.
    missing_birth_date_level: bool = Field(
        False, description="A learnt level for a birth date missing on one side."
    )
    threshold: float = Field(0.9, gt=0, lt=1, description="Accept pairs at or above this.")
    review_band: tuple[float, float] | None = Field(
        None, description="[low, threshold): pairs for a person to decide. None: [0.5, threshold)"
    )
    # EM learns what matches look like only if a rule's pairs hold many true matches. Pairs
    # sharing an e-mail or a birth date do; pairs sharing a full name need not (in the demo
    # CRM every duplicate has a name typo, so they were namesakes and EM learnt those).
    em_rules: tuple[Rule, ...] = Field(
        (("email",), ("birth_date",)),
        description="One EM session per rule; each comparison must be free in at least one.",
    )
    em_max_iterations: int = Field(25, ge=1, le=1000)
    em_convergence: float = Field(1e-4, gt=0, lt=1)
    em_max_pairs: int = Field(
        2_000_000, ge=10_000, description="An EM session with more pairs learns from a sample."
    )
    u_max_pairs: int = Field(1_000_000, ge=1_000, description="Random pairs sampled for u.")
    prior: float | None = Field(None, gt=0, lt=1, description="P(two random records match).")
    # The prior's rules must find most true pairs. Near-certain rules (an e-mail) do where
    # duplicates share one; where every duplicate carries an error (a CRM export of names and
    # birth dates), rules that need every field exact find none and the prior collapses
    # (issue 16): there, use rules that tolerate an error in one field, as ``identity match``
    # does (first and last name, first name and birth date, last name and birth date). A
    # prior resting on fewer than PRIOR_MIN_PAIRS pairs is reported as a warning.
    prior_rules: tuple[Rule, ...] = Field(
        (("email",), ("first_name", "last_name", "birth_date")),
        description="When prior is None: rules that find most true pairs; their pairs / "
        "prior_recall give it.",
    )
    prior_recall: float = Field(0.8, gt=0, le=1)
    phone_region: str = Field("DE", description="Country of phone numbers written without one.")
    seed: int = Field(42, description="Seeds u-sampling, so runs are reproducible.")

    @field_validator("comparisons")
    @classmethod
    def _distinct_comparisons(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        twice = sorted({c for c in value if value.count(c) > 1})
        if twice:
            raise ValueError(f"named more than once: {', '.join(twice)}")
        if not value:
            raise ValueError("choose at least one comparison")
        return value

    # Emptiness is checked here, not with min_length: pydantic would also report an empty
    # tuple after dropping an invalid column name, an error that misleads.
    @field_validator("blocking_rules", "em_rules", "prior_rules")
    @classmethod
    def _well_formed_rules(cls, value: tuple[Rule, ...], info: ValidationInfo) -> tuple[Rule, ...]:
        if not value and not (info.field_name == "prior_rules" and info.data.get("prior")):
            hint = ", or set prior" if info.field_name == "prior_rules" else ""
            raise ValueError(f"give at least one rule{hint}")
        for index, rule in enumerate(value):
            if not rule:
                raise ValueError(f"rule {index} is empty; name at least one column")
            if len(set(rule)) != len(rule):
                raise ValueError(f"rule {index} names a column twice: {list(rule)}")
        return value

    @field_validator("review_band")
    @classmethod
    def _band_below_threshold(cls, value: Any, info: ValidationInfo) -> Any:
        threshold = info.data.get("threshold")
        if value is None or threshold is None:
            return value
        low, high = value
        if high != threshold:
            raise ValueError(
                f"upper edge {high} must equal threshold {threshold}: pairs at or above the "
                "threshold are accepted, not reviewed"
            )
        if not 0 < low <= high:
            raise ValueError(f"lower edge {low} must be above 0 and at most threshold {high}")
        return value

    @field_validator("em_rules")
    @classmethod
    def _every_comparison_trained(cls, value: tuple[Rule, ...], info: ValidationInfo) -> Any:
        comparisons = info.data.get("comparisons", ())
        blocked = [{c for c in comparisons if set(COMPARISON_COLUMNS[c]) & set(r)} for r in value]
        for index, rule in enumerate(value):
            if comparisons and blocked[index] == set(comparisons):
                raise ValueError(
                    f"rule {index} {list(rule)} blocks on every comparison, so it can train "
                    "none (and Splink would fail on it); block on fewer columns"
                )
        for comparison in comparisons:
            if all(comparison in b for b in blocked):
                columns = list(COMPARISON_COLUMNS[comparison])
                raise ValueError(
                    f"no rule leaves comparison {comparison!r} free, so its m cannot be "
                    f"estimated; add a rule that uses none of {columns}"
                )
        return value

    @field_validator("phone_region")
    @classmethod
    def _known_region(cls, value: str) -> str:
        if phonenumbers.country_code_for_region(value) == 0:
            raise ValueError(f"{value!r} is not a region phonenumbers knows (e.g. 'DE', 'GB')")
        return value

    def band(self) -> tuple[float, float]:
        """The review band, [low, threshold)."""
        return self.review_band or (min(0.5, self.threshold), self.threshold)

    def columns_used(self) -> set[str]:
        """Input columns these settings read (besides ``record_id``)."""
        rules = self.blocking_rules + self.em_rules + (() if self.prior else self.prior_rules)
        return {c for name in self.comparisons for c in COMPARISON_COLUMNS[name]} | {
            c for rule in rules for c in rule
        }


@dataclass(frozen=True)
class MatchDiagnostic:
    """What a run saw, so a user can tell why nothing or everything was linked.

    ``bands`` counts the scored pairs per probability band: ``(low, high, pairs)`` with
    ``low <= p < high`` (the last band includes 1). ``warnings`` say what makes the run's
    figures doubtful and what to do about it.
    """

    records: int
    pairs_compared: int  # pairs the blocking rules made, all scored
    prior: float = 0.0
    prior_source: str = "setting"  # "setting" or "rules"
    prior_pairs: int | None = None  # pairs the prior rules found (None: prior was set)
    bands: tuple[tuple[float, float, int], ...] = ()
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class MatchResult:
    """Scored pairs (``record_id_l < record_id_r``), each table sorted by the two ids."""

    accepted: pa.Table
    review: pa.Table
    diagnostic: MatchDiagnostic | None = None

    @classmethod
    def empty(cls) -> Self:
        return cls(PAIR_SCHEMA.empty_table(), PAIR_SCHEMA.empty_table())

    def clusters(self) -> list[tuple[str, ...]]:
        """Connected components of the accepted pairs, each sorted; records in no pair left out.

        Union-find in Python: accepted pairs are few (duplicates, not records), and the result
        stays a plain value instead of a handle on Splink's tables.
        """
        parent: dict[str, str] = {}

        def root(node: str) -> str:
            while parent.setdefault(node, node) != node:
                parent[node] = parent[parent[node]]  # path halving keeps chains short
                node = parent[node]
            return node

        left, right = self.accepted["record_id_l"].to_pylist(), self.accepted["record_id_r"]
        for a, b in zip(left, right.to_pylist(), strict=True):
            ra, rb = root(a), root(b)
            parent[max(ra, rb)] = min(ra, rb)
        groups: dict[str, list[str]] = {}
        for node in parent:
            groups.setdefault(root(node), []).append(node)
        return sorted(tuple(sorted(members)) for members in groups.values())


def match_records(
    records: pa.Table | Sequence[Mapping[str, Any]],
    settings: MatchSettings,
    con: duckdb.DuckDBPyConnection | None = None,
) -> MatchResult:
    """Find pairs of ``records`` that are the same person (dedupe one table).

    ``records`` has a unique, non-null ``record_id`` and the columns the settings use (any
    value may be None; ``birth_date`` is ISO ``YYYY-MM-DD``). They are normalised first:
    names and cities lower-cased with spaces collapsed, e-mail lower-cased, phone numbers to
    digits with the country code (``phone_region`` for national numbers), postcodes upper-cased
    without spaces. ``con`` runs the work (a warehouse cursor, say; this call alone uses it
    meanwhile); its tables and settings are left as they were. Splink's log output is
    silenced: its messages are no use to our users and sit one step from their data.
    """
    table = _as_arrow(records)
    if table.num_rows < 2:
        return MatchResult.empty()
    missing = sorted({"record_id", *settings.columns_used()} - set(table.column_names))
    if missing:
        raise ValueError(
            f"records have no column {', '.join(map(repr, missing))}, which the settings use; "
            "add it (values may be None) or leave it out of the settings"
        )
    own = con is None
    con = duckdb.connect() if con is None else con
    raw, prepared = (f"__tp_match_{part}_{uuid.uuid4().hex[:12]}" for part in ("raw", "input"))
    progress = store.progress_bar(con)
    db_api: DuckDBAPI | None = None
    try:
        store.set_progress_bar(con, False)
        code = phonenumbers.country_code_for_region(settings.phone_region)
        store.normalise_records(con, table, prepared, raw, code)
        problems = store.input_problems(con, prepared) + _empty_comparisons(con, prepared, settings)
        if problems:
            raise ValueError(problems[0])
        with _splink_quietly():
            db_api = DuckDBAPI(con)
            return _train_and_predict(db_api, prepared, settings)
    finally:
        if db_api is not None:
            db_api.delete_tables_created_by_splink_from_db()
        store.drop_table(con, prepared)
        if own:
            con.close()
        else:
            store.set_progress_bar(con, progress)


def _empty_comparisons(
    con: duckdb.DuckDBPyConnection, table: str, settings: MatchSettings
) -> list[str]:
    """A comparison on a field no record has: it can teach the model nothing (and its m
    cannot be estimated), so it is refused, naming it."""
    filled = store.filled_counts(con, table, sorted(settings.columns_used()))
    return [
        f"comparisons[{index}] {name!r} reads {', '.join(empty)}, which no record has a value "
        "for; leave it out of the comparisons"
        for index, name in enumerate(settings.comparisons)
        if (empty := [c for c in COMPARISON_COLUMNS[name] if not filled.get(c)])
    ]


def _train_and_predict(db_api: DuckDBAPI, table: str, settings: MatchSettings) -> MatchResult:
    """Fellegi–Sunter in Splink's order: prior, u by sampling, m by EM, then score."""
    con = db_api.duckdb_con
    em_sizes = []
    for index, rule in enumerate(settings.em_rules):
        em_sizes.append(store.rule_pair_count(con, table, rule))
        if not em_sizes[-1]:
            raise ValueError(
                f"em_rules[{index}] {list(rule)}: no two records agree on it, so EM has no "
                "pairs to learn from; use rules that pair at least a few hundred records"
            )
    count = store.record_count(con, table)
    warnings: list[str] = []
    if settings.prior:
        prior, found = settings.prior, None
    else:
        found = store.pair_count(con, table, settings.prior_rules)
        prior = _estimate_prior(count, found, settings.prior_recall)
        if found < PRIOR_MIN_PAIRS:
            rules = "; ".join(" + ".join(rule) for rule in settings.prior_rules)
            warnings.append(
                f"the prior ({prior:.3g}) rests on {found} pair(s) that the prior rules "
                f"({rules}) found, too few to trust: set match_prior to the share of pairs "
                "you expect to match (duplicates / all pairs), or prior rules that tolerate "
                "an error in one field"
            )
    linker = Linker(db_api.register(table), _splink_settings(settings, prior), log_level=None)
    linker.training.estimate_u_using_random_sampling(settings.u_max_pairs, seed=settings.seed)
    for rule, size in zip(settings.em_rules, em_sizes, strict=True):
        linker.training.estimate_parameters_using_expectation_maximisation(
            _em_blocking(rule, size, settings.em_max_pairs), estimate_without_term_frequencies=True
        )
    model = linker.misc.save_model_to_json()
    sampled = min(settings.u_max_pairs, count * (count - 1) // 2)
    _u_without_matches(model, prior, sampled)
    linker = Linker(db_api.register(table), model, log_level=None)
    low, threshold = settings.band()
    scored = linker.inference.predict(warning_mode="never")
    compared, counts = store.score_bands(con, scored.physical_name, BANDS)
    bands = tuple(
        (edge, BANDS[i + 1] if i + 1 < len(BANDS) else 1.0, counts[i])
        for i, edge in enumerate(BANDS)
    )
    names, labels = _level_labels(linker)
    pairs = store.scored_pairs(con, scored.physical_name, low, names)
    pairs = _with_evidence(pairs, names, labels, prior)
    above = pc.greater_equal(pairs["match_probability"], threshold)
    pairs = pairs.cast(PAIR_SCHEMA)
    diagnostic = MatchDiagnostic(
        records=count,
        pairs_compared=compared,
        prior=prior,
        prior_source="setting" if settings.prior else "rules",
        prior_pairs=found,
        bands=bands,
        warnings=tuple(warnings),
    )
    return MatchResult(pairs.filter(above), pairs.filter(pc.invert(above)), diagnostic)


def _level_labels(linker: Linker) -> tuple[list[str], dict[tuple[str, int], str]]:
    """The comparisons' output names, and each (comparison, gamma) level's label."""
    model = linker.misc.save_model_to_json()
    names: list[str] = []
    labels: dict[tuple[str, int], str] = {}
    for comparison in model["comparisons"]:
        name = comparison["output_column_name"]
        names.append(name)
        levels = [lv for lv in comparison["comparison_levels"] if not lv.get("is_null_level")]
        first = comparison["comparison_levels"][0]
        labels[(name, -1)] = (
            MISSING_BOTH if first.get("label_for_charts") == MISSING_BOTH else "missing on one side"
        )
        for level in comparison["comparison_levels"][1:]:
            if level.get("is_null_level"):  # a neutral level: the swapped names' other half
                labels[(name, -2)] = level.get("label_for_charts") or "neutral"
        for index, level in enumerate(levels):
            label = level.get("label_for_charts") or level["sql_condition"]
            labels[(name, len(levels) - 1 - index)] = label
    return names, labels


def _with_evidence(
    pairs: pa.Table, names: list[str], labels: dict[tuple[str, int], str], prior: float
) -> pa.Table:
    """The pairs with their evidence (see ``PAIR_SCHEMA``), the Splink columns dropped."""
    rows = pairs.to_pylist()
    prior_weight = round(math.log2(prior / (1 - prior)), 3)
    evidence = []
    for row in rows:
        items: list[dict[str, Any]] = [
            {"comparison": "prior", "level": f"prior {prior:.3g}", "weight": prior_weight}
        ]
        swapped = any(
            labels.get((n, row[f"gamma_{n}"])) == "First and last name swapped" for n in names
        )
        for name in names:
            weight = (row.get(f"mw_{name}") or 0.0) + (row.get(f"mw_tf_adj_{name}") or 0.0)
            gamma = row[f"gamma_{name}"]
            if gamma == -1 and swapped and (name, -2) in labels:
                gamma = -2
            level = labels.get((name, gamma), str(gamma))
            items.append({"comparison": name, "level": level, "weight": round(weight, 3)})
        evidence.append(json.dumps(items, ensure_ascii=False))
    base = pairs.select(["record_id_l", "record_id_r", "match_probability"])
    return base.append_column("evidence", pa.array(evidence, pa.string()))


def _u_without_matches(model: dict[str, Any], prior: float, sampled: int) -> None:
    """Take the matches out of each level's u, in the saved ``model`` (changed in place).

    u is P(level | not a match), but Splink estimates it from random pairs as they come,
    matches included, taking them to be too few to matter. For the rarest levels they are
    not: on the German CRM export a random pair shares its birth date with probability
    3.9e-5 by chance and 1.4e-5 more because it is a duplicate, so the exact birth date was
    worth 0.5 bits less than it is, and nearly every random pair with swapped names was a
    duplicate. Random pairs are a mixture, ``u_sampled = prior * m + (1 - prior) * u``, so
    ``u = (u_sampled - prior * m) / (1 - prior)``, with EM's m; never below one pair's worth
    of the sample (``1 / sampled``), below which the sample cannot tell.
    """
    floor = 1 / max(sampled, 1)
    for comparison in model["comparisons"]:
        for level in comparison["comparison_levels"]:
            m, u = level.get("m_probability"), level.get("u_probability")
            if level.get("is_null_level") or not isinstance(m, float) or not isinstance(u, float):
                continue
            level["u_probability"] = max((u - prior * m) / (1 - prior), min(u, floor))


def _em_blocking(rule: Rule, pairs: int, most: int) -> Any:
    """The rule's pairs for one EM session; past ``most`` pairs a sample of them.

    A session blocked on one common field (the first name, in 100,000 records) holds tens of
    millions of pairs. EM needs far fewer: the pairs of a random share of the left records
    (picked by a hash of the id, so runs repeat) estimate the same m, since which records are
    sampled does not depend on any compared field.
    """
    if pairs <= most:
        return block_on(*rule)
    share = math.ceil(pairs / most)
    condition = " AND ".join(f"l.{c} = r.{c}" for c in rule)
    return f"{condition} AND hash(l.record_id) % {share} = 0"


def _estimate_prior(count: int, found: int, recall: float) -> float:
    """P(two random records match) estimated directly, as Splink recommends: the pairs that
    the prior rules find, divided by the rules' recall, over all pairs.

    Computed here rather than by Splink for two cases it gets wrong: when the rules find no
    pair it sets the prior to 0 and training fails on log2(0), so at least one match is
    assumed (and the run warns); on a handful of records the estimate can pass 1, so it is
    capped at 0.5.
    """
    return min(max(found, 1) / recall / (count * (count - 1) / 2), 0.5)


def _splink_settings(settings: MatchSettings, prior: float) -> SettingsCreator:
    blocking: list[Any] = [block_on(*rule) for rule in settings.blocking_rules]
    if settings.block_swapped_names:
        blocking.append("l.first_name = r.last_name and l.last_name = r.first_name")
    return SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="record_id",
        comparisons=splink_comparisons(
            settings.comparisons,
            settings.name_comparison,
            settings.date_transposed,
            settings.missing_birth_date_level,
        ),
        blocking_rules_to_generate_predictions=blocking,
        probability_two_random_records_match=prior,
        em_convergence=settings.em_convergence,
        max_iterations=settings.em_max_iterations,
        retain_matching_columns=True,
        retain_intermediate_calculation_columns=True,
    )


def _as_arrow(records: pa.Table | Sequence[Mapping[str, Any]]) -> pa.Table:
    """An Arrow table; dict rows become text columns (a date becomes its ISO text)."""
    if isinstance(records, pa.Table):
        return records
    if isinstance(records, str | bytes) or not isinstance(records, Sequence):
        raise TypeError(f"records must be a pyarrow.Table or a list of dicts, not {type(records)}")
    for index, row in enumerate(records):
        if not isinstance(row, Mapping):
            raise TypeError(f"records[{index}] is a {type(row).__name__}, not a dict")
    present = [c for c in ("record_id", *COLUMNS) if any(c in row for row in records)]
    text = [[None if r.get(c) is None else str(r[c]) for r in records] for c in present]
    return pa.table([pa.array(values, pa.string()) for values in text], names=present)


# Splink's logger and the EM floor below are process-wide, so Splink runs one job at a time.
_SPLINK_LOCK = threading.Lock()


@contextmanager
def _splink_quietly() -> Iterator[None]:
    """Hold the Splink lock with its logger raised above CRITICAL. (A logger filter would not
    do: filters do not see records that child loggers pass up.)"""
    logger = logging.getLogger("splink")
    with _SPLINK_LOCK:
        _floor_em_probabilities()
        saved = logger.level
        logger.setLevel(logging.CRITICAL + 1)
        try:
            yield
        finally:
            logger.setLevel(saved)


def _floor_em_probabilities() -> None:
    """Make Splink 5.0.0's EM survive a level that no match reaches (installed once).

    EM then estimates that level's m as 0.0, which Splink's own setter refuses ("below the
    minimum allowed value of 1e-300"), aborting training. Ordinary data does it: trained on
    full names, the demo CRM (every duplicate has a name typo) never matches at "same last
    name, other first name". Splink floors m and u at ``M_U_CLAMP_MIN`` when making match
    weights anyway. Re-check on each Splink upgrade; remove once upstream clamps here.

    Also, when no likely match in a session has a value for a comparison at all (persons
    compared: dealer records have no phone, so pairs blocked on birth date never compare
    phones among matches), m is 0/0 = NaN for each of its levels and the scoring SQL breaks
    on ``cast(nan as float8)``. Those levels are left out of that session, as Splink does for
    a level it does not observe, so another session (or the default) sets them.
    """
    original = splink_em.compute_proportions_for_new_parameters
    if getattr(original, "_touchpoints_floor", False):
        return

    def floored(df_params: Any) -> list[dict[str, Any]]:
        kept = []
        for record in original(df_params):
            if record["output_column_name"] != "_probability_two_random_records_match":
                if isinstance(record["m_probability"], float) and math.isnan(
                    record["m_probability"]
                ):
                    continue  # 0/0: no match in this session reached the comparison
                for key in ("m_probability", "u_probability"):
                    if isinstance(record[key], float) and record[key] < M_U_CLAMP_MIN:
                        record[key] = M_U_CLAMP_MIN
            kept.append(record)
        return kept

    floored._touchpoints_floor = True  # type: ignore[attr-defined]
    splink_em.compute_proportions_for_new_parameters = floored
