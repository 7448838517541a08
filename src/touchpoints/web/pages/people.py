"""People: search by identifier or trait, and the 360° profile of one person (traits with
source and time, identifiers by type, the identity graph, merges with an unmerge button,
the cross-channel timeline, stages and channels, computed traits with their definitions,
audiences with their entries and exits).

Everything is read through the services the API calls: ``tp.profiles.resolve`` /
``profile`` / ``timeline_page`` / ``search``, ``tp.identity.links`` and
``tp.journeys.run(StageHistoryQuery(…))``, ``tp.traits.of_person``,
``tp.audiences.of_person``; an unmerge is ``tp.identity.unmerge`` or
``tp.identity.unlink``, the very operations of ``POST /v1/identity/unmerge`` and
``POST /v1/identity/links/{id}/remove``.
"""

from __future__ import annotations

import re
from collections import Counter
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlencode

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from touchpoints.access.audit import listed
from touchpoints.errors import BadRequest, InvalidRequest, NotFound, TouchpointsError, status_of
from touchpoints.events import StoredEvent
from touchpoints.web.forms import form_fields
from touchpoints.web.i18n import N_, Explained, Language
from touchpoints.web.sessions import Session

if TYPE_CHECKING:
    from touchpoints.web.app import Dashboard

ORDER = 80
NAV = (("/people", N_("People")),)
PERMISSION = "profiles"  # individual persons (access/roles.py)

TIMELINE_PAGE = 25
SEARCH_LIMIT = 50
# The graph's edges come from the events that joined the identifiers: read up to this many.
GRAPH_EVENTS = 5000
_TRAIT = re.compile(r"^[A-Za-z0-9_.\-]+$")  # as GET /v1/profiles?trait= takes it
_PHONE = re.compile(r"^\+?[0-9][0-9 ()/.\-]{5,}$")
# One colour per identifier type (the graph's categories, and the badges next to them).
COLOURS = {
    "user_id": "#2f6fde",
    "customer_number": "#7b3fc4",
    "email": "#d9822b",
    "phone": "#1f9d74",
    "wallet": "#8a6d1f",
    "vehicle_id": "#a33b6b",
    "social_handle": "#c2417a",
    "device_id": "#5b6475",
    "advertising_id": "#8c95a6",
    "anonymous_id": "#b8bfcc",
}
_OTHER_COLOURS = ("#3d8fb3", "#b35a3d", "#6b8f3d", "#6d3db3")


class SearchError(Explained, InvalidRequest):
    """The search box's text cannot be read; the message says how to write it."""


class UnmergeError(Explained, InvalidRequest):
    """An unmerge form that cannot be read (422)."""


def routes(dashboard: Dashboard) -> list[Route]:
    async def people(request: Request, session: Session) -> Response:
        language = dashboard.language(request)
        q = request.query_params.get("q", "").strip()
        context: dict[str, Any] = {"q": q, "error": None, "results": None, "asked": None}
        if not q:
            return dashboard.render(request, "people.html", session, **context)
        try:
            context.update(await run_in_threadpool(_search, dashboard, q, language))
            for found in context["results"]:
                actor = session.actor.id
                await dashboard.audit(request, actor, "profile.search", found["key"], durable=False)
        except TouchpointsError as exc:
            context["error"] = language.explain(exc)
            return dashboard.render(
                request, "people.html", session, status_code=status_of(exc), **context
            )
        return dashboard.render(request, "people.html", session, **context)

    async def profile(request: Request, session: Session) -> Response:
        language = dashboard.language(request)
        key = request.path_params["key"]
        before = request.query_params.get("before") or None
        try:
            data = await run_in_threadpool(_profile, dashboard, key, before, language)
        except TouchpointsError as exc:
            return dashboard.render(
                request,
                "profile.html",
                session,
                status_code=status_of(exc),
                key=key,
                error=str(exc),
            )
        data["after"] = _after(request, language)
        await dashboard.audit(
            request, session.actor.id, "profile.read", data["person"], "dashboard", durable=False
        )
        found = data["predictions"]
        if found.ltv or found.churn or found.next_best_products or found.next_best_action:
            await dashboard.audit(
                request,
                session.actor.id,
                "profile.predictions",
                data["person"],
                "dashboard",
                durable=False,
            )
        return dashboard.render(request, "profile.html", session, key=key, error=None, **data)

    async def unmerge(request: Request, session: Session) -> Response:
        key = request.path_params["key"]
        fields = await form_fields(request)
        if not dashboard.csrf_ok(session, fields):
            return dashboard.stale_form(request)
        language = dashboard.language(request)
        try:
            done, persons, line = await run_in_threadpool(_unmerge, dashboard, fields)
        except (TouchpointsError, UnmergeError) as exc:
            return PlainTextResponse(language.explain(exc), status_of(exc))
        await dashboard.audit(request, session.actor.id, *line)
        numbers = (p.removeprefix("person:") for p in persons)
        query = urlencode({"unmerged": done, "persons": ",".join(numbers)})
        return RedirectResponse(f"/people/{quote(key, safe=':@+')}?{query}", status_code=303)

    return [
        Route("/people", dashboard.page(people, PERMISSION)),
        Route(
            "/people/{key:path}/unmerge",
            dashboard.page(unmerge, "admin"),
            methods=["POST"],
        ),
        Route("/people/{key:path}", dashboard.page(profile, PERMISSION)),
    ]


