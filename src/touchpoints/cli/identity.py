"""profile, search and identity: one person across devices and channels."""

from __future__ import annotations

import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated
from urllib.parse import quote

import orjson
import typer
from rich.table import Table

from touchpoints.cli.base import (
    DataDir,
    app,
    client_for,
    fail,
    identity_app,
    out,
    print_events,
)
from touchpoints.events import StoredEvent
from touchpoints.identity.outside import LoadQuery, PersonsLoaded
from touchpoints.identity.results import (
    LinkPage,
    MatchedPair,
    MatchRun,
    PairPage,
    PairSide,
    RebuildResult,
    Unlinked,
    Unmerged,
)
from touchpoints.profiles.results import PersonList, Profile, Timeline
from touchpoints.times import iso, iso_or_none


# -- profiles and identity -------------------------------------------------------------------
@app.command()
def profile(
    key: Annotated[
        str,
        typer.Argument(help="Any identifier as TYPE:VALUE (email:anna@example.com) or person:N"),
    ],
    data_dir: DataDir = None,
    events: Annotated[int, typer.Option(min=0, max=1000, help="Recent events to show")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="The profile as JSON")] = False,
    history: Annotated[bool, typer.Option(help="With every value each trait had")] = False,
) -> None:
    """The 360° profile of one person: identifiers, traits, channels, orders, timeline."""
    path = f"/v1/profiles/{_path(key)}"
    with client_for(data_dir) as api:
        found: Profile = api.get(path, Profile, history=history)
        timeline = api.get(f"{path}/timeline", Timeline, limit=events).events if events else []
    if as_json:
        body = found.model_dump(mode="json", exclude=None if history else {"trait_history"})
        recent = [event.model_dump(mode="json") for event in timeline]
        sys.stdout.write(orjson.dumps({**body, "timeline": recent}).decode() + "\n")
        return
    _print_profile(found, timeline)


def _print_profile(found: Profile, timeline: list[StoredEvent]) -> None:
    computed = found.computed
    out.print(f"[bold]{found.person}[/bold]", highlight=False)
    out.print(
        f"first seen {iso_or_none(computed.first_seen)}, "
        f"last seen {iso_or_none(computed.last_seen)}; "
        f"{computed.events:,} events; {computed.orders} orders, revenue {computed.revenue:,.2f}"
        + (
            f", last purchase {computed.days_since_last_purchase} days ago"
            if computed.days_since_last_purchase is not None
            else ""
        ),
        highlight=False,
    )
    channels = ", ".join(f"{name} {count}" for name, count in computed.channels.items())
    out.print(f"channels: {channels}", highlight=False)
    ids = Table(title="identifiers")
    for column in ("type", "value", "first seen"):
        ids.add_column(column, overflow="fold")
    for id_type, values in found.identifiers.items():
        for item in values:
            ids.add_row(id_type, item.value, _seconds(item.first_seen))
    out.print(ids)
    if found.traits:
        traits = Table(title="traits")
        for column in ("trait", "value", "source", "as of"):
            traits.add_column(column, overflow="fold")
        for name, trait in found.traits.items():
            traits.add_row(name, str(trait.value), trait.source, _seconds(trait.timestamp))
        out.print(traits)
    for merge in found.merges:
        out.print(
            f"{merge.kind} {_seconds(merge.at)}: {merge.absorbed or ''} → {merge.kept} "
            f"by {merge.identifier}" + (f" ({merge.note})" if merge.note else ""),
            highlight=False,
        )
    for refused in found.rejected_links:
        out.print(
            f"refused link: {refused.identifier} ({refused.rule}) between {refused.person} "
            f"and {refused.other}",
            highlight=False,
        )
    if timeline:
        print_events(timeline, as_json=False)


def _seconds(moment: datetime | None) -> str:
    """A moment to the second, as the tables show it (2026-03-02T09:15:00)."""
    return "" if moment is None else iso(moment)[:19]


def _path(key: str) -> str:
    """An identifier key as a path segment of the API (``email:a@b.de``, ``phone:+49…``)."""
    return quote(key, safe=":@+")


@app.command()
def search(
    trait: Annotated[str, typer.Argument(help="Trait name, e.g. city or last_name")],
    value: Annotated[str, typer.Argument(help="Value (case-insensitive)")],
    data_dir: DataDir = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
) -> None:
    """Persons whose trait has a value, one person id a line."""
    with client_for(data_dir) as api:
        found = api.get("/v1/profiles", PersonList, trait=trait, value=value, limit=limit)
    for person in found.persons:
        out.print(person, highlight=False)


