"""Dashboard sessions: only read and admin keys open one; it ends at its time, at logout,
and when its key is revoked."""

from __future__ import annotations

import pytest

from touchpoints.core import Touchpoints
from touchpoints.web.sessions import LoginRefused, Sessions


def test_sessions_open_for_read_and_admin_keys_and_end_on_time_logout_and_revocation(
    tp: Touchpoints,
) -> None:
    sessions = Sessions(tp.keys)
    read_key, read_secret = tp.keys.create("read")
    _admin, admin_secret = tp.keys.create("admin")
    _write, write_secret = tp.keys.create("write")
    with pytest.raises(LoginRefused, match="only sends events"):
        sessions.login(write_secret)
    with pytest.raises(LoginRefused, match="not valid"):
        sessions.login("tp_read_" + "0" * 32)
    with pytest.raises(LoginRefused, match="give a read or admin key"):
        sessions.login("  ")
    reader = sessions.login(f" {read_secret} ")  # pasted with spaces
    admin = sessions.login(admin_secret)
    assert sessions.get(reader.token) == reader and not reader.admin
    assert sessions.get(admin.token) == admin and admin.admin
    assert reader.token != admin.token and reader.csrf != reader.token
    sessions.logout(admin.token)
    assert sessions.get(admin.token) is None
    tp.keys.revoke(read_key.id)
    assert sessions.get(reader.token) is None
    assert sessions.get(None) is None and sessions.get("made-up") is None
    short = Sessions(tp.keys, lifetime=-1)  # every session is over as soon as it starts
    assert short.get(short.login(admin_secret).token) is None
