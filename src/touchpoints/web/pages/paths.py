"""Paths: the most frequent paths after a start event or before an end event (``paths``), as a
table with shares and as a Sankey diagram whose nodes carry their position (so a step taken
twice is two nodes and the diagram has no cycles); and the journey variants, the distinct
sequences of stages people went through (``variants``)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from touchpoints.errors import TouchpointsError, status_of
from touchpoints.journeys.queries import MAX_PATH_DEPTH, PathsQuery, VariantsQuery
from touchpoints.journeys.results import PathReport, VariantReport
from touchpoints.web import labels
from touchpoints.web.app import FormError, Shown, Table, csv_response
from touchpoints.web.charts import bars, percent, sankey
from touchpoints.web.i18n import N_, Language
from touchpoints.web.sessions import Session

if TYPE_CHECKING:
    from touchpoints.web.app import Dashboard

ORDER = 40
NAV = (("/journeys/paths", N_("Paths")),)
PERMISSION = "analytics"  # aggregate figures (access/roles.py)

EXAMPLE = "Product Viewed"
MAX_DEPTH = MAX_PATH_DEPTH


def routes(dashboard: Dashboard) -> list[Route]:
    async def paths(request: Request, session: Session) -> Response:
        language = dashboard.language(request)
        names = await run_in_threadpool(dashboard.event_names)
        form = _form(request, names)
        context: dict[str, Any] = {
            "form": form,
            "event_names": names,
            "query": urlencode(form),
            "max_depth": MAX_DEPTH,
            "error": None,
        }
        try:
            params = _params(form)
            report = await dashboard.ask(PathsQuery, params)
            variants = await dashboard.ask(VariantsQuery, {"limit": params["limit"]})
        except TouchpointsError as exc:
            context["error"] = language.explain(exc)
            return dashboard.render(
                request, "paths.html", session, status_code=status_of(exc), tables={}, **context
            )
        data = _view(report, variants, language)
        if (wanted := request.query_params.get("csv")) is not None:
            return csv_response(data["tables"], wanted, "paths", language)
        return dashboard.render(request, "paths.html", session, **context, **data)

    return [Route("/journeys/paths", dashboard.page(paths, PERMISSION))]


# -- the question -----------------------------------------------------------------------------
def _form(request: Request, names: list[str]) -> dict[str, str]:
    """The form's fields as given (the example when no event is asked about yet)."""
    query = request.query_params
    example = EXAMPLE if EXAMPLE in names or not names else names[0]
    return {
        "anchor": query.get("anchor", "after"),
        "event": query.get("event", example).strip(),
        "depth": query.get("depth", "5").strip(),
        "step": query.get("step", "event"),
        "rare": query.get("rare", "5").strip(),
        "collapse": query.get("collapse", "yes"),
        "limit": query.get("limit", "20").strip(),
    }


def _number(form: dict[str, str], name: str, kind: type) -> Any:
    """A number field (its bounds are the question's to check, and name)."""
    text = form[name]
    try:
        return kind(text)
    except ValueError:
        if kind is int:
            message = N_("%(name)s: give a whole number, not %(text)s")
        else:
            message = N_("%(name)s: give a number, not %(text)s")
        raise FormError(message, name=name, text=repr(text)) from None


def _params(form: dict[str, str]) -> dict[str, Any]:
    """The question as :class:`PathsQuery` takes it (and ``GET /v1/journeys/paths``)."""
    if form["anchor"] not in ("after", "before"):
        raise FormError(
            N_("anchor: give after or before, not %(anchor)s"), anchor=repr(form["anchor"])
        )
    if form["collapse"] not in ("yes", "no"):
        raise FormError(
            N_("collapse: give yes or no, not %(collapse)s"), collapse=repr(form["collapse"])
        )
    event = form["event"] or None
    rare = _number(form, "rare", float)
    if not 0 <= rare < 100:
        raise FormError(
            N_("rare: give a percentage from 0 to below 100, not %(rare)s"), rare=form["rare"]
        )
    return {
        "start": event if form["anchor"] == "after" else None,
        "end": event if form["anchor"] == "before" else None,
        "depth": _number(form, "depth", int),
        "step": form["step"],
        "min_share": rare / 100,
        "collapse": form["collapse"] == "yes",
        "limit": _number(form, "limit", int),
    }


