"""Bulk import of JSONL, CSV (through a TOML mapping) and Parquet files into the warehouse."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from touchpoints.collect.importer import (
    CsvMapping,
    ImportError_,
    ImportSummary,
    detect_format,
    import_file,
    load_mapping,
    read_lines,
)
from touchpoints.core import Touchpoints


def run_import(
    tp: Touchpoints, path: Path, mapping: CsvMapping | None = None, fmt: Any = None
) -> ImportSummary:
    """What ``touchpoints import FILE`` does in local mode."""
    lines = read_lines(path, fmt or detect_format(path), mapping)
    return import_file(
        lines,
        tp.normalizer,
        lambda messages, rows: tp.write_rows(rows),
        path.with_name(path.name + ".rejects.jsonl"),
    )


def summary_of(summary: ImportSummary) -> tuple[int, int, int | None, int]:
    return summary.lines, summary.accepted, summary.stored, summary.rejected


def rejects(path: Path) -> list[dict[str, Any]]:
    """The reject file, each entry's errors reduced to field and message."""
    out = []
    for text in path.read_text().splitlines():
        entry = orjson.loads(text)
        assert set(entry) == {"line", "errors", "raw"}
        entry["errors"] = [(e["field"], e["message"]) for e in entry["errors"]]
        out.append(entry)
    return sorted(out, key=lambda e: e["line"])


def sha_id(prefix: str, raw: str) -> str:
    return f"{prefix}-{hashlib.sha1(raw.encode()).hexdigest()[:32]}"


def stored_events(tp: Touchpoints) -> dict[str, dict[str, Any]]:
    return {e["message_id"]: e for e in tp.events.list(limit=1000, newest_first=False)}


# -- JSONL ---------------------------------------------------------------------------------
GOOD_TRACK = (
    '{"type":"track","userId":"u1","event":"Order Completed","properties":{"total":10},'
    '"timestamp":"2026-05-01T10:00:00Z","sentAt":"2026-05-03T00:00:00Z"}'
)
GOOD_IDENTIFY = '{"type":"identify","userId":"u1","traits":{"email":"a@example.com"}}'
NO_EVENT = '{"type":"track","userId":"u2"}'
NO_USER = '{"type":"track","event":"Viewed"}'
WITH_ID = '{"type":"page","anonymousId":"a9","messageId":"given-1","name":"Home"}'
BROKEN = '{"type": "track",'
NOT_OBJECT = "[1, 2]"

JSONL_LINES = [GOOD_TRACK, GOOD_IDENTIFY, "", NO_EVENT, NO_USER, WITH_ID, BROKEN, NOT_OBJECT]


@pytest.fixture
def jsonl_file(tmp_path: Path) -> Path:
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(JSONL_LINES) + "\n")
    return path


def test_jsonl_good_lines_are_stored_and_bad_ones_rejected(
    tp: Touchpoints, jsonl_file: Path
) -> None:
    summary = run_import(tp, jsonl_file)

    # 8 lines, the blank one (line 3) is not counted; 3 good, 4 bad.
    assert summary_of(summary) == (7, 3, 3, 4)
    reject_path = jsonl_file.parent / "events.jsonl.rejects.jsonl"
    assert summary.reject_file == reject_path
    entries = rejects(reject_path)
    assert [(e["line"], e["raw"]) for e in entries] == [
        (4, NO_EVENT),
        (5, NO_USER),
        (7, BROKEN),
        (8, NOT_OBJECT),
    ]
    assert entries[0]["errors"] == [
        ("event", "is required for track and must be a non-empty string")
    ]
    assert entries[1]["errors"] == [("userId", "userId or anonymousId is required")]
    ((field, message),) = entries[2]["errors"]
    assert field == ""
    assert message.startswith("not valid JSON: ")
    assert entries[3]["errors"] == [("", "a line must hold one JSON object (an event)")]

    events = stored_events(tp)
    # A line without a messageId gets one derived from its text.
    assert set(events) == {sha_id("import", GOOD_TRACK), sha_id("import", GOOD_IDENTIFY), "given-1"}
    order = events[sha_id("import", GOOD_TRACK)]
    assert (order["type"], order["event"], order["user_id"]) == ("track", "Order Completed", "u1")
    assert orjson.loads(order["properties"]) == {"total": 10}
    assert order["source"] == "import"
    # An imported timestamp is kept as it is, although sentAt says two days later.
    assert order["timestamp"] == datetime(2026, 5, 1, 10, 0)
    assert order["original_timestamp"] == datetime(2026, 5, 1, 10, 0)
    assert orjson.loads(events[sha_id("import", GOOD_IDENTIFY)]["traits"]) == {
        "email": "a@example.com"
    }
    assert events["given-1"]["anonymous_id"] == "a9"


