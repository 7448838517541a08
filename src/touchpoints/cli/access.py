"""users and audit: the dashboard's accounts and the audit log, through the API.

Like every command, these go to the running server's API, or without one to the same app in
process: ``touchpoints users add anna --role admin`` on a fresh data directory makes the first
admin, no server needed. A password is asked for twice (hidden), or read from standard input
with ``--password-stdin`` (its first line), never taken as an argument (it would stay in the
shell's history and in the process list).
"""

from __future__ import annotations

import sys
from typing import Annotated
from urllib.parse import quote

import typer
from rich.table import Table

from touchpoints.access.audit import AuditCheck, AuditPage
from touchpoints.access.roles import USER_ROLES
from touchpoints.access.users import PASSWORD_MIN, UserInfo, UserList
from touchpoints.cli.base import DataDir, app, client_for, fail, out
from touchpoints.times import iso, iso_or_none

users_app = typer.Typer(
    help="Dashboard users: add, list, change a role, disable, enable, set a password.",
    no_args_is_help=True,
)
audit_app = typer.Typer(
    help="The audit log: list its lines, verify its hash chain.", no_args_is_help=True
)
app.add_typer(users_app, name="users")
app.add_typer(audit_app, name="audit")

RoleArg = Annotated[str, typer.Option("--role", help=f"One of: {', '.join(USER_ROLES)}")]
PasswordStdin = Annotated[
    bool,
    typer.Option("--password-stdin", help="Read the password from standard input (its first line)"),
]


def _role(role: str) -> str:
    if role not in USER_ROLES:
        raise fail(f"--role must be one of {', '.join(USER_ROLES)}, not {role!r}")
    return role


def _password(from_stdin: bool) -> str:
    """The new password: stdin's first line, or asked for twice without echo."""
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
        if not password:
            raise fail("--password-stdin: standard input holds no password")
        return password
    return str(
        typer.prompt(
            f"Password (at least {PASSWORD_MIN} characters)",
            hide_input=True,
            confirmation_prompt=True,
        )
    )


def _path(name: str) -> str:
    return f"/v1/users/{quote(name.strip().lower(), safe='')}"


# -- users -----------------------------------------------------------------------------------
@users_app.command("add")
def users_add(
    name: Annotated[str, typer.Argument(help="The user name (letters, digits and . _ @ -)")],
    role: RoleArg = "viewer",
    data_dir: DataDir = None,
    password_stdin: PasswordStdin = False,
) -> None:
    """Add a dashboard user; works without a server (the first admin of a new install)."""
    role = _role(role)
    password = _password(password_stdin)
    with client_for(data_dir) as api:
        user = api.post("/v1/users", {"name": name, "role": role, "password": password}, UserInfo)
    out.print(f"added {user.name} ({user.role}), id {user.id}", highlight=False)


@users_app.command("list")
def users_list(data_dir: DataDir = None) -> None:
    """List the users (never their passwords)."""
    with client_for(data_dir) as api:
        users = api.get("/v1/users", UserList).users
    table = Table()
    for column in ("name", "role", "id", "created", "last sign-in", "disabled"):
        table.add_column(column)
    for user in users:
        table.add_row(
            user.name,
            user.role,
            user.id,
            iso(user.created_at)[:19],
            (iso_or_none(user.last_signin_at) or "")[:19],
            (iso_or_none(user.disabled_at) or "")[:19],
        )
    out.print(table)


@users_app.command("role")
def users_role(
    name: Annotated[str, typer.Argument()],
    role: Annotated[str, typer.Argument(help=f"One of: {', '.join(USER_ROLES)}")],
    data_dir: DataDir = None,
) -> None:
    """Give a user another role; their sessions end."""
    role = _role(role)
    with client_for(data_dir) as api:
        user = api.call("PUT", f"{_path(name)}/role", UserInfo, json={"role": role})
    out.print(f"{user.name} is now {user.role}", highlight=False)


@users_app.command("disable")
def users_disable(name: Annotated[str, typer.Argument()], data_dir: DataDir = None) -> None:
    """Disable a user: no more sign-ins, their sessions end now."""
    with client_for(data_dir) as api:
        user = api.call("POST", f"{_path(name)}/disable", UserInfo)
    out.print(f"{user.name} is disabled", highlight=False)


@users_app.command("enable")
def users_enable(name: Annotated[str, typer.Argument()], data_dir: DataDir = None) -> None:
    """Let a disabled user sign in again."""
    with client_for(data_dir) as api:
        user = api.call("POST", f"{_path(name)}/enable", UserInfo)
    out.print(f"{user.name} can sign in again", highlight=False)


@users_app.command("password")
def users_password(
    name: Annotated[str, typer.Argument()],
    data_dir: DataDir = None,
    password_stdin: PasswordStdin = False,
) -> None:
    """Set a user's password; their sessions end."""
    password = _password(password_stdin)
    with client_for(data_dir) as api:
        user = api.call("PUT", f"{_path(name)}/password", UserInfo, json={"password": password})
    out.print(f"{user.name} has a new password", highlight=False)


users_app.command("passwd", hidden=True)(users_password)  # the Unix spelling, as an alias


# -- audit -----------------------------------------------------------------------------------
@audit_app.command("list")
def audit_list(
    data_dir: DataDir = None,
    actor: Annotated[str | None, typer.Option(help="A key or user id")] = None,
    action: Annotated[
        str | None, typer.Option(help="e.g. profile.read; 'user.' for every change to users")
    ] = None,
    since: Annotated[str | None, typer.Option(help="From (ISO 8601, UTC)")] = None,
    until: Annotated[str | None, typer.Option(help="Before (ISO 8601, UTC)")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON line per line")] = False,
) -> None:
    """The audit log's lines, newest first."""
    with client_for(data_dir) as api:
        page = api.get(
            "/v1/audit",
            AuditPage,
            actor=actor,
            action=action,
            since=since,
            until=until,
            limit=limit,
        )
    if as_json:
        for line in page.lines:
            sys.stdout.write(line.model_dump_json() + "\n")
        return
    table = Table(title=f"{page.count:,} line(s)")
    for column in ("line", "time", "actor", "action", "target", "from", "detail"):
        table.add_column(column, overflow="fold")
    for line in page.lines:
        table.add_row(
            str(line.seq),
            iso(line.at)[:23],
            f"{line.actor} ({page.names[line.actor]})" if line.actor in page.names else line.actor,
            line.action,
            line.target or "",
            line.origin or "",
            line.detail or "",
        )
    out.print(table)


@audit_app.command("verify")
def audit_verify(
    data_dir: DataDir = None,
    anchor: Annotated[
        str | None,
        typer.Option(help="SEQ:HASH of a head printed before and kept elsewhere"),
    ] = None,
) -> None:
    """Check the hash chain: every line unchanged, none missing. Exits 1 when broken."""
    with client_for(data_dir) as api:
        check = api.get("/v1/audit/verify", AuditCheck, anchor=anchor)
    if check.ok:
        out.print(f"intact: {check.lines:,} lines", highlight=False)
        out.print(f"head: {check.head_seq}:{check.head_hash}", highlight=False)
        return
    raise fail(f"broken at line {check.first_broken}: {check.problem}")