# -- search ----------------------------------------------------------------------------------
def _search(dashboard: Dashboard, q: str, language: Language) -> dict[str, Any]:
    """``type:value`` (or a bare e-mail or phone number) finds that person through
    ``profiles.resolve``; ``trait=value`` searches traits through ``profiles.search``."""
    _ = language.gettext
    tp = dashboard.tp
    trait, eq, value = q.partition("=")
    if eq and ":" not in trait:
        trait, value = trait.strip(), value.strip()
        if not _TRAIT.match(trait):
            raise SearchError(
                N_(
                    "%(trait)s is not a trait name: use letters, digits, '_', '.' or '-' "
                    "(e.g. city=Hamburg)"
                ),
                trait=repr(trait),
            )
        if not value:
            raise SearchError(
                N_("give a value after '%(trait)s=' (e.g. %(trait)s=Hamburg)"), trait=trait
            )
        persons = tp.profiles.search(trait, value, SEARCH_LIMIT)
        asked = _("with %(trait)s = %(value)s", trait=trait, value=repr(value))
        missing = _(
            "no person has %(trait)s = %(value)s (in any event)", trait=trait, value=repr(value)
        )
    else:
        key = _identifier_key(q)
        try:
            persons = [tp.profiles.resolve(key)]
        except BadRequest as exc:
            raise SearchError.as_given(str(exc)) from None
        except NotFound as exc:
            persons, missing = [], str(exc)
        else:
            missing = ""
        asked = _("with %(key)s", key=key)
    results = []
    for person in persons:
        ids = tp.identity.identifiers_of(person)
        results.append(
            {
                "key": f"person:{person}",
                "identifiers": ids,
                "known": [f"{t}:{ids[t][0]}" for t in ("user_id", "email", "phone") if ids.get(t)],
                "count": sum(len(v) for v in ids.values()),
            }
        )
    return {
        "results": results,
        "asked": asked,
        "missing": missing,
        "limited": len(persons) == SEARCH_LIMIT,
    }


def _identifier_key(q: str) -> str:
    """``q`` as ``type:value``: a bare e-mail address or phone number gets its type."""
    if ":" in q:
        return q
    if "@" in q:
        return f"email:{q}"
    if _PHONE.match(q):
        return f"phone:{q}"
    raise SearchError(
        N_(
            "%(q)s is neither an identifier nor a trait search: write TYPE:VALUE "
            "(email:anna@example.com, user_id:u-1001, phone:+49171…, anonymous_id:…, "
            "person:17), an e-mail address or phone number, or TRAIT=VALUE (city=Hamburg)"
        ),
        q=repr(q),
    )


# -- the profile -----------------------------------------------------------------------------
def _profile(
    dashboard: Dashboard, key: str, before: str | None, language: Language
) -> dict[str, Any]:
    from touchpoints.journeys.queries import StageHistoryQuery

    tp = dashboard.tp
    person = tp.profiles.resolve(key)
    # The profile as the API answers it (JSON's forms: ISO times), which the template reads.
    profile = tp.profiles.profile(f"person:{person}").model_dump(
        mode="json", exclude={"trait_history"}
    )
    page = tp.profiles.timeline_page(f"person:{person}", TIMELINE_PAGE, before)
    stages = tp.journeys.run(StageHistoryQuery(person=f"person:{person}")).stages
    mine = {f"{t}:{i['value']}" for t, found in profile["identifiers"].items() for i in found}
    links = _links_of(dashboard, mine)
    merges = _merges_with_actions(profile["merges"], links, mine, language)
    channels = profile["computed"]["channels"]
    return {
        "person": profile["person"],
        "profile": profile,
        "full_name": " ".join(
            str(profile["traits"][t]["value"])
            for t in ("first_name", "last_name")
            if t in profile["traits"]
        ),
        "timeline": [_event_view(event, language) for event in page.events],
        "next": page.next,
        "paged": before is not None,
        "stages": stages,
        "current_stage": stages[-1].stage if stages else None,
        "channels": channels,
        "channel_max": max(channels.values(), default=1),
        "merges": merges,
        "links": links,
        "colours": {t: _colour(t) for t in profile["identifiers"]},
        "graph": _graph(dashboard, person, profile["identifiers"], merges, links, language),
        **_predictions(dashboard, person, language),
        "computed_traits": tp.traits.of_person(f"person:{person}").traits,
        "memberships": tp.audiences.of_person(f"person:{person}", 20),
        "dumps": lambda value: orjson.dumps(value).decode(),
    }


