"""Every table of the warehouse is in the registry of personal data, or says why it is not:
a table added later is covered by export and erasure from its first day."""

from __future__ import annotations

from touchpoints.core import Touchpoints
from touchpoints.warehouse.personal import NOT_PERSONAL, PERSONAL


def _tables(tp: Touchpoints) -> set[str]:
    rows = tp.warehouse.fetchall(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'"
    )
    return {name for (name,) in rows}


def test_every_table_is_registered_or_says_why_it_holds_no_personal_data(
    tp: Touchpoints,
) -> None:
    registered = {table.name for table in PERSONAL}
    assert not registered & set(NOT_PERSONAL), "a table is either personal or not"
    unregistered = _tables(tp) - registered - set(NOT_PERSONAL)
    assert unregistered == set(), (
        f"tables with no entry in warehouse/personal.py: {sorted(unregistered)}; add each to "
        "PERSONAL (how its rows find their person) or to NOT_PERSONAL (why it holds none)"
    )
    assert registered | set(NOT_PERSONAL) <= _tables(tp), "the registry names no lost table"


def test_every_registered_column_exists(tp: Touchpoints) -> None:
    for table in PERSONAL:
        columns = {
            name
            for (name,) in tp.warehouse.fetchall(
                "SELECT column_name FROM information_schema.columns WHERE table_name = ?",
                [table.name],
            )
        }
        wanted = set(table.columns) | ({table.time} if table.time else set())
        assert wanted <= columns, (table.name, wanted - columns)