@identity_app.command("rebuild")
def identity_rebuild(
    data_dir: DataDir = None,
    extract: Annotated[
        bool,
        typer.Option(
            "--extract",
            help="Extract every event's identifiers again, even when the identifier rules "
            "are those that found the stored ones (they are reused then)",
        ),
    ] = False,
) -> None:
    """Recompute the whole identity map from the events (set-based; agrees with live updates)."""
    with client_for(data_dir) as api:
        result = api.post("/v1/identity/rebuild", answer=RebuildResult, extract=extract)
    found = "extracted again" if result.extracted else "reused (the identifier rules are unchanged)"
    out.print(
        f"{result.events:,} events (identifiers {found}), {result.identifiers:,} identifiers, "
        f"{result.links:,} links → {result.persons:,} persons "
        f"({result.iterations} propagation steps, {result.replayed_components:,} "
        f"components replayed under the merge rules) in {result.seconds:.1f} s ("
        + ", ".join(f"{name} {sec:.1f} s" for name, sec in result.phases.items())
        + ")",
        highlight=False,
    )


@identity_app.command("load")
def identity_load(
    result: Annotated[
        Path,
        typer.Argument(
            help="The result directory of touchpoints spark rebuild (holding _result.json)"
        ),
    ],
    data_dir: DataDir = None,
) -> None:
    """Load an identity map rebuilt on Spark: every identifier's person and the refused links.
    Refused when the result is not the rebuild of this data directory as it is now."""
    with client_for(data_dir) as api:
        loaded = api.post(
            "/v1/identity/load", LoadQuery(result=str(result.absolute())), PersonsLoaded
        )
    out.print(
        f"{loaded.identifiers:,} identifiers → {loaded.persons:,} persons loaded "
        f"({loaded.changed:,} with another person than before, {loaded.rejections:,} links "
        f"refused; computed "
        f"on {loaded.engine} from events up to seq {loaded.events_up_to:,}) in "
        f"{loaded.seconds:.1f} s",
        highlight=False,
    )


@identity_app.command("unmerge")
def identity_unmerge(
    identifier: Annotated[
        str, typer.Argument(help="The wrongly linked identifier, e.g. anonymous_id:tablet-1")
    ],
    data_dir: DataDir = None,
    note: Annotated[str, typer.Option(help="Why (kept in the merge log)")] = "",
) -> None:
    """Detach an identifier: it is never linked again, and the person it joined splits."""
    body = {"identifier": identifier, "note": note}
    with client_for(data_dir) as api:
        result = api.post("/v1/identity/unmerge", body, Unmerged)
    out.print(
        f"detached {result.detached}; now {len(result.persons)} persons: "
        + ", ".join(result.persons),
        highlight=False,
    )


@identity_app.command("match")
def identity_match(data_dir: DataDir = None) -> None:
    """Probabilistic matching: link persons who share no identifier but match by their traits
    (name, birth date, e-mail, phone, postcode); borderline pairs go to the review list."""
    with client_for(data_dir) as api:
        run = api.post("/v1/identity/match", answer=MatchRun)
    out.print(
        f"run {run.run_id}: {run.records:,} persons compared, {run.scored_pairs:,} "
        f"pairs scored above the review line; {run.linked:,} linked, {run.refused:,} "
        f"refused by the merge rules, {run.review:,} to review, {run.skipped:,} skipped "
        f"(already one person or decided before) in {run.seconds:.1f} s",
        highlight=False,
    )
    found = run.diagnostics
    if found is not None:
        source = (
            "set by match_prior"
            if found.prior_source == "setting"
            else f"from {found.prior_pairs:,} pairs found by the prior rules"
        )
        out.print(
            f"{found.pairs_compared:,} pairs compared ({', '.join(found.comparisons)}); "
            f"prior {found.prior:.3g}, {source}",
            highlight=False,
        )
        bands = ", ".join(f"{b.low:g}-{b.high:g}: {b.pairs:,}" for b in found.bands)
        out.print(f"pairs per probability band: {bands}", highlight=False)
        for warning in found.warnings:
            out.print(f"warning: {warning}", highlight=False)
    if run.review:
        out.print("review them: touchpoints identity reviews", highlight=False)