def _predictions(dashboard: Dashboard, person: int, language: Language) -> dict[str, Any]:
    """The person's lifetime value, churn risk, next best action and products from the latest
    scoring, and the churn reasons in words (:mod:`touchpoints.web.reasons`)."""
    from touchpoints.web.reasons import reasons

    tp = dashboard.tp
    found = tp.figures.person(f"person:{person}")
    words: list[str] = []
    if found.churn is not None:
        model = tp.churn.model
        words = reasons(
            language,
            found.churn.contributions,
            found.churn.window_days,
            [pain.name for pain in model.pain_points],
            [stage.name for stage in model.stages],
        )
    return {"predictions": found, "churn_reasons": words}


def _links_of(dashboard: Dashboard, mine: set[str]) -> list[dict[str, Any]]:
    """Links in force with an end among this person's identifiers (``identity.links``, as
    ``GET /v1/identity/links`` lists them)."""
    total = dashboard.tp.identity.links(1, 0).count
    if not total:
        return []
    links = dashboard.tp.identity.links(total, 0).links
    return [link.model_dump(mode="json") for link in links if link.a in mine or link.b in mine]


def _merges_with_actions(
    merges: list[dict[str, Any]], links: list[dict[str, Any]], mine: set[str], language: Language
) -> list[dict[str, Any]]:
    """The merge log, each entry with what would undo it: removing its link (a link merge
    whose link is in force) or detaching its identifier (a merge by an event)."""
    out = []
    for entry in reversed(merges):  # newest first
        undo: dict[str, Any] | None = None
        link = None
        if entry["kind"] == "link":
            link = next(
                (
                    found
                    for found in links
                    if entry["identifier"] in (found["a"], found["b"])
                    and {found["a"], found["b"]} <= mine
                ),
                None,
            )
            if link is not None:
                label = language.gettext("Remove link %(link)s", link=link["link_id"])
                undo = {"link": link["link_id"], "label": label}
        elif entry["kind"] == "merge" and entry["identifier"] in mine:
            label = language.gettext("Detach %(identifier)s", identifier=entry["identifier"])
            undo = {"identifier": entry["identifier"], "label": label}
        out.append({**entry, "link": link, "undo": undo})
    return out


def _event_view(event: StoredEvent, language: Language) -> dict[str, Any]:
    what = event.event or event.name or ""
    if event.type == "identify":
        what = ", ".join(sorted((event.traits or {}).keys())) or language.gettext("traits")
    return {
        "timestamp": event.timestamp,
        "channel": event.channel or "",
        "type": event.type,
        "what": what,
        "source": event.source or "",
        "message_id": event.message_id,
    }


def _colour(id_type: str) -> str:
    if id_type in COLOURS:
        return COLOURS[id_type]
    return _OTHER_COLOURS[sum(map(ord, id_type)) % len(_OTHER_COLOURS)]


