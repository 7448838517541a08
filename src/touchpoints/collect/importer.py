"""Bulk import: Segment-format JSONL and Parquet, and CSV exports through a column mapping.

Every line becomes a Segment message; a message without a messageId gets one derived from
its content and its occurrence among identical lines of the file (:class:`RowIds`), so rows
that repeat exactly (two page views in the same second of a clickstream export) are two
events, and importing the same file twice stores nothing twice. Lines that cannot become an
event are reported with their line number and reason; the good ones are kept.

The CSV mapping file (TOML) turns each row into one call, for example a CRM export::

    type = "identify"            # or "track" (then: event = "Column" or event_name = "Text")
    user_id = "Kundennummer"     # column for userId; anonymous_id = "..." also possible
    timestamp = "Geaendert_am"   # optional column with the event time
    message_id_prefix = "crm"    # optional
    numbers = ["revenue"]        # optional: traits or properties whose cells are numbers
    [traits]                     # identify: trait = column ([properties] for track)
    email = "E-Mail"
    [context]                    # constant values added to every event's context
    source = "crm_export"
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import orjson

if TYPE_CHECKING:
    from touchpoints.events import EventNormalizer, EventRow

Format = Literal["jsonl", "csv", "parquet"]


class ImportError_(Exception):
    """The file or the mapping cannot be read at all; the message says which and why."""


@dataclass(frozen=True)
class Line:
    """One input line: where it was, its text (for the reject file), and the message or why not."""

    number: int
    raw: str
    message: dict[str, Any] | None
    error: str | None = None


def detect_format(path: Path) -> Format:
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".ndjson", ".json"):
        return "jsonl"
    if suffix in (".csv", ".tsv"):
        return "csv"
    if suffix in (".parquet", ".pq"):
        return "parquet"
    raise ImportError_(
        f"cannot tell the format of {path.name} from its suffix; pass --format jsonl|csv|parquet"
    )


def content_id(prefix: str, text: str) -> str:
    return f"{prefix}-{hashlib.sha1(text.encode()).hexdigest()[:32]}"


class RowIds:
    """The messageIds of one file's rows that bring none: each row's content and its
    occurrence number among the identical rows before it in the file.

    A row's first occurrence keeps the id earlier versions gave it (its content alone), so a
    file imported before repeats were kept adds only its repeats when imported again. The
    count spans the whole file, whatever chunks the import sends. It keeps 8 bytes of each
    distinct row's hash: two different rows whose hashes began alike would only number the
    later one on, and still get the same ids on every import of the file.
    """

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self._seen: dict[bytes, int] = {}

    def __call__(self, raw: str) -> str:
        digest = hashlib.sha1(raw.encode()).digest()
        occurrence = self._seen.get(digest[:8], 0) + 1
        self._seen[digest[:8]] = occurrence
        if occurrence == 1:
            return f"{self.prefix}-{digest.hex()[:32]}"
        # A line of text holds no NUL, so no row's content can be another's with its number.
        return content_id(self.prefix, f"{raw}\x00{occurrence}")


def _with_id(message: dict[str, Any], ids: RowIds, raw: str) -> dict[str, Any]:
    if "messageId" not in message:
        message["messageId"] = ids(raw)
    return message


def read_jsonl(path: Path) -> Iterator[Line]:
    ids = RowIds("import")
    with path.open("r", encoding="utf-8-sig", errors="replace", newline="") as handle:
        for number, text in enumerate(handle, start=1):
            raw = text.rstrip("\r\n")
            if not raw.strip():
                continue
            try:
                value = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                yield Line(number, raw, None, f"not valid JSON: {exc}")
                continue
            if not isinstance(value, dict):
                yield Line(number, raw, None, "a line must hold one JSON object (an event)")
                continue
            yield Line(number, raw, _with_id(value, ids, raw))


# -- CSV -------------------------------------------------------------------------------------
@dataclass
class CsvMapping:
    type: Literal["identify", "track"] = "identify"
    user_id: str | None = None
    anonymous_id: str | None = None
    timestamp: str | None = None
    event: str | None = None
    event_name: str | None = None
    message_id_prefix: str = "csv"
    traits: dict[str, str] = field(default_factory=dict)
    properties: dict[str, str] = field(default_factory=dict)
    context: dict[str, str] = field(default_factory=dict)
    delimiter: str | None = None
    # Traits or properties sent as JSON numbers rather than text (an order's revenue).
    numbers: list[str] = field(default_factory=list)

    def columns(self) -> dict[str, str]:
        """Every column the mapping reads, by the setting that names it."""
        named = {
            name: getattr(self, name)
            for name in ("user_id", "anonymous_id", "timestamp", "event")
            if getattr(self, name)
        }
        named.update({f"traits.{k}": v for k, v in self.traits.items()})
        named.update({f"properties.{k}": v for k, v in self.properties.items()})
        return named


def load_mapping(path: Path) -> CsvMapping:
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise ImportError_(f"mapping file {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ImportError_(f"mapping file {path} is not valid TOML: {exc}") from None
    known = set(CsvMapping.__dataclass_fields__)
    unknown = sorted(set(data) - known)
    if unknown:
        raise ImportError_(
            f"mapping file {path}: unknown setting(s) {', '.join(unknown)}; "
            f"known: {', '.join(sorted(known))}"
        )
    for table in ("traits", "properties", "context"):
        value = data.get(table, {})
        if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()
        ):
            raise ImportError_(f"mapping file {path}: [{table}] must map names to column names")
    for name in ("type", "user_id", "anonymous_id", "timestamp", "event", "event_name"):
        if name in data and not isinstance(data[name], str):
            raise ImportError_(f"mapping file {path}: {name} must be a string")
    numbers = data.get("numbers", [])
    if not isinstance(numbers, list) or not all(isinstance(n, str) for n in numbers):
        raise ImportError_(f"mapping file {path}: numbers must be a list of names")
    named = {*data.get("traits", {}), *data.get("properties", {})}
    unnamed = [n for n in numbers if n not in named]
    if unnamed:
        raise ImportError_(
            f"mapping file {path}: numbers names {', '.join(map(repr, unnamed))}, which "
            "[traits] and [properties] do not"
        )
    mapping = CsvMapping(**data)
    if mapping.type not in ("identify", "track"):
        raise ImportError_(f"mapping file {path}: type must be identify or track")
    if not mapping.user_id and not mapping.anonymous_id:
        raise ImportError_(f"mapping file {path}: set user_id or anonymous_id (a column name)")
    if mapping.type == "track" and not (mapping.event or mapping.event_name):
        raise ImportError_(
            f"mapping file {path}: a track mapping needs event (a column) or event_name (text)"
        )
    return mapping


def _csv_time(value: str) -> str:
    """CSV exports write dates many ways; accept ISO-8601 and German DD.MM.YYYY."""
    text = value.strip()
    try:
        return datetime.fromisoformat(text).isoformat()
    except ValueError:
        pass
    try:
        return datetime.strptime(text, "%d.%m.%Y").date().isoformat() + "T00:00:00"
    except ValueError:
        raise ValueError(f"{text!r} is not a date-time (ISO-8601 or DD.MM.YYYY)") from None


def read_csv(path: Path, mapping: CsvMapping) -> Iterator[Line]:
    ids = RowIds(mapping.message_id_prefix)
    with path.open("r", encoding="utf-8-sig", errors="replace", newline="") as handle:
        delimiter = mapping.delimiter
        if delimiter is None:
            # Guess from the header alone: one short data row must not change the guess.
            header_line = handle.readline()
            handle.seek(0)
            try:
                delimiter = csv.Sniffer().sniff(header_line, delimiters=",;\t|").delimiter
            except csv.Error:
                delimiter = ","
        reader = csv.reader(handle, delimiter=delimiter)
        try:
            header = next(reader)
        except StopIteration:
            return
        positions = {name.strip(): i for i, name in enumerate(header)}
        missing = {
            setting: column
            for setting, column in mapping.columns().items()
            if column not in positions
        }
        if missing:
            wrong = ", ".join(f"{s} → {c!r}" for s, c in missing.items())
            raise ImportError_(
                f"{path.name}: the mapping names columns the file does not have ({wrong}); "
                f"its columns are: {', '.join(positions)}"
            )
        for values in reader:
            number = reader.line_num
            raw = _csv_line(values, delimiter)  # quoted as needed: distinct rows, distinct ids
            if not any(v.strip() for v in values):
                continue
            if len(values) != len(header):
                yield Line(
                    number,
                    raw,
                    None,
                    f"has {len(values)} fields, the header has {len(header)}",
                )
                continue
            row = {name: values[i].strip() for name, i in positions.items()}
            try:
                message = _csv_message(row, mapping)
            except ValueError as exc:
                yield Line(number, raw, None, str(exc))
                continue
            yield Line(number, raw, _with_id(message, ids, raw))


def _csv_line(values: list[str], delimiter: str) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator="").writerow(values)
    return buffer.getvalue()


def _csv_message(row: dict[str, str], mapping: CsvMapping) -> dict[str, Any]:
    message: dict[str, Any] = {"type": mapping.type}
    if mapping.user_id and row[mapping.user_id]:
        message["userId"] = row[mapping.user_id]
    if mapping.anonymous_id and row[mapping.anonymous_id]:
        message["anonymousId"] = row[mapping.anonymous_id]
    if mapping.timestamp and row[mapping.timestamp]:
        try:
            message["timestamp"] = _csv_time(row[mapping.timestamp])
        except ValueError as exc:
            raise ValueError(f"column {mapping.timestamp!r}: {exc}") from None
    properties = _values(row, mapping.properties, mapping.numbers)
    if mapping.type == "track":
        message["event"] = row[mapping.event] if mapping.event else mapping.event_name
        message["properties"] = properties
    else:
        message["traits"] = _values(row, mapping.traits, mapping.numbers)
        if properties:
            message["properties"] = properties
    if mapping.context:
        message["context"] = dict(mapping.context)
    return message


def _values(row: dict[str, str], columns: dict[str, str], numbers: list[str]) -> dict[str, Any]:
    """name → the cell of its column, left out when empty; a number for names in ``numbers``."""
    return {
        name: _number(column, row[column]) if name in numbers else row[column]
        for name, column in columns.items()
        if row[column]
    }


_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def _number(column: str, text: str) -> int | float:
    """A cell of a ``numbers`` column: an integer or a decimal with a point (29.90; a comma
    could be a decimal or a thousands separator, so it is refused rather than guessed)."""
    if not _NUMBER.fullmatch(text):
        raise ValueError(
            f"column {column!r}: {text!r} is not a number (write it like 29.90: digits, a "
            "decimal point, no thousands separator)"
        )
    return int(text) if re.fullmatch(r"[+-]?\d+", text) else float(text)


# -- Parquet ---------------------------------------------------------------------------------
_DOCUMENTS = ("properties", "traits", "context", "integrations")


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def read_parquet(path: Path) -> Iterator[Line]:
    """Segment-format columns (type, userId, event, properties, …); documents may be structs
    or JSON text. Line numbers are row numbers, counted from 1."""
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
    except Exception as exc:  # pyarrow raises several types for a bad file
        raise ImportError_(f"{path.name} is not a readable Parquet file: {exc}") from None
    number = 0
    ids = RowIds("import")
    for batch in parquet.iter_batches(batch_size=10_000):
        for record in batch.to_pylist():
            number += 1
            message = {k: _plain(v) for k, v in record.items() if v is not None}
            problem = None
            for name in _DOCUMENTS:
                if isinstance(message.get(name), str):
                    try:
                        message[name] = orjson.loads(message[name])
                    except orjson.JSONDecodeError:
                        problem = f"column {name} holds text that is not JSON"
            raw = orjson.dumps(message, default=str).decode()
            if problem:
                yield Line(number, raw, None, problem)
            else:
                yield Line(number, raw, _with_id(message, ids, raw))


def read_lines(path: Path, fmt: Format, mapping: CsvMapping | None) -> Iterator[Line]:
    if not path.exists():
        raise ImportError_(f"{path} does not exist")
    if fmt == "jsonl":
        return read_jsonl(path)
    if fmt == "parquet":
        return read_parquet(path)
    if mapping is None:
        raise ImportError_("a CSV import needs a column mapping: pass --mapping FILE.toml")
    return read_csv(path, mapping)


# -- running an import -----------------------------------------------------------------------
@dataclass
class ImportSummary:
    lines: int = 0
    accepted: int = 0
    stored: int | None = 0  # None when a server stores them (it writes asynchronously)
    rejected: int = 0
    reject_file: Path | None = None


_CHUNK_EVENTS = 500
_CHUNK_BYTES = 400 * 1024  # under the collector's 500 KB so a server accepts each chunk


def import_file(
    lines: Iterator[Line],
    normalizer: EventNormalizer,
    sink: Callable[[list[dict[str, Any]], list[EventRow]], int | None],
    reject_path: Path,
    *,
    on_progress: Callable[[int], object] | None = None,
) -> ImportSummary:
    """Validate ``lines`` in chunks, hand the good ones to ``sink`` and write rejects.

    ``sink(messages, rows)`` stores one chunk (the CLI gives a local or a server sink) and
    returns how many events were new, or None when it cannot know. Rejected lines go to
    ``reject_path`` as JSON lines with ``line``, ``errors`` and ``raw``.
    """
    from touchpoints.collect.ingest import normalize_events
    from touchpoints.events import now_micros

    summary = ImportSummary()
    reject_handle = None
    chunk: list[Line] = []
    unreadable: list[Line] = []  # held until the chunk is judged, so rejects stay in line order
    chunk_bytes = 0

    def reject(line: Line, errors: list[dict[str, Any]]) -> None:
        nonlocal reject_handle
        if reject_handle is None:
            reject_handle = reject_path.open("wb")
            summary.reject_file = reject_path
        reject_handle.write(
            orjson.dumps({"line": line.number, "errors": errors, "raw": line.raw}) + b"\n"
        )
        summary.rejected += 1

    def flush() -> None:
        nonlocal chunk, chunk_bytes, unreadable
        if not chunk:
            for line in unreadable:
                reject(line, [{"field": "", "message": line.error or "unreadable"}])
            unreadable = []
            return
        rows, rejected = normalize_events(
            [line.message for line in chunk],
            normalizer,
            route_type=None,
            envelope={},
            received_at=now_micros(),
            source="import",
            historical=True,
        )
        bad = {item.index for item in rejected}
        rejects = [
            (line, [{"field": "", "message": line.error or "unreadable"}]) for line in unreadable
        ]
        for item in rejected:
            assert item.index is not None
            errors = [{k: v for k, v in p.as_dict().items() if k != "index"} for p in item.problems]
            rejects.append((chunk[item.index], errors))
        for line, errors in sorted(rejects, key=lambda pair: pair[0].number):
            reject(line, errors)
        unreadable = []
        # Every line in a chunk has its message (unreadable ones wait aside).
        good = [
            line.message
            for i, line in enumerate(chunk)
            if i not in bad and line.message is not None
        ]
        if good:
            stored = sink(good, rows)
            summary.accepted += len(good)
            if stored is None or summary.stored is None:
                summary.stored = None
            else:
                summary.stored += stored
        if on_progress is not None:
            on_progress(chunk[-1].number)
        chunk, chunk_bytes = [], 0

    try:
        for line in lines:
            summary.lines += 1
            if line.message is None:
                unreadable.append(line)
                continue
            size = len(line.raw) + 64
            if chunk and (len(chunk) >= _CHUNK_EVENTS or chunk_bytes + size > _CHUNK_BYTES):
                flush()
            chunk.append(line)
            chunk_bytes += size
        flush()
    finally:
        if reject_handle is not None:
            reject_handle.close()
    return summary