def test_importing_the_same_jsonl_file_twice_stores_nothing_twice(
    tp: Touchpoints, jsonl_file: Path
) -> None:
    first = run_import(tp, jsonl_file)
    second = run_import(tp, jsonl_file)
    assert summary_of(first) == (7, 3, 3, 4)
    assert summary_of(second) == (7, 3, 0, 4)
    assert tp.events.count() == 3
    # The reject file is rewritten, not appended to.
    assert len(rejects(jsonl_file.parent / "events.jsonl.rejects.jsonl")) == 4


def test_lines_that_repeat_exactly_are_each_stored_and_once_only(
    tp: Touchpoints, tmp_path: Path
) -> None:
    # Two identical page views in one second are two events (a clickstream export).
    path = tmp_path / "twice.ndjson"
    path.write_text(f"{GOOD_IDENTIFY}\r\n{GOOD_TRACK}\r\n{GOOD_IDENTIFY}\r\n{GOOD_IDENTIFY}\r\n")
    summary = run_import(tp, path)
    assert summary_of(summary) == (4, 4, 4, 0)
    assert summary.reject_file is None
    assert not (tmp_path / "twice.ndjson.rejects.jsonl").exists()
    # CRLF line ends are not part of the text the id is derived from; a first occurrence
    # keeps the id of its content alone (what earlier versions gave it), a repeat its number.
    assert set(stored_events(tp)) == {
        sha_id("import", GOOD_IDENTIFY),
        sha_id("import", GOOD_TRACK),
        sha_id("import", f"{GOOD_IDENTIFY}\x002"),
        sha_id("import", f"{GOOD_IDENTIFY}\x003"),
    }
    assert summary_of(run_import(tp, path)) == (4, 4, 0, 0)
    assert tp.events.count() == 4


def test_a_file_imported_before_repeats_were_kept_adds_only_its_repeats(
    tp: Touchpoints, tmp_path: Path
) -> None:
    path = tmp_path / "clicks.jsonl"
    path.write_text(f"{GOOD_TRACK}\n{GOOD_TRACK}\n")
    tp.write_rows(  # what an earlier version stored of it: the row once, by its content
        tp.judge(
            {"batch": [{**orjson.loads(GOOD_TRACK), "messageId": sha_id("import", GOOD_TRACK)}]},
            "import",
            source="import",
        ).rows
    )
    assert summary_of(run_import(tp, path)) == (2, 2, 1, 0)
    assert tp.events.count() == 2


def test_repeats_are_counted_across_chunks(tp: Touchpoints, tmp_path: Path) -> None:
    # 1,500 lines in chunks of 500: line n and line n + 600 are the same row, and so are
    # lines n + 1,200 for the first 300 (the third occurrence, two chunks on).
    rows = [f'{{"type":"page","anonymousId":"a{n}","name":"Home"}}' for n in range(600)]
    path = tmp_path / "clicks.jsonl"
    path.write_text("\n".join(rows + rows + rows[:300]) + "\n")
    first = run_import(tp, path)
    assert summary_of(first) == (1500, 1500, 1500, 0)
    assert summary_of(run_import(tp, path)) == (1500, 1500, 0, 0)
    assert tp.events.count() == 1500
    ids = {e["message_id"] for e in tp.events.list(limit=2000)}
    assert sha_id("import", rows[7]) in ids
    assert sha_id("import", f"{rows[7]}\x002") in ids
    assert sha_id("import", f"{rows[7]}\x003") in ids
    assert sha_id("import", f"{rows[307]}\x003") not in ids