def _graph(
    dashboard: Dashboard,
    person: int,
    identifiers: dict[str, list[dict[str, Any]]],
    merges: list[dict[str, Any]],
    links: list[dict[str, Any]],
    language: Language,
) -> dict[str, Any]:
    """The identity graph as an ECharts ``graph`` option: one node per identifier (coloured
    by type); an edge where identifiers were seen in one event (from the event's anchor, as
    the resolver joins them; red where that event merged two persons) and one per link."""
    _ = language.gettext
    extractor = dashboard.tp.identity.extractor
    types = sorted(identifiers)
    names = {f"{t}:{i['value']}" for t in types for i in identifiers[t]}
    merged_by = {m["message_id"]: m for m in merges if m["kind"] == "merge" and m["message_id"]}
    together: Counter[tuple[str, str]] = Counter()
    merging: dict[tuple[str, str], str] = {}
    for row in dashboard.tp.profiles.timeline(person, GRAPH_EVENTS):
        found = [str(i) for i in extractor.extract(orjson.loads(row["raw"]))]
        found = [name for name in found if name in names]
        merge = merged_by.get(row["message_id"])
        for other in found[1:]:
            pair = (found[0], other)
            together[pair] += 1
            if merge is not None and merge["identifier"] in pair:
                merging[pair] = _(
                    "merged %(absorbed)s into %(kept)s (%(at)s)",
                    absorbed=merge["absorbed"],
                    kept=merge["kept"],
                    at=language.moment(merge["at"]),
                )
    edges: list[dict[str, Any]] = []
    for (a, b), n in together.items():
        merge_text = merging.get((a, b))
        edges.append(
            {
                "source": a,
                "target": b,
                "value": n,
                "tip": language.ngettext(
                    "seen together in %(num)s event",
                    "seen together in %(num)s events",
                    n,
                    num=language.number(n),
                )
                + (f"; {merge_text}" if merge_text else ""),
                "lineStyle": {"color": "#b3261e", "width": 3} if merge_text else {"width": 1.5},
            }
        )
    for link in links:
        if link["a"] in names and link["b"] in names:
            p = link["probability"]
            edges.append(
                {
                    "source": link["a"],
                    "target": link["b"],
                    "value": link["link_id"],
                    "tip": _(
                        "%(source)s link %(link)s", source=link["source"], link=link["link_id"]
                    )
                    + (f", p={language.decimal(p, 3)}" if p is not None else ""),
                    "lineStyle": {"type": "dashed", "color": "#7b3fc4", "width": 2.5},
                    "label": {"show": True, "formatter": _("link %(link)s", link=link["link_id"])},
                }
            )
    nodes = [
        {
            "name": f"{t}:{i['value']}",
            "category": types.index(t),
            "value": t,
            "symbolSize": 22 if t not in ("anonymous_id", "device_id", "advertising_id") else 16,
            "label": {"formatter": _short(i["value"])},
        }
        for t in types
        for i in identifiers[t]
    ]
    return {
        "tooltip": {"formatter": "{b}"},
        "legend": {"top": 0, "type": "scroll", "data": types},
        "color": [_colour(t) for t in types],
        "series": [
            {
                "type": "graph",
                "layout": "force",
                "top": 50,
                "bottom": 30,
                "left": 40,
                "right": 40,
                "roam": True,
                "draggable": True,
                "animation": False,
                "force": {"repulsion": 420, "edgeLength": [90, 170], "gravity": 0.08},
                "label": {"show": True, "position": "bottom", "fontSize": 11},
                "edgeLabel": {"fontSize": 10},
                "categories": [{"name": t} for t in types],
                "data": nodes,
                "links": edges,
            }
        ],
    }


def _short(value: str) -> str:
    return value if len(value) <= 18 else value[:8] + "…" + value[-6:]


# -- unmerge ---------------------------------------------------------------------------------
def _unmerge(
    dashboard: Dashboard, fields: dict[str, str]
) -> tuple[str, list[str], tuple[str, str | None, str]]:
    """Remove a link (``link``) or detach an identifier (``identifier``): the operations of
    the API's unmerge routes; what was done, the persons after it, and its audit line
    (action, target, detail: as the API records it)."""
    identity = dashboard.tp.identity
    note = fields.get("note", "")[:500]
    if fields.get("link"):
        try:
            link_id = int(fields["link"])
        except ValueError:
            raise UnmergeError(
                N_("link: %(link)s is not a link number"), link=repr(fields["link"])
            ) from None
        persons = identity.unlink(link_id, note).persons
        line = ("identity.unlink", f"link:{link_id}", f"now {listed(persons)}")
        return f"link {link_id}", persons, line
    unmerged = identity.unmerge(fields.get("identifier", ""), note)
    kind = unmerged.detached.partition(":")[0]
    detail = f"detached an identifier of type {kind}; now {listed(unmerged.persons)}"
    return unmerged.detached, unmerged.persons, ("identity.unmerge", unmerged.person, detail)


def _after(request: Request, language: Language) -> dict[str, Any] | None:
    """What an unmerge just did (from its redirect), for the notice on the profile."""
    done = request.query_params.get("unmerged")
    if not done:
        return None
    if (link := re.fullmatch(r"link (\d+)", done)) is not None:
        done = language.gettext("link %(link)s", link=link[1])
    persons = [
        f"person:{p}" for p in request.query_params.get("persons", "").split(",") if p.isdigit()
    ]
    return {"done": done, "persons": persons}
