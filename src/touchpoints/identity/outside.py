"""An identity map computed outside touchpoints (``touchpoints spark rebuild``) and loaded into
the serving warehouse (``touchpoints identity load``).

The job writes its result to a directory:

```
OUT/_result.json                   what it was computed from and under, and its files
OUT/persons/part-*.parquet          sid, type, value, detached, person: one row an identifier
OUT/rejections/part-*.parquet       seq, link_id, person, other, sid, rule: links refused
```

``_result.json`` is written last (:data:`RESULT`), so a directory without it is a job that did
not finish, and is never loaded; the files it lists, with their rows, are the result (others,
say of an earlier run, are not read).

Loading replaces every identifier's person and the refused links, as
:func:`touchpoints.identity.rebuild.rebuild` does, but only when the result is the rebuild of
this warehouse as it is: computed from an export of every event the identity map has applied
(no more, no fewer), by the identifier rules that found the stored event identifiers, under
today's merge rules, with the same identity links in force and the same identifiers (each with
its number, type, value and detached flag). Anything else is refused with what differs and
what to do; the warehouse is left as it was.

A loaded result's path is kept (``identity_results``): its persons files hold identifiers'
values, so an erasure writes them again without the person's identifiers, and its rejection
files without their rows (:func:`reach_results`), with ``_result.json``'s counts and sizes
to match. A result never loaded is not known here: it is the operator's to delete.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pydantic import BaseModel, Field, ValidationError

from touchpoints.answers import Answer
from touchpoints.errors import Conflict, InvalidRequest
from touchpoints.identity.resolver import IdentityResolver
from touchpoints.identity.store.outside import OutsideStore
from touchpoints.warehouse import Warehouse

RESULT = "_result.json"
RESULT_FORMAT = "touchpoints-identity-result"
RESULT_VERSION = 1
PERSONS = "persons"
REJECTIONS = "rejections"


class ResultFile(BaseModel):
    path: str = Field(description="Relative to the result directory")
    bytes: int


# The result's tables, as the job writes them and the load reads them.
PERSONS_SCHEMA = pa.schema(
    [
        ("sid", pa.int64()),
        ("type", pa.string()),
        ("value", pa.string()),
        ("detached", pa.bool_()),
        ("person", pa.int64()),
    ]
)
REJECTIONS_SCHEMA = pa.schema(
    [
        ("seq", pa.int64()),
        ("link_id", pa.int64()),
        ("person", pa.int64()),
        ("other", pa.int64()),
        ("sid", pa.int64()),
        ("rule", pa.string()),
    ]
)


class RebuildOutput(BaseModel):
    """``_result.json``: what a rebuild outside touchpoints was computed from and under."""

    format: str = RESULT_FORMAT
    format_version: int = RESULT_VERSION
    export: str = Field(description="The export directory it was computed from")
    events_up_to: int = Field(description="The export's events high-water mark (a seq)")
    rules: str | None = Field(description="The identifier rules of the exported map")
    limits: dict[str, int] = Field(description="The merge rules applied")
    links_in_force: int
    last_link_id: int
    identifiers: int
    persons: int
    rejections: int
    iterations: int = Field(description="Propagation steps of the connected components")
    replayed_components: int
    engine: str = Field(description="Where it ran (Spark's version and master)")
    seconds: float
    written_at: str
    files: dict[str, list[ResultFile]] = Field(description="persons, rejections: their files")


class LoadQuery(BaseModel):
    result: str = Field(
        min_length=1,
        max_length=4096,
        description="The result directory of `touchpoints spark rebuild` (holding "
        "_result.json), an absolute path on the server's machine",
    )


class PersonsLoaded(Answer):
    identifiers: int
    persons: int
    changed: int = Field(description="Identifiers whose person the result changed")
    rejections: int = Field(description="Links the merge rules refused, recomputed")
    events_up_to: int
    engine: str
    seconds: float


def read_result(directory: Path) -> RebuildOutput:
    """The result's description, or a refusal saying why there is none to load."""
    if not directory.is_absolute():
        raise InvalidRequest(f"result: give an absolute path, not {str(directory)!r}")
    path = directory / RESULT
    if not directory.is_dir():
        raise InvalidRequest(f"result: {directory} is not a directory")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InvalidRequest(
            f"result: {directory} holds no finished result (no {RESULT}): the job did not "
            "finish, or wrote elsewhere; run `touchpoints spark rebuild` again"
        ) from None
    except OSError as exc:
        raise InvalidRequest(f"result: cannot read {path}: {exc.strerror or exc}") from None
    try:
        output = RebuildOutput.model_validate(orjson.loads(data))
    except (orjson.JSONDecodeError, ValidationError) as exc:
        raise InvalidRequest(
            f"result: {path} is not a touchpoints identity result ({str(exc).splitlines()[0]})"
        ) from None
    if output.format != RESULT_FORMAT or output.format_version > RESULT_VERSION:
        raise InvalidRequest(
            f"result: {path} is {output.format} version {output.format_version}; this "
            f"touchpoints reads {RESULT_FORMAT} up to version {RESULT_VERSION}"
        )
    return output