def test_a_line_with_a_message_id_that_repeats_is_stored_once(
    tp: Touchpoints, tmp_path: Path
) -> None:
    path = tmp_path / "given.jsonl"
    path.write_text(f"{WITH_ID}\n{WITH_ID}\n")
    assert summary_of(run_import(tp, path)) == (2, 2, 1, 0)
    assert set(stored_events(tp)) == {"given-1"}


def test_a_malformed_json_line_does_not_stop_the_import(tp: Touchpoints, tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    path.write_text(f'{GOOD_IDENTIFY}\n{{"type":"track","userId":"u1",event:"x"}}\n{WITH_ID}\n')
    summary = run_import(tp, path)
    assert summary_of(summary) == (3, 2, 2, 1)
    (entry,) = rejects(path.with_name("mixed.jsonl.rejects.jsonl"))
    assert entry["line"] == 2
    assert entry["raw"] == '{"type":"track","userId":"u1",event:"x"}'
    assert entry["errors"][0][0] == ""
    assert entry["errors"][0][1].startswith("not valid JSON: ")
    assert tp.events.count() == 2


def test_a_large_file_is_imported_in_chunks_with_exact_line_numbers(
    tp: Touchpoints, tmp_path: Path
) -> None:
    path = tmp_path / "big.jsonl"
    lines = []
    for n in range(1, 1201):
        if n % 400 == 0:  # lines 400, 800, 1200: no user
            lines.append(f'{{"type":"track","event":"E{n}"}}')
        else:
            lines.append(f'{{"type":"track","userId":"u{n}","event":"E{n}"}}')
    path.write_text("\n".join(lines) + "\n")
    progress: list[int] = []
    summary = import_file(
        read_lines(path, "jsonl", None),
        tp.normalizer,
        lambda messages, rows: tp.write_rows(rows),
        tmp_path / "big.rejects.jsonl",
        on_progress=progress.append,
    )
    assert summary_of(summary) == (1200, 1197, 1197, 3)
    assert [e["line"] for e in rejects(tmp_path / "big.rejects.jsonl")] == [400, 800, 1200]
    assert [e["raw"] for e in rejects(tmp_path / "big.rejects.jsonl")] == [
        '{"type":"track","event":"E400"}',
        '{"type":"track","event":"E800"}',
        '{"type":"track","event":"E1200"}',
    ]
    # Chunks of 500 lines (refused events included): progress names the last line of each.
    assert progress == [500, 1000, 1200]
    assert tp.events.count() == 1197


def test_an_empty_file_imports_nothing(tp: Touchpoints, tmp_path: Path) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_bytes(b"")
    summary = run_import(tp, path)
    assert summary == ImportSummary(lines=0, accepted=0, stored=0, rejected=0, reject_file=None)
    assert not (tmp_path / "empty.jsonl.rejects.jsonl").exists()
    assert tp.events.count() == 0


def test_a_file_of_blank_lines_imports_nothing(tp: Touchpoints, tmp_path: Path) -> None:
    path = tmp_path / "blank.jsonl"
    path.write_text("\n  \n\r\n")
    assert summary_of(run_import(tp, path)) == (0, 0, 0, 0)


# -- formats and errors --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("a.jsonl", "jsonl"),
        ("a.NDJSON", "jsonl"),
        ("a.json", "jsonl"),
        ("a.csv", "csv"),
        ("a.tsv", "csv"),
        ("a.parquet", "parquet"),
        ("a.pq", "parquet"),
    ],
)
def test_the_format_follows_the_suffix(name: str, fmt: str) -> None:
    assert detect_format(Path(name)) == fmt


@pytest.mark.parametrize("name", ["events.xlsx", "events", "events.jsonl.gz"])
def test_an_unknown_suffix_is_a_clear_error(name: str) -> None:
    with pytest.raises(ImportError_) as caught:
        detect_format(Path("/somewhere") / name)
    assert str(caught.value) == (
        f"cannot tell the format of {name} from its suffix; pass --format jsonl|csv|parquet"
    )


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "nope.jsonl"
    with pytest.raises(ImportError_, match=r"nope\.jsonl does not exist$"):
        read_lines(path, "jsonl", None)


def test_a_csv_without_a_mapping_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "crm.csv"
    path.write_text("a,b\n1,2\n")
    with pytest.raises(ImportError_) as caught:
        read_lines(path, "csv", None)
    assert str(caught.value) == "a CSV import needs a column mapping: pass --mapping FILE.toml"


