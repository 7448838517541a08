"""The audit log: lines chained by their hashes, a chain head that notices lines cut off the
end, verification that names the first line that does not fit, buffering that loses nothing
on a clean shutdown, and targets that never carry an identifier's value."""

from __future__ import annotations

import hashlib
import threading
from datetime import timedelta

import orjson
import pytest

from touchpoints.access.audit import (
    GENESIS,
    AuditLog,
    AuditRefused,
    line_hash,
    parse_anchor,
)
from touchpoints.config import Settings
from touchpoints.core import Touchpoints
from touchpoints.errors import BadRequest


def _fill(tp: Touchpoints, n: int = 5) -> None:
    for i in range(1, n + 1):
        tp.audit.record("key_0000000000aa", "profile.read", f"person:{i}", "10.0.0.1")


def _sql(tp: Touchpoints, statement: str, params: list[object] | None = None) -> None:
    """What someone with write access to the database file could do behind touchpoints."""
    tp.warehouse.run(statement, params)


def test_each_line_hashes_the_line_before_and_its_own_fields(tp: Touchpoints) -> None:
    first = tp.audit.record("key_0000000000aa", "user.create", "user:usr_000000000001", "::1")
    second = tp.audit.record("usr_000000000001", "signin.success", "user:usr_000000000001")
    rows = tp.warehouse.fetchall(
        "SELECT seq, logged_at, actor, action, target, origin, detail, prev_hash, hash "
        "FROM audit_log ORDER BY seq"
    )
    assert [row[0] for row in rows] == [1, 2]
    assert rows[0][7] == GENESIS and rows[1][7] == rows[0][8] == first.hash
    expected = hashlib.sha256(
        GENESIS.encode()
        + b"\n"
        + orjson.dumps(
            [
                1,
                rows[0][1].isoformat(timespec="microseconds"),
                "key_0000000000aa",
                "user.create",
                "user:usr_000000000001",
                "::1",
                None,
            ]
        )  # fmt: skip
    ).hexdigest()
    assert first.hash == expected
    assert second.hash == line_hash(first.hash, 2, *rows[1][1:7])
    assert tp.warehouse.fetchall("SELECT seq, hash FROM audit_head") == [(2, second.hash)]
    check = tp.audit.verify()
    assert (check.ok, check.lines, check.head_seq, check.head_hash) == (True, 2, 2, second.hash)


def test_the_chain_goes_on_after_a_reopen(settings: Settings) -> None:
    with Touchpoints(settings) as tp:
        _fill(tp, 3)
    with Touchpoints(settings) as tp:
        line = tp.audit.record("cli", "key.create", "key:key_0000000000bb", "127.0.0.1")
        assert line.seq == 4
        assert tp.audit.verify().ok


@pytest.mark.parametrize("where", [1, 3, 5])
def test_a_changed_line_is_found_first_middle_or_last(tp: Touchpoints, where: int) -> None:
    _fill(tp)
    _sql(tp, "UPDATE audit_log SET target = 'person:99' WHERE seq = ?", [where])
    check = tp.audit.verify()
    assert not check.ok and check.first_broken == where
    assert check.problem == f"line {where} was changed: its hash does not fit its fields"
    assert check.lines == where - 1


@pytest.mark.parametrize("where", [1, 3, 5])
def test_a_line_changed_with_its_hash_made_again_is_found(tp: Touchpoints, where: int) -> None:
    """Rewriting a line and its own hash breaks the next line's link (or the head's)."""
    _fill(tp)
    row = tp.warehouse.fetchall(
        "SELECT seq, logged_at, actor, action, target, origin, detail, prev_hash "
        "FROM audit_log WHERE seq = ?",
        [where],
    )[0]
    forged = line_hash(row[7], row[0], row[1], "key_0000000000zz", *row[3:7])
    _sql(
        tp,
        "UPDATE audit_log SET actor = 'key_0000000000zz', hash = ? WHERE seq = ?",
        [forged, where],
    )
    check = tp.audit.verify()
    assert not check.ok
    if where < 5:
        assert check.first_broken == where + 1
        assert check.problem.startswith(f"line {where + 1} does not follow line {where}")
    else:
        assert check.first_broken == 5
        assert check.problem == "line 5 does not fit the head: it was changed or replaced"


@pytest.mark.parametrize(
    ("deleted", "broken", "problem"),
    [
        ([1], 1, "line 1 is missing (deleted): the next line is 2"),
        ([3], 3, "line 3 is missing (deleted): the next line is 4"),
        ([2, 3], 2, "lines 2 to 3 are missing (deleted): the next line is 4"),
        ([5], 5, "line 5 is missing (deleted from the end): the head names line 5"),
        ([4, 5], 4, "lines 4 to 5 are missing (deleted from the end): the head names line 5"),
    ],
)
def test_a_deleted_line_is_found_first_middle_or_last(
    tp: Touchpoints, deleted: list[int], broken: int, problem: str
) -> None:
    _fill(tp)
    for seq in deleted:
        _sql(tp, "DELETE FROM audit_log WHERE seq = ?", [seq])
    check = tp.audit.verify()
    assert (check.ok, check.first_broken, check.problem) == (False, broken, problem)