def _table(
    directory: Path, output: RebuildOutput, name: str, schema: pa.Schema, expected: int
) -> pa.Table:
    """The rows of the files the result lists for ``name``, each file checked against its
    size and all of them against the rows the result says it has."""
    again = "the result is incomplete or was changed; run `touchpoints spark rebuild` again"
    tables = []
    for entry in output.files.get(name, []):
        path = directory / entry.path
        try:
            size = path.stat().st_size
            if size != entry.bytes:
                raise InvalidRequest(
                    f"result: {path} has {size:,} bytes, {RESULT} says {entry.bytes:,}: {again}"
                )
            tables.append(pq.read_table(path).select(schema.names).cast(schema))
        except FileNotFoundError:
            raise InvalidRequest(
                f"result: {path} is listed in {RESULT} but missing: {again}"
            ) from None
        except (OSError, KeyError, pa.ArrowException) as exc:
            raise InvalidRequest(
                f"result: {path} cannot be read ({str(exc).splitlines()[0]}): {again}"
            ) from None
    table = pa.concat_tables(tables) if tables else schema.empty_table()
    if table.num_rows != expected:
        raise InvalidRequest(
            f"result: its {name} files hold {table.num_rows:,} rows, {RESULT} says "
            f"{expected:,}: {again}"
        )
    return table


def load_persons(resolver: IdentityResolver, query: LoadQuery) -> PersonsLoaded:
    """Check the result against the warehouse (see the module) and store it."""
    started = time.perf_counter()
    directory = Path(query.result)
    output = read_result(directory)
    persons = _table(directory, output, PERSONS, PERSONS_SCHEMA, output.identifiers)
    rejections = _table(directory, output, REJECTIONS, REJECTIONS_SCHEMA, output.rejections)
    store = OutsideStore(resolver.warehouse)
    with resolver._lock:  # noqa: SLF001 - the resolver's own lock: no event applied meanwhile
        resolver.catch_up()
        _check(resolver, store, output)
        store.check_identifiers(persons)
        changed = store.store(persons, rejections)
        store.remember(str(directory))
        resolver.forget()
    return PersonsLoaded(
        identifiers=output.identifiers,
        persons=output.persons,
        changed=changed,
        rejections=output.rejections,
        events_up_to=output.events_up_to,
        engine=output.engine,
        seconds=round(time.perf_counter() - started, 3),
    )