# -- CSV -----------------------------------------------------------------------------------
CRM_HEADER = "Kundennummer;Vorname;Nachname;E-Mail;Telefon;Geburtsdatum;Ort;Geaendert_am"
ANNA = (
    "K-1000234;Anna;Berg;anna.berg@example.com;0171 2345678;14.03.1986;Hamburg;2026-05-02T10:00:00"
)
JONAS = "K-1000235;Jonas;Weber;;040 123456;01.12.1979;Bremen;03.05.2026"
LEA = ";Lea;Klein;lea@example.com;;;Kiel;2026-05-04T09:30:00"
MAX = "K-1000237;Max;Roth;max@example.com;;;Berlin;31.02.2026"
SHORT = "K-1000238;Too;Few"

CRM_MAPPING = """\
type = "identify"
user_id = "Kundennummer"
timestamp = "Geaendert_am"
message_id_prefix = "crm"

[traits]
customer_number = "Kundennummer"
first_name = "Vorname"
last_name = "Nachname"
email = "E-Mail"
phone = "Telefon"
birthday = "Geburtsdatum"
city = "Ort"

[context]
source = "crm_export"
"""


def write_crm(tmp_path: Path, rows: list[str], mapping: str = CRM_MAPPING) -> tuple[Path, Path]:
    csv_path = tmp_path / "crm_export.csv"
    csv_path.write_text("\n".join([CRM_HEADER, *rows]) + "\n", encoding="utf-8")
    mapping_path = tmp_path / "crm_mapping.toml"
    mapping_path.write_text(mapping)
    return csv_path, mapping_path


def test_a_crm_export_becomes_identify_calls_with_traits(tp: Touchpoints, tmp_path: Path) -> None:
    csv_path, mapping_path = write_crm(tmp_path, [ANNA, JONAS, LEA, MAX])
    summary = run_import(tp, csv_path, load_mapping(mapping_path))

    assert summary_of(summary) == (4, 2, 2, 2)
    entries = rejects(tmp_path / "crm_export.csv.rejects.jsonl")
    # The header is line 1: Lea is line 4, Max line 5.
    assert entries == [
        {"line": 4, "raw": LEA, "errors": [("userId", "userId or anonymousId is required")]},
        {
            "line": 5,
            "raw": MAX,
            "errors": [
                (
                    "",
                    "column 'Geaendert_am': '31.02.2026' is not a date-time "
                    "(ISO-8601 or DD.MM.YYYY)",
                )
            ],
        },
    ]

    events = stored_events(tp)
    assert set(events) == {sha_id("crm", ANNA), sha_id("crm", JONAS)}
    anna = events[sha_id("crm", ANNA)]
    assert (anna["type"], anna["user_id"], anna["source"]) == ("identify", "K-1000234", "import")
    assert orjson.loads(anna["traits"]) == {
        "customer_number": "K-1000234",
        "first_name": "Anna",
        "last_name": "Berg",
        "email": "anna.berg@example.com",
        "phone": "0171 2345678",
        "birthday": "14.03.1986",
        "city": "Hamburg",
    }
    assert orjson.loads(anna["context"]) == {"source": "crm_export"}
    assert anna["properties"] is None
    assert anna["timestamp"] == datetime(2026, 5, 2, 10, 0)

    jonas = events[sha_id("crm", JONAS)]
    # An empty cell is left out of the traits; a German date is midnight UTC.
    assert orjson.loads(jonas["traits"]) == {
        "customer_number": "K-1000235",
        "first_name": "Jonas",
        "last_name": "Weber",
        "phone": "040 123456",
        "birthday": "01.12.1979",
        "city": "Bremen",
    }
    assert jonas["timestamp"] == datetime(2026, 5, 3, 0, 0)


def test_reimporting_a_crm_export_stores_nothing_twice(tp: Touchpoints, tmp_path: Path) -> None:
    csv_path, mapping_path = write_crm(tmp_path, [ANNA, JONAS])
    mapping = load_mapping(mapping_path)
    assert summary_of(run_import(tp, csv_path, mapping)) == (2, 2, 2, 0)
    assert summary_of(run_import(tp, csv_path, mapping)) == (2, 2, 0, 0)
    assert tp.events.count() == 2