def test_lines_cut_off_with_the_head_set_back_are_found_by_an_anchor(tp: Touchpoints) -> None:
    _fill(tp)
    kept = tp.audit.verify()  # the operator keeps "5:<hash>" somewhere else
    anchor = parse_anchor(f"{kept.head_seq}:{kept.head_hash}")
    assert tp.audit.verify(anchor).ok
    # Someone deletes the last two lines and sets the head back to line 3: a chain that is
    # consistent in itself …
    line3 = tp.warehouse.scalar("SELECT hash FROM audit_log WHERE seq = 3")
    _sql(tp, "DELETE FROM audit_log WHERE seq > 3")
    _sql(tp, "UPDATE audit_head SET seq = 3, hash = ?", [line3])
    assert tp.audit.verify().ok
    # … but not with the anchor kept.
    check = tp.audit.verify(anchor)
    assert (check.ok, check.first_broken) == (False, 5)
    assert check.problem == "the anchor names line 5, but the log ends at line 3"
    with pytest.raises(BadRequest, match="SEQ:HASH"):
        parse_anchor("5:abc")


def test_a_rewritten_chain_differs_from_the_anchor_kept_for_it(tp: Touchpoints) -> None:
    _fill(tp, 3)
    kept = tp.audit.verify()
    _sql(tp, "DELETE FROM audit_log")
    _sql(tp, "UPDATE audit_head SET seq = 0, hash = ?", [GENESIS])
    rewritten = AuditLog(tp.warehouse)  # the same lines again, with other times
    for i in range(1, 4):
        rewritten.record("key_0000000000aa", "profile.read", f"person:{i}", "10.0.0.1")
    assert rewritten.verify().ok
    check = rewritten.verify((kept.head_seq, kept.head_hash))
    assert (check.ok, check.first_broken) == (False, 3)
    assert "differs from the anchor" in (check.problem or "")


def test_lines_added_behind_the_head_are_found(tp: Touchpoints) -> None:
    _fill(tp, 2)
    _sql(tp, "UPDATE audit_head SET seq = 1, hash = (SELECT hash FROM audit_log WHERE seq = 1)")
    check = tp.audit.verify()
    assert (check.ok, check.first_broken) == (False, 2)
    assert "not covered by the head" in (check.problem or "")


@pytest.mark.parametrize(
    "target",
    ["email:anna@example.com", "user_id:u-1001", "phone:+4917012345", "person:anna", "anna"],
)
def test_a_target_that_could_carry_an_identifier_is_refused(tp: Touchpoints, target: str) -> None:
    with pytest.raises(AuditRefused, match="never by an identifier's value"):
        tp.audit.record("key_0000000000aa", "profile.read", target)
    assert tp.warehouse.scalar("SELECT count(*) FROM audit_log") == 0


@pytest.mark.parametrize("detail", ["anna@example.com", 'query "city=Hamburg"', "x" * 301])
def test_a_detail_with_an_address_or_quotes_is_refused(tp: Touchpoints, detail: str) -> None:
    with pytest.raises(AuditRefused, match="a detail holds words"):
        tp.audit.record("key_0000000000aa", "privacy.export", "person:1", None, detail)


def test_actions_are_kind_dot_verb(tp: Touchpoints) -> None:
    with pytest.raises(AuditRefused, match="KIND.VERB"):
        tp.audit.record("key_0000000000aa", "read profile", "person:1")


def test_buffered_lines_are_written_by_the_thread_and_all_at_a_clean_shutdown(
    settings: Settings,
) -> None:
    tp = Touchpoints(settings)
    tp.audit.start()
    threads = [
        threading.Thread(
            target=lambda n=n: [
                tp.audit.record(f"key_00000000000{n}", "profile.read", f"person:{i}")
                for i in range(500)
            ]
        )
        for n in range(4)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    tp.close()  # without waiting: the thread may not have written the last lines yet
    with Touchpoints(settings) as reopened:
        assert reopened.warehouse.scalar("SELECT count(*) FROM audit_log") == 2000
        check = reopened.audit.verify()
        assert (check.ok, check.lines) == (True, 2000)


def test_a_durable_line_is_written_before_record_returns(tp: Touchpoints) -> None:
    tp.audit.start()
    tp.audit.record("key_0000000000aa", "profile.read", "person:1")  # buffered
    tp.audit.record("key_0000000000aa", "privacy.erase", "person:1", durable=True)
    assert tp.warehouse.scalar("SELECT count(*) FROM audit_log") == 2


def test_pages_filter_by_actor_action_and_time_newest_first(tp: Touchpoints) -> None:
    tp.audit.record("usr_000000000001", "signin.success", "user:usr_000000000001")
    for i in range(5):
        tp.audit.record("key_0000000000aa", "profile.read", f"person:{i}")
    tp.audit.record("key_0000000000aa", "user.create", "user:usr_000000000002")
    tp.audit.record("key_0000000000aa", "user.role", "user:usr_000000000002", None, "a → b")
    page = tp.audit.page(actor="key_0000000000aa", action="profile.read", limit=3)
    assert page.count == 5 and [line.seq for line in page.lines] == [6, 5, 4]
    assert page.next == 4
    rest = tp.audit.page(actor="key_0000000000aa", action="profile.read", before=4, limit=3)
    assert [line.seq for line in rest.lines] == [3, 2] and rest.next is None
    assert [line.action for line in tp.audit.page(action="user.").lines] == [
        "user.role",
        "user.create",
    ]
    first = tp.audit.page(limit=1000).lines[-1].at
    assert tp.audit.page(until=first).count == 0
    assert tp.audit.page(since=first).count == 8
    assert tp.audit.page(since=first + timedelta(days=1)).count == 0
