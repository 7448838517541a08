"""Channel mix by age group: which channels each age group uses, ready for a heat map.

A person's age is taken, as of ``as_of`` (default: today), from their latest ``birthday``
trait (an ISO date, ``YYYY-MM-DD``, possibly followed by a time) or, when they have none that
reads as a date, from their latest ``age`` trait (a number, or text holding one; whole years,
as it was told). Ages fall into bands (default 18-24, 25-34, 35-44, 45-54, 55-64, 65+; give
your own as ``"lo-hi"`` and a last ``"lo+"``); people without an age, or with one outside
every band (under 18 with the default bands), are in ``unknown``.

Contacts are a person's track, page and screen events (identify, group and alias calls are
not contacts), on the event's channel. Only people with at least one contact count. For each
band and channel:

- ``people_share``: the share of the band's people with at least one contact on the channel
  (a person using three channels counts for each, so a band's shares can add up past 1);
- ``contact_share``: the channel's share of the band's contacts (a band's shares add up to 1).

The per-person age and band, and the counts per band and channel, are Ibis expressions
(DuckDB and Spark agree); only the small table of counts is shaped in Python.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import ibis
import ibis.expr.types as ir

from touchpoints.journeys.ages import DEFAULT_BANDS, UNKNOWN, Band, BandError, band_of
from touchpoints.journeys.ages import parse_bands as _parse_bands
from touchpoints.journeys.queries import ChannelMixQuery
from touchpoints.journeys.results import Cell, ChannelMix
from touchpoints.journeys.source import Source
from touchpoints.journeys.spec import AnalysisError
from touchpoints.journeys.stages import is_touch


class ChannelMixError(AnalysisError):
    """Age bands that cannot work, with what to give instead."""


def parse_bands(bands: Sequence[str]) -> list[Band]:
    """The bands (see :func:`touchpoints.journeys.ages.parse_bands`)."""
    try:
        return _parse_bands(bands)
    except BandError as exc:
        raise ChannelMixError(str(exc)) from None


def person_ages(source: Source, as_of: date) -> ir.Table:
    """(person, age): whole years as of ``as_of`` from the latest birthday trait, else the
    latest age trait; persons with neither are absent."""
    traits = source.latest_traits("birthday", "age")
    births = traits.filter(
        (traits.key == "birthday") & traits.text_value.re_search(r"^\d{4}-\d{2}-\d{2}")
    )
    year = births.text_value.substr(0, 4).try_cast("int64")
    month = births.text_value.substr(5, 2).try_cast("int64")
    day = births.text_value.substr(8, 2).try_cast("int64")
    not_yet = ibis.cases((month * 100 + day > as_of.month * 100 + as_of.day, 1), else_=0)
    births = births.select("person", birth_age=as_of.year - year - not_yet)
    births = births.filter(births.birth_age.notnull())
    told = traits.filter(traits.key == "age")
    # The text form holds numbers too ("70" and 70 alike); read it rather than number_value,
    # which a null-unaware copy into Spark (pandas) can turn into NaN.
    told = told.select("person", told_age=told.text_value.try_cast("float64").floor().cast("int64"))
    told = told.filter(told.told_age.notnull())
    both = births.outer_join(told, "person")
    return both.select(
        person=ibis.coalesce(both.person, both.person_right),
        age=ibis.coalesce(both.birth_age, both.told_age),
    )


def channel_mix(
    source: Source, *, bands: Sequence[str] = DEFAULT_BANDS, as_of: date | None = None
) -> ChannelMix:
    """For each age band (and ``unknown``): the share of its people using each channel and
    each channel's share of its contacts."""
    parsed = parse_bands(bands)
    when = as_of or date.today()
    events = source.events()
    contacts = events.filter(is_touch(events.type))
    contacts = contacts.filter(contacts.channel.notnull())
    per_person = contacts.group_by(["person", "channel"]).agg(contacts=contacts.seq.count())
    ages = person_ages(source, when)
    banded = per_person.left_join(ages, "person")
    banded = banded.select(
        "channel", "contacts", person=banded.person, band=band_of(banded.age, parsed)
    )
    # One row per person and channel, computed once and read twice.
    with source.cache(banded) as banded:
        cells = banded.group_by(["band", "channel"]).agg(
            people=banded.count(), contacts=banded.contacts.sum()
        )
        totals = banded.group_by("band").agg(
            people=banded.person.nunique(), contacts=banded.contacts.sum()
        )
        found = {(r["band"], r["channel"]): r for r in source.rows(cells)}
        sums = {r["band"]: r for r in source.rows(totals)}
    labels = [b.label for b in parsed] + [UNKNOWN]
    reach: dict[str, int] = {}
    for (_band, channel), row in found.items():
        reach[channel] = reach.get(channel, 0) + int(row["people"])
    channels = sorted(reach, key=lambda ch: (-reach[ch], ch))
    people = {b: int(sums[b]["people"]) if b in sums else 0 for b in labels}
    volume = {b: int(sums[b]["contacts"]) if b in sums else 0 for b in labels}
    out = []
    for band in labels:
        for channel in channels:
            row = found.get((band, channel), {"people": 0, "contacts": 0})
            n, k = int(row["people"]), int(row["contacts"])
            out.append(
                Cell(
                    band=band,
                    channel=channel,
                    people=n,
                    people_share=n / people[band] if people[band] else 0.0,
                    contacts=k,
                    contact_share=k / volume[band] if volume[band] else 0.0,
                )
            )
    return ChannelMix(
        as_of=when,
        bands=labels,
        channels=channels,
        people=people,
        contacts=volume,
        cells=out,
    )


def channel_mix_for(source: Source, query: ChannelMixQuery) -> ChannelMix:
    """:func:`channel_mix` for a validated question."""
    return channel_mix(source, bands=query.bands, as_of=query.as_of)
