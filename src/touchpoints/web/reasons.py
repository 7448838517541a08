"""A person's churn reasons in words, in the reader's language: each stored (feature, value,
points) of the latest scoring as a sentence ("3 × support call in the 90 days before: +12.0
points"). The pain points' and stages' names are the stage model's own (data, not
translated; the default model's stages have labels)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from touchpoints.predictions.results import ChurnContribution
from touchpoints.web import labels
from touchpoints.web.i18n import Language


def reasons(
    language: Language,
    found: list[ChurnContribution],
    window: int,
    pains: list[str],
    stages: list[str],
) -> list[str]:
    """Each contribution as "what: ±points" (``window``: the model's days; ``pains``: the
    stage model's pain points, in the order of the features ``pain_0``, ``pain_1``, …;
    ``stages``: its stages in order)."""
    return [
        language.gettext(
            "%(reason)s: %(points)s points",
            reason=reason(language, c.feature, c.value, window, pains, stages),
            points=_signed(language, c.points),
        )
        for c in found
    ]


def _signed(language: Language, points: float) -> str:
    size = language.decimal(abs(points), 1)
    return f"+{size}" if points >= 0 else f"−{size}"


def reason(
    language: Language,
    feature: str,
    value: float | None,
    window: int,
    pains: list[str],
    stages: list[str],
) -> str:
    """What the feature says of the person, in words."""
    _ = language.gettext
    if value is None:
        return _("%(what)s: unknown", what=_what(language, feature, pains))
    n = int(round(value))
    if feature.startswith("channel_"):
        return _(
            "%(share)s of the events of the %(days)s days before on %(channel)s",
            share=language.percent(100 * value, 0),
            days=window,
            channel=labels.channel(language, feature.removeprefix("channel_")),
        )
    if (index := _pain(feature)) is not None:
        pain = pains[index] if index < len(pains) else feature
        return _("%(num)s × %(pain)s in the %(days)s days before", num=n, pain=pain, days=window)
    if feature == "stage":
        return _("furthest stage reached: %(stage)s", stage=stage_name(language, stages, value))
    words = _SENTENCES.get(feature)
    return words(language, value, n, window) if words else f"{feature} = {value:g}"


def _pain(feature: str) -> int | None:
    """The pain point's number of a feature ``pain_0``, ``pain_1``, … (not ``pain_total``)."""
    found = re.fullmatch(r"pain_([0-9]+)", feature)
    return int(found[1]) if found else None


def _what(language: Language, feature: str, pains: list[str]) -> str:
    _ = language.gettext
    if (index := _pain(feature)) is not None:
        return pains[index] if index < len(pains) else feature
    if feature == "stage":
        return _("furthest stage")
    if feature == "recency_days":
        return _("days since the last event")
    return feature


_Words = Callable[[Language, float, int, int], str]
_SENTENCES: dict[str, _Words] = {
    "recency_days": lambda lang, v, n, w: lang.ngettext(
        "last event %(num)s day ago", "last event %(num)s days ago", n
    ),
    "tenure_days": lambda lang, v, n, w: lang.ngettext(
        "first event %(num)s day ago", "first event %(num)s days ago", n
    ),
    "events_window": lambda lang, v, n, w: lang.ngettext(
        "%(num)s event in the %(days)s days before",
        "%(num)s events in the %(days)s days before",
        n,
        days=w,
    ),
    "active_days_window": lambda lang, v, n, w: lang.ngettext(
        "active on %(num)s of the %(days)s days before",
        "active on %(num)s of the %(days)s days before",
        n,
        days=w,
    ),
    "events_total": lambda lang, v, n, w: lang.ngettext(
        "%(num)s event in all", "%(num)s events in all", n
    ),
    "trend": lambda lang, v, n, w: lang.gettext(
        "%(share)s of the recent events in the second half of the %(days)s days",
        share=lang.percent(100 * v, 0),
        days=w,
    ),
    "purchases": lambda lang, v, n, w: lang.ngettext("%(num)s purchase", "%(num)s purchases", n),
    "revenue": lambda lang, v, n, w: lang.gettext(
        "revenue of %(amount)s in all", amount=lang.decimal(v, 2)
    ),
    "pain_total": lambda lang, v, n, w: lang.ngettext(
        "%(num)s pain point signal in the %(days)s days before",
        "%(num)s pain point signals in the %(days)s days before",
        n,
        days=w,
    ),
    "consent_granted": lambda lang, v, n, w: lang.ngettext(
        "%(num)s consent category granted", "%(num)s consent categories granted", n
    ),
    "consent_denied": lambda lang, v, n, w: lang.ngettext(
        "%(num)s consent category denied", "%(num)s consent categories denied", n
    ),
    "identified": lambda lang, v, n, w: (
        lang.gettext("known by name (user id, e-mail, phone or customer number)")
        if n
        else lang.gettext("known only by a cookie or device")
    ),
}


def stage_name(language: Language, names: list[str], value: Any) -> str:
    """A stage's index as its name (the default model's by their labels)."""
    index = int(value)
    return labels.stage(language, names[index]) if 0 <= index < len(names) else str(value)