def test_csv_rows_that_repeat_exactly_are_each_stored_and_once_only(
    tp: Touchpoints, tmp_path: Path
) -> None:
    csv_path, mapping_path = write_crm(tmp_path, [ANNA, JONAS, ANNA])
    mapping = load_mapping(mapping_path)
    assert summary_of(run_import(tp, csv_path, mapping)) == (3, 3, 3, 0)
    assert summary_of(run_import(tp, csv_path, mapping)) == (3, 3, 0, 0)
    assert set(stored_events(tp)) == {
        sha_id("crm", ANNA),
        sha_id("crm", JONAS),
        sha_id("crm", f"{ANNA}\x002"),
    }


def test_a_row_with_the_wrong_number_of_fields_is_rejected(tp: Touchpoints, tmp_path: Path) -> None:
    csv_path, mapping_path = write_crm(
        tmp_path,
        [ANNA, SHORT, JONAS],
        CRM_MAPPING.replace('type = "identify"', 'delimiter = ";"\ntype = "identify"'),
    )
    summary = run_import(tp, csv_path, load_mapping(mapping_path))
    assert summary_of(summary) == (3, 2, 2, 1)
    assert rejects(tmp_path / "crm_export.csv.rejects.jsonl") == [
        {"line": 3, "raw": SHORT, "errors": [("", "has 3 fields, the header has 8")]}
    ]


def test_a_short_row_in_a_small_export_is_rejected_without_a_delimiter_setting(
    tp: Touchpoints, tmp_path: Path
) -> None:
    csv_path, mapping_path = write_crm(tmp_path, [ANNA, JONAS, LEA, MAX, SHORT])
    summary = run_import(tp, csv_path, load_mapping(mapping_path))
    assert summary_of(summary) == (5, 2, 2, 3)


def test_a_mapped_column_the_file_lacks_stops_the_import(tp: Touchpoints, tmp_path: Path) -> None:
    csv_path, mapping_path = write_crm(
        tmp_path,
        [ANNA, JONAS],
        CRM_MAPPING.replace('email = "E-Mail"', 'email = "Email"').replace(
            'city = "Ort"', 'city = "Stadt"'
        ),
    )
    with pytest.raises(ImportError_) as caught:
        run_import(tp, csv_path, load_mapping(mapping_path))
    assert str(caught.value) == (
        "crm_export.csv: the mapping names columns the file does not have "
        "(traits.email → 'Email', traits.city → 'Stadt'); its columns are: "
        "Kundennummer, Vorname, Nachname, E-Mail, Telefon, Geburtsdatum, Ort, Geaendert_am"
    )
    assert tp.events.count() == 0
    assert not (tmp_path / "crm_export.csv.rejects.jsonl").exists()


def test_a_track_mapping_with_a_fixed_event_name(tp: Touchpoints, tmp_path: Path) -> None:
    csv_path = tmp_path / "visits.csv"
    csv_path.write_text("customer,store,amount\nK-1,Hamburg,120.50\nK-2,Kiel,\n")
    mapping_path = tmp_path / "visits.toml"
    mapping_path.write_text(
        'type = "track"\nuser_id = "customer"\nevent_name = "Store Visit"\n'
        '[properties]\nstore = "store"\namount = "amount"\n'
        '[context]\nchannel = "store"\n'
    )
    summary = run_import(tp, csv_path, load_mapping(mapping_path))
    assert summary_of(summary) == (2, 2, 2, 0)
    rows = tp.events.list(newest_first=False)
    assert [(e["user_id"], e["event"], e["channel"]) for e in rows] == [
        ("K-1", "Store Visit", "store"),
        ("K-2", "Store Visit", "store"),
    ]
    assert [orjson.loads(e["properties"]) for e in rows] == [
        {"store": "Hamburg", "amount": "120.50"},
        {"store": "Kiel"},
    ]
    assert [e["message_id"] for e in rows] == [
        sha_id("csv", "K-1,Hamburg,120.50"),
        sha_id("csv", "K-2,Kiel,"),
    ]


