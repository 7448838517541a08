"""privacy: the data subject's rights (export, erasure), suppressions and retention."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from touchpoints.cli.base import DataDir, app, client_for, err, fail, out
from touchpoints.privacy.results import Erasure, Lifted, RequestList, RetentionRun, outcome_text
from touchpoints.privacy.service import PrivacyOverview
from touchpoints.times import iso, iso_or_none

privacy_app = typer.Typer(
    help="The data subject's rights: export, erase; requests, suppressions, retention.",
    no_args_is_help=True,
)
app.add_typer(privacy_app, name="privacy")

Key = Annotated[
    str,
    typer.Argument(help="Any identifier as TYPE:VALUE (email:anna@example.com) or person:N"),
]


@privacy_app.command()
def export(
    key: Key,
    data_dir: DataDir = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="The archive [default: touchpoints-export-N.zip]"),
    ] = None,
) -> None:
    """Everything about one person as a ZIP archive (GDPR Art. 15 and 20): profile, consent,
    stages and every stored row, as JSON and CSV, with a README."""
    with client_for(data_dir) as api:
        response = api.download("/v1/privacy/exports", {"key": key})
    number = response.headers.get("X-Privacy-Request", "")
    path = output or Path(f"touchpoints-export-{number}.zip")
    if path.exists():
        raise fail(f"{path} exists; choose another with --output")
    try:
        # Personal data: readable by its owner only.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(response.content)
    except OSError as exc:
        raise fail(f"cannot write {path}: {exc.strerror}") from None
    out.print(
        f"request {number}: archive written to {path} ({len(response.content):,} bytes)",
        highlight=False,
    )


@privacy_app.command()
def erase(
    key: Key,
    data_dir: DataDir = None,
    note: Annotated[
        str | None, typer.Option(help="Why, or a ticket number (no personal data)")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation")] = False,
) -> None:
    """Erase one person everywhere (GDPR Art. 17): every identifier, their events and all
    derived from them; later events with their identifiers are dropped. Cannot be undone."""
    if not yes:
        if not sys.stdin.isatty():
            raise fail("erasure cannot be undone: pass --yes to confirm")
        typer.confirm(f"Erase {key} and everything about them, for good?", abort=True)
    with client_for(data_dir) as api:
        done: Erasure = api.post("/v1/privacy/erasures", {"key": key, "note": note}, Erasure)
    before, after = done.database_bytes
    removed = ", ".join(f"{table} {count:,}" for table, count in done.removed.items())
    out.print(
        f"request {done.request.id}: {done.person} erased: {done.identifiers} identifiers, "
        f"rows removed: {removed or 'none'}; {done.reject_lines} reject-file lines; "
        f"{done.persons_recomputed} other persons recomputed; database "
        f"{before:,} → {after:,} bytes",
        highlight=False,
    )
    if done.export_files:
        out.print(f"{done.export_files:,} Parquet export file(s) written again without them")
    if done.identity_result_files:
        out.print(
            f"{done.identity_result_files:,} file(s) of loaded identity results written "
            "again without them"
        )
    for failure in done.export_failures:
        err.print(
            f"[bold yellow]warning:[/] export directory not reached, the person's rows are "
            f"still there: {failure}",
            highlight=False,
        )
    for failure in done.identity_result_failures:
        err.print(
            f"[bold yellow]warning:[/] identity result not reached, the person's "
            f"identifiers are still there: {failure}",
            highlight=False,
        )


@privacy_app.command()
def requests(
    data_dir: DataDir = None,
    status: Annotated[str | None, typer.Option(help="received, done or refused")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
) -> None:
    """Access and erasure requests, newest first, with their deadlines."""
    with client_for(data_dir) as api:
        found: RequestList = api.get(
            "/v1/privacy/requests", RequestList, status=status, limit=limit
        )
    table = Table()
    for column in ("id", "kind", "person", "status", "received", "due", "done", "by", "outcome"):
        table.add_column(column, overflow="fold")
    for item in found.requests:
        table.add_row(
            str(item.id),
            item.kind,
            item.subject,
            item.status + (" (overdue)" if item.overdue else ""),
            iso(item.received_at)[:19],
            iso(item.due_at)[:10],
            (iso_or_none(item.done_at) or "")[:19],
            item.requested_by or "",
            outcome_text(item.outcome),
        )
    out.print(table)


@privacy_app.command()
def status(data_dir: DataDir = None) -> None:
    """Open and overdue requests, suppressions, and the privacy settings in force."""
    with client_for(data_dir) as api:
        found: PrivacyOverview = api.get("/v1/privacy", PrivacyOverview)
    settings = found.settings
    out.print(
        f"requests open: {found.open_requests} ({found.overdue_requests} overdue); "
        f"suppressed identifiers: {found.suppression.identifiers}, events dropped: "
        f"{found.suppression.events_dropped:,}",
        highlight=False,
    )
    purposes = ", ".join(f"{p} → {c}" for p, c in settings.consent_purposes.items())
    out.print(f"consent purposes: {purposes}", highlight=False)
    out.print(f"persons who denied analyses are: {settings.consent_analyses}d", highlight=False)
    for rule in settings.retention:
        where = ", ".join(
            f"{name} {value}"
            for name, value in (
                ("event", rule.event),
                ("type", rule.type),
                ("channel", rule.channel),
            )
            if value
        )
        out.print(f"retention: {where or 'every event'}: {rule.days} days", highlight=False)
    if not settings.retention:
        out.print("retention: none configured (events are kept)", highlight=False)


@privacy_app.command()
def lift(
    request_id: Annotated[int, typer.Argument(help="The erasure request's id", min=1)],
    data_dir: DataDir = None,
) -> None:
    """Accept again the events of the identifiers an erasure suppressed (admin)."""
    with client_for(data_dir) as api:
        done: Lifted = api.post(f"/v1/privacy/requests/{request_id}/lift", None, Lifted)
    out.print(
        f"request {done.request_id}: {done.lifted} identifiers accepted again", highlight=False
    )


@privacy_app.command()
def retention(
    data_dir: DataDir = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Count only")] = False,
) -> None:
    """Remove what is past its retention period now (the server does it daily)."""
    with client_for(data_dir) as api:
        done: RetentionRun = api.post("/v1/privacy/retention", None, RetentionRun, dry_run=dry_run)
    verb = "would remove" if done.dry_run else "removed"
    out.print(
        f"{verb} {done.events:,} events (per rule: {done.per_rule}), "
        f"{done.quarantine:,} quarantined items, {done.identifiers:,} identifiers "
        f"in {done.seconds:.1f} s",
        highlight=False,
    )