# -- the view ---------------------------------------------------------------------------------
def path_links(report: PathReport) -> list[tuple[str, str, int]]:
    """The Sankey's links: the anchor event and each step named with its position (1, 2, …
    after a start; …, −2, −1 before an end), people summed over the listed paths. A step
    taken twice is two nodes, so the diagram has no cycles."""
    anchor = report.event
    after = report.anchor == "start"
    totals: dict[tuple[str, str], int] = {}
    for path in report.paths:
        steps = path.steps
        if after:
            nodes = [anchor] + [f"{k} · {s}" for k, s in enumerate(steps, start=1)]
        else:
            count = len(steps)
            nodes = [f"−{count - k} · {s}" for k, s in enumerate(steps)] + [anchor]
        for pair in zip(nodes, nodes[1:], strict=False):
            totals[pair] = totals.get(pair, 0) + path.people
    return sorted(
        ((a, b, n) for (a, b), n in totals.items()),
        key=lambda link: (_position(link[0]), -link[2], link[0], link[1]),
    )


def _node_label(node: str, step: Any) -> str:
    """A Sankey node with its step by its label ("−1 · (other)" → "−1 · (Sonstige)")."""
    place, sep, name = node.partition(" · ")
    return f"{place} · {step(name)}" if sep else node


def _position(node: str) -> int:
    """A node's place: 1, 2, … after the start; −3, −2, −1 before the end; 0 the anchor."""
    place, _sep, _step = node.partition(" · ")
    return int(place.replace("−", "-")) if _sep else 0


def _sankey_height(links: list[tuple[str, str, int]]) -> int:
    """Room for the busiest position (column) of the diagram."""
    columns: dict[str, set[str]] = {}
    for node in {n for a, b, _ in links for n in (a, b)}:
        columns.setdefault(node.split(" · ")[0] if " · " in node else "", set()).add(node)
    busiest = max((len(nodes) for nodes in columns.values()), default=1)
    return max(340, min(800, 46 * busiest + 60))


def _view(report: PathReport, variants: VariantReport, language: Language) -> dict[str, Any]:
    _ = language.gettext
    after = report.anchor == "start"
    by_channel = report.step == "channel"

    def step(name: str) -> str:
        """A step by its label: a placeholder or (steps by channel) a channel; an event as
        it is."""
        if by_channel:
            return labels.placeholder(language, labels.channel(language, name))
        return labels.placeholder(language, name)

    def path(steps: list[str], name: Any = str) -> str:
        return " → ".join(name(s) for s in steps) or name("(no step)")

    path_table = Table(
        "paths",
        _("Top paths after “%(event)s”", event=report.event)
        if after
        else _("Top paths before “%(event)s”", event=report.event),
        [_("path"), _("people"), _("share %%")],
        [
            [Shown(path(p.steps), path(p.steps, step)), p.people, percent(p.share, 1)]
            for p in report.paths
        ],
    )
    links = path_links(report)

    def node(name: str) -> Shown:
        return Shown(name, _node_label(name, step))

    link_table = Table(
        "links",
        _("Steps of the top paths (people, by position)"),
        [_("from"), _("to"), _("people")],
        [[node(a), node(b), n] for a, b, n in links],
    )

    def stage(name: str) -> str:
        return labels.stage(language, name)

    variant_table = Table(
        "variants",
        _("Journey variants: stage sequences"),
        [_("variant"), _("people"), _("share %%")],
        [
            [
                Shown(" → ".join(v.steps), " → ".join(stage(s) for s in v.steps)),
                v.people,
                percent(v.share, 1),
            ]
            for v in variants.variants
        ],
    )
    diagram = sankey(None, [(node(a).text, node(b).text, n) for a, b, n in links])
    # Paths before an end all finish at it: line them up on the right.
    diagram["series"][0]["nodeAlign"] = "left" if after else "right"
    diagram["series"][0]["label"] = {"fontSize": 11}
    return {
        "report": report,
        "variants": variants,
        "step_label": step,
        "tables": {t.name: t for t in (path_table, link_table, variant_table)},
        "sankey_chart": diagram,
        "sankey_height": _sankey_height(links),
        "variant_chart": bars(
            [row[0].text for row in variant_table.rows],
            {_("people"): [row[1] for row in variant_table.rows]},
            horizontal=True,
        ),
        "variant_height": max(240, 28 * len(variant_table.rows) + 60),
    }