def test_numbers_in_a_mapping_are_sent_as_json_numbers(tp: Touchpoints, tmp_path: Path) -> None:
    csv_path = tmp_path / "orders.csv"
    csv_path.write_text(
        "order,customer,amount,items\n1,K-1,120.50,3\n2,K-2,,1\n3,K-1,12,50,2\n4,K-3,1e2,x\n"
    )
    mapping_path = tmp_path / "orders.toml"
    mapping_path.write_text(
        'type = "track"\nuser_id = "customer"\nevent_name = "Order Completed"\n'
        'numbers = ["revenue", "items"]\n'
        '[properties]\norder_id = "order"\nrevenue = "amount"\nitems = "items"\n'
    )
    summary = run_import(tp, csv_path, load_mapping(mapping_path))
    assert summary_of(summary) == (4, 2, 2, 2)
    rows = tp.events.list(newest_first=False)
    assert [orjson.loads(e["properties"]) for e in rows] == [
        {"order_id": "1", "revenue": 120.5, "items": 3},
        {"order_id": "2", "items": 1},  # an empty cell is left out, as ever
    ]
    reasons = [entry["errors"] for entry in rejects(tmp_path / "orders.csv.rejects.jsonl")]
    assert reasons == [
        [("", "has 5 fields, the header has 4")],
        [
            (
                "",
                "column 'items': 'x' is not a number (write it like 29.90: digits, a decimal "
                "point, no thousands separator)",
            )
        ],
    ]


def test_an_empty_csv_and_a_header_only_csv_import_nothing(tp: Touchpoints, tmp_path: Path) -> None:
    mapping_path = tmp_path / "m.toml"
    mapping_path.write_text(CRM_MAPPING)
    mapping = load_mapping(mapping_path)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    header_only = tmp_path / "header.csv"
    header_only.write_text(CRM_HEADER + "\n")
    assert summary_of(run_import(tp, empty, mapping)) == (0, 0, 0, 0)
    assert summary_of(run_import(tp, header_only, mapping)) == (0, 0, 0, 0)
    assert tp.events.count() == 0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('type = "identify"\nuser_id = "id"\nuserid = "x"\n', "unknown setting(s) userid; known: "),
        ('type = "page"\nuser_id = "id"\n', "type must be identify or track"),
        ('type = "identify"\n', "set user_id or anonymous_id (a column name)"),
        (
            'type = "track"\nuser_id = "id"\n',
            "a track mapping needs event (a column) or event_name (text)",
        ),
        ("user_id = 3\n", "user_id must be a string"),
        ('user_id = "id"\n[traits]\nemail = 1\n', "[traits] must map names to column names"),
        ('user_id = "id\n', "is not valid TOML: "),
        ('user_id = "id"\nnumbers = "revenue"\n', "numbers must be a list of names"),
        (
            'user_id = "id"\nnumbers = ["revenue"]\n[traits]\nemail = "E-Mail"\n',
            "numbers names 'revenue', which [traits] and [properties] do not",
        ),
    ],
)
def test_a_bad_mapping_file_is_a_clear_error(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "m.toml"
    path.write_text(text)
    with pytest.raises(ImportError_) as caught:
        load_mapping(path)
    assert str(caught.value).startswith(f"mapping file {path}")
    assert message in str(caught.value)


def test_a_missing_mapping_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ImportError_) as caught:
        load_mapping(tmp_path / "nope.toml")
    assert str(caught.value) == f"mapping file {tmp_path / 'nope.toml'} does not exist"


# -- Parquet -------------------------------------------------------------------------------
def write_parquet(path: Path) -> None:
    props = pa.struct([("plan", pa.string()), ("seats", pa.int64())])
    table = pa.table(
        {
            "type": ["track", "identify", "track", "track"],
            "userId": ["u1", "u2", None, "u3"],
            "event": ["Signed Up", None, "Orphan", "Broken"],
            "timestamp": pa.array(
                [
                    datetime(2026, 4, 1, 8, 0, tzinfo=UTC),
                    datetime(2026, 4, 2, 9, 0, tzinfo=UTC),
                    datetime(2026, 4, 3, 9, 0, tzinfo=UTC),
                    datetime(2026, 4, 4, 9, 0, tzinfo=UTC),
                ],
                type=pa.timestamp("us", tz="UTC"),
            ),
            "properties": pa.array(
                [{"plan": "pro", "seats": 3}, None, {"plan": None, "seats": 1}, None],
                type=props,
            ),
            "context": ['{"channel":"email"}', None, None, "{not json"],
        }
    )
    pq.write_table(table, path)