def _check(resolver: IdentityResolver, store: OutsideStore, output: RebuildOutput) -> None:
    """Refuse a result that is not the rebuild of this warehouse as it is now (409)."""
    applied = resolver.processed_seq()
    again = "export again, run `touchpoints spark rebuild` on it and load its result"
    if output.events_up_to < applied:
        raise Conflict(
            f"result: computed from an older export (events up to seq {output.events_up_to:,}; "
            f"the identity map has applied events up to seq {applied:,}): {again}"
        )
    if output.events_up_to > applied:
        raise Conflict(
            f"result: computed from events up to seq {output.events_up_to:,}, which this "
            f"warehouse has not applied (up to seq {applied:,}): it is from another data "
            "directory's export"
        )
    stored, today = resolver.store.rules(), resolver.extractor.fingerprint()
    if output.rules != stored or stored != today:
        raise Conflict(
            "result: computed with other identifier rules than this warehouse's "
            f"(result {output.rules}, stored {stored}, configured {today}); when the rules "
            f"changed, run `touchpoints identity rebuild` here first, then {again}"
        )
    if output.limits != resolver.limits:
        raise Conflict(
            f"result: computed under other merge rules ({_limits(output.limits)}; this "
            f"warehouse: {_limits(resolver.limits)}): {again}"
        )
    links = store.links()
    if links != (output.links_in_force, output.last_link_id):
        raise Conflict(
            f"result: computed with {output.links_in_force:,} identity links in force (last "
            f"link {output.last_link_id}); this warehouse has {links[0]:,} (last link "
            f"{links[1]}): links were added or removed since; {again}"
        )


def _limits(limits: dict[str, int]) -> str:
    return ", ".join(f"{t} ≤ {n}" for t, n in sorted(limits.items())) or "no limits"


class ResultsReached(Answer):
    """What an erasure did to the loaded identity results (``touchpoints identity load``)."""

    directories: int = Field(description="Result directories brought in step")
    files_changed: int = Field(description="Parquet files written again without the rows")
    failures: list[str] = Field(
        default_factory=list, description="Directories that could not be, and why"
    )


def reach_results(warehouse: Warehouse, sids: Iterable[int]) -> ResultsReached:
    """Every result loaded before loses the rows of these identifiers (persons) and the
    refused links that name one of them (as identifier, person or other); each file that
    held one is written again whole (beside, then renamed over), and ``_result.json`` last,
    with the files' sizes and the counts it now holds. A directory gone or without its
    ``_result.json`` is passed over (nothing of ours is there); one that cannot be read or
    written is reported, and the others are still done."""
    erased = pa.array(sorted(set(sids)), pa.int64())
    reached, changed, failures = 0, 0, []
    for found in OutsideStore(warehouse).results():
        directory = Path(found)
        if not (directory / RESULT).is_file():
            continue
        try:
            changed += _reach_one(directory, erased)
        except (InvalidRequest, OSError, pa.ArrowException) as exc:
            failures.append(f"{directory}: {str(exc).splitlines()[0]}")
            continue
        reached += 1
    return ResultsReached(directories=reached, files_changed=changed, failures=failures)


def _reach_one(directory: Path, erased: pa.Array) -> int:
    output = read_result(directory)
    columns = {PERSONS: ("sid",), REJECTIONS: ("sid", "person", "other")}
    changed = 0
    counts = {PERSONS: 0, REJECTIONS: 0}
    persons: set[int] = set()
    for name, names in columns.items():
        for entry in output.files.get(name, []):
            path = directory / entry.path
            table = pq.read_table(path)
            keep = None
            for column in names:
                outside = pc.invert(pc.fill_null(pc.is_in(table[column], erased), False))
                keep = outside if keep is None else pc.and_(keep, outside)
            assert keep is not None
            kept = table.filter(keep)
            counts[name] += kept.num_rows
            if name == PERSONS:
                persons.update(kept["person"].to_pylist())
            if kept.num_rows == table.num_rows:
                continue
            partial = path.with_name(f".{path.name}.erasing")
            pq.write_table(kept, partial)
            os.replace(partial, path)
            entry.bytes = path.stat().st_size
            changed += 1
    if changed:
        output.identifiers = counts[PERSONS]
        output.persons = len(persons)
        output.rejections = counts[REJECTIONS]
        partial = directory / f".{RESULT}.erasing"
        partial.write_bytes(orjson.dumps(output.model_dump(), option=orjson.OPT_INDENT_2))
        os.replace(partial, directory / RESULT)
    return changed