def _record_text(side: PairSide) -> str:
    record = side.record.model_dump() if side.record is not None else {}
    fields = ("first_name", "last_name", "birth_date", "email", "phone", "postcode", "city")
    shown = " ".join(str(record[f]) for f in fields if record.get(f))
    identifier = side.identifier
    return f"{identifier.type}:{identifier.value} ({side.person or '-'})\n{shown}"


@identity_app.command("reviews")
def identity_reviews(
    data_dir: DataDir = None,
    status: Annotated[
        str,
        typer.Option(help="review, linked, refused, accepted, rejected, unlinked or all"),
    ] = "review",
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 20,
    offset: Annotated[int, typer.Option(min=0)] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="As JSON")] = False,
) -> None:
    """Matched pairs, most probable first, with both persons' records side by side."""
    allowed = ("review", "linked", "refused", "accepted", "rejected", "unlinked", "all")
    if status not in allowed:
        raise fail(f"--status must be one of {', '.join(allowed)}, not {status!r}")
    with client_for(data_dir) as api:
        page = api.get("/v1/identity/reviews", PairPage, status=status, limit=limit, offset=offset)
    if as_json:
        sys.stdout.write(page.model_dump_json() + "\n")
        return
    table = Table(title=f"{page.count:,} pairs ({status})")
    for column in ("pair", "p", "status", "a", "b", "evidence (match weight)"):
        table.add_column(column, overflow="fold")
    for pair in page.pairs:
        table.add_row(
            str(pair.pair_id),
            f"{pair.probability:.3f}",
            pair.status,
            _record_text(pair.a),
            _record_text(pair.b),
            "\n".join(f"{e.comparison}: {e.level} {e.weight:+.1f}" for e in pair.evidence),
        )
    out.print(table)
    if status == "review" and page.pairs:
        out.print(
            "decide: touchpoints identity review PAIR --accept (or --reject)", highlight=False
        )


@identity_app.command("review")
def identity_review(
    pair_id: Annotated[int, typer.Argument(help="The pair's number (identity reviews)")],
    accept: Annotated[
        bool | None, typer.Option("--accept/--reject", help="Link the two persons, or not")
    ] = None,
    data_dir: DataDir = None,
    note: Annotated[str, typer.Option(help="Why (kept with the decision)")] = "",
) -> None:
    """Decide a pair of the review list: --accept links the two persons, --reject never
    proposes them again."""
    if accept is None:
        raise fail("say --accept or --reject")
    decision = {"decision": "accept" if accept else "reject", "note": note}
    with client_for(data_dir) as api:
        pair = api.post(f"/v1/identity/reviews/{pair_id}", decision, MatchedPair)
    text = {
        "accepted": f"linked as link {pair.link_id}: now {pair.a.person}",
        "refused": f"not linked, the merge rules refuse it ({pair.note})",
        "rejected": "rejected: this pair will not be proposed again",
    }[pair.status]
    out.print(f"pair {pair_id} {text}", highlight=False)


@identity_app.command("links")
def identity_links(
    data_dir: DataDir = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    offset: Annotated[int, typer.Option(min=0)] = 0,
    removed: Annotated[bool, typer.Option(help="Also links that were removed")] = False,
) -> None:
    """Links between identifiers that share no event (accepted matches), newest first."""
    with client_for(data_dir) as api:
        page = api.get("/v1/identity/links", LinkPage, limit=limit, offset=offset, removed=removed)
    table = Table(title=f"{page.count:,} links")
    columns = ["link", "a", "b", "person", "source", "p", "created"]
    for column in columns + (["removed"] if removed else []):
        table.add_column(column, overflow="fold")
    for link in page.links:
        p = link.probability
        row = [
            str(link.link_id),
            link.a,
            link.b,
            link.person or "",
            link.source,
            "" if p is None else f"{p:.3f}",
            link.created_at.date().isoformat(),
        ]
        table.add_row(*row, *(["yes" if link.removed else ""] if removed else []))
    out.print(table)


@identity_app.command("unlink")
def identity_unlink(
    link_id: Annotated[int, typer.Argument(help="The link's number (identity links)")],
    data_dir: DataDir = None,
    note: Annotated[str, typer.Option(help="Why (kept in the merge log)")] = "",
) -> None:
    """Unmerge a link: it no longer applies, and the persons it joined split again."""
    with client_for(data_dir) as api:
        result = api.post(f"/v1/identity/links/{link_id}/remove", {"note": note}, Unlinked)
    out.print(f"removed link {result.removed}; now " + ", ".join(result.persons), highlight=False)