def test_parquet_rows_are_imported_and_bad_rows_rejected(tp: Touchpoints, tmp_path: Path) -> None:
    path = tmp_path / "events.parquet"
    write_parquet(path)
    summary = run_import(tp, path)
    assert summary_of(summary) == (4, 2, 2, 2)
    entries = rejects(tmp_path / "events.parquet.rejects.jsonl")
    assert [(e["line"], e["errors"]) for e in entries] == [
        (3, [("userId", "userId or anonymousId is required")]),
        (4, [("", "column context holds text that is not JSON")]),
    ]
    assert orjson.loads(entries[0]["raw"]) == {
        "type": "track",
        "event": "Orphan",
        "timestamp": "2026-04-03T09:00:00+00:00",
        "properties": {"seats": 1},
    }

    events = tp.events.list(newest_first=False)
    assert [(e["type"], e["user_id"], e["event"]) for e in events] == [
        ("track", "u1", "Signed Up"),
        ("identify", "u2", None),
    ]
    signed_up, identified = events
    assert orjson.loads(signed_up["properties"]) == {"plan": "pro", "seats": 3}
    assert orjson.loads(signed_up["context"]) == {"channel": "email"}
    assert signed_up["channel"] == "email"
    assert signed_up["timestamp"] == datetime(2026, 4, 1, 8, 0)
    assert identified["timestamp"] == datetime(2026, 4, 2, 9, 0)
    assert all(e["message_id"].startswith("import-") for e in events)

    again = run_import(tp, path)
    assert summary_of(again) == (4, 2, 0, 2)
    assert tp.events.count() == 2


def test_parquet_rows_that_repeat_exactly_are_each_stored_and_once_only(
    tp: Touchpoints, tmp_path: Path
) -> None:
    path = tmp_path / "clicks.parquet"
    pq.write_table(
        pa.table({"type": ["page"] * 3, "anonymousId": ["a1", "a1", "a2"], "name": ["Home"] * 3}),
        path,
    )
    assert summary_of(run_import(tp, path)) == (3, 3, 3, 0)
    assert summary_of(run_import(tp, path)) == (3, 3, 0, 0)


def test_a_file_that_is_not_parquet_is_a_clear_error(tp: Touchpoints, tmp_path: Path) -> None:
    path = tmp_path / "fake.parquet"
    path.write_text('{"type":"track"}\n')
    with pytest.raises(ImportError_, match=r"^fake\.parquet is not a readable Parquet file: "):
        run_import(tp, path)
    assert tp.events.count() == 0


def test_a_jsonl_file_can_be_read_with_an_explicit_format(tp: Touchpoints, tmp_path: Path) -> None:
    path = tmp_path / "export.txt"
    path.write_text(GOOD_IDENTIFY + "\n")
    with pytest.raises(ImportError_):
        detect_format(path)
    assert summary_of(run_import(tp, path, fmt="jsonl")) == (1, 1, 1, 0)


def test_a_byte_order_mark_at_the_start_of_a_jsonl_file_is_ignored(
    tp: Touchpoints, tmp_path: Path
) -> None:
    path = tmp_path / "windows.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + f"{GOOD_IDENTIFY}\n{WITH_ID}\n".encode())
    assert summary_of(run_import(tp, path)) == (2, 2, 2, 0)


def test_csv_rows_that_differ_only_in_quoting_are_both_stored(
    tp: Touchpoints, tmp_path: Path
) -> None:
    csv_path = tmp_path / "orders.csv"
    # Two different orders: product "Shirt, red" in size M, and product "Shirt" in size " red,M".
    csv_path.write_text('customer,product,size\nK-1,"Shirt, red",M\nK-1,Shirt," red,M"\n')
    mapping_path = tmp_path / "orders.toml"
    mapping_path.write_text(
        'delimiter = ","\ntype = "track"\nuser_id = "customer"\nevent_name = "Order Completed"\n'
        '[properties]\nproduct = "product"\nsize = "size"\n'
    )
    summary = run_import(tp, csv_path, load_mapping(mapping_path))
    assert summary_of(summary) == (2, 2, 2, 0)
