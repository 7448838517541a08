"""The assistant's public facts: business hours, the booking address, the dealers and
their opening hours (the ``assistant_dealers`` file; ``dealers.yaml`` is shipped).

Hours are written per day or range of days (``mon-fri: "09:00-19:00"``, ``sat:
"10:00-14:00, 15:00-18:00"``, ``sun: closed``) in the file's time zone; a day not named is
closed. The nearest dealer is found by a city named in the message (or the verified
customer's own city), else by a postcode: the dealer whose postcode shares the most leading
digits with it (German postcodes are regional by their leading digits), then the nearest
number.
"""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator

from touchpoints.assist.files import load_file

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_SPAN = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")
Spans = tuple[tuple[time, time], ...]


def _spans(text: str) -> Spans:
    if text.strip().lower() == "closed":
        return ()
    out = []
    for part in text.split(","):
        found = _SPAN.match(part.strip())
        if not found:
            raise ValueError(f"{part.strip()!r}: write HH:MM-HH:MM (or closed)")
        h1, m1, h2, m2 = (int(g) for g in found.groups())
        if h1 > 23 or h2 > 24 or m1 > 59 or m2 > 59:
            raise ValueError(f"{part.strip()!r}: not a time of day")
        start = time(h1, m1)
        end = time(23, 59, 59) if h2 == 24 else time(h2, m2)
        if end <= start:
            raise ValueError(f"{part.strip()!r}: ends before it starts")
        out.append((start, end))
    return tuple(out)


def _days(key: str) -> list[str]:
    first, _, last = key.strip().lower().partition("-")
    if first not in DAYS or (last and last not in DAYS):
        raise ValueError(f"{key!r}: name days as mon, tue, wed, thu, fri, sat, sun or a range")
    if not last:
        return [first]
    i, j = DAYS.index(first), DAYS.index(last)
    if j < i:
        raise ValueError(f"{key!r}: a range runs forward (mon-fri)")
    return list(DAYS[i : j + 1])


class Hours(BaseModel):
    """Opening hours per weekday (mon … sun: the spans, empty when closed)."""

    model_config = ConfigDict(frozen=True)

    week: dict[str, Spans]

    @classmethod
    def parse(cls, value: dict[str, str]) -> Hours:
        week: dict[str, Spans] = {day: () for day in DAYS}
        for key, text in value.items():
            spans = _spans(str(text))
            for day in _days(key):
                week[day] = spans
        return cls(week=week)

    def open_at(self, moment: datetime) -> bool:
        spans = self.week[DAYS[moment.weekday()]]
        now = moment.time()
        return any(start <= now < end for start, end in spans)

    def lines(self) -> list[tuple[list[str], str]]:
        """Runs of days with the same hours: ([mon, …, fri], "09:00-19:00"), closed left out."""
        out: list[tuple[list[str], str]] = []
        for day in DAYS:
            spans = self.week[day]
            if not spans:
                continue
            text = ", ".join(f"{s:%H:%M}-{e:%H:%M}".replace("23:59", "24:00") for s, e in spans)
            if out and out[-1][1] == text and DAYS.index(out[-1][0][-1]) == DAYS.index(day) - 1:
                out[-1][0].append(day)
            else:
                out.append(([day], text))
        return out


def _hours(value: object) -> Hours:
    if isinstance(value, Hours):
        return value
    if not isinstance(value, dict) or not value:
        raise ValueError('give hours per day, e.g. {mon-fri: "09:00-18:00"}')
    return Hours.parse({str(k): str(v) for k, v in value.items()})


class Dealer(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=200)
    city: str = Field(min_length=1, max_length=100)
    postcode: str = Field(pattern=r"^\d{4,5}$")
    address: str = Field(min_length=1, max_length=200)
    phone: str | None = Field(default=None, max_length=40)
    hours: Hours

    _check_hours = field_validator("hours", mode="before")(lambda cls, v: _hours(v))


class Directory(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    brand: str = Field(default="our", min_length=1, max_length=100)
    timezone: str = "Europe/Berlin"
    service_hours: Hours
    booking_url: str | None = Field(default=None, pattern=r"^https?://\S+$")
    dealers: list[Dealer] = Field(default_factory=list)

    _check_hours = field_validator("service_hours", mode="before")(lambda cls, v: _hours(v))

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{value!r} is not a time zone (e.g. Europe/Berlin)") from None
        return value

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def local(self, moment: datetime) -> datetime:
        return moment.astimezone(self.zone)

    def business_hours(self, moment: datetime) -> bool:
        """Whether the service team answers at ``moment`` (aware)."""
        return self.service_hours.open_at(self.local(moment))

    def next_open(self, moment: datetime) -> datetime | None:
        """When the service team next answers after ``moment`` (aware); None: never."""
        local = self.local(moment)
        for offset in range(8):
            day = (local + timedelta(days=offset)).date()
            for start, _end in self.service_hours.week[DAYS[day.weekday()]]:
                opens = datetime.combine(day, start, tzinfo=self.zone)
                if opens > local:
                    return opens
        return None

    def named(self, text: str) -> list[Dealer]:
        """The dealers whose city (or name) a message names."""
        lowered = text.lower()
        return [
            dealer
            for dealer in self.dealers
            if _word_in(dealer.city.lower().split()[0], lowered)
            or _word_in(dealer.name.lower(), lowered)
        ]

    def nearest(
        self, text: str, city: str | None = None, postcode: str | None = None
    ) -> list[Dealer]:
        """The dealers for a message: those in a city it names, else by a postcode in it
        (or the customer's own ``city``/``postcode``), nearest first; [] when none says."""
        named = self.named(text)
        if named:
            return named
        found = re.search(r"\b(\d{5})\b", text)
        code = found.group(1) if found else postcode
        if code is None and city:
            named = self.named(city)
            if named:
                return named
        if code is None or not self.dealers:
            return []
        return sorted(self.dealers, key=lambda dealer: _distance(dealer.postcode, code))[:2]


def _word_in(word: str, text: str) -> bool:
    return re.search(rf"(?<!\w){re.escape(word)}(?!\w)", text) is not None


def _distance(a: str, b: str) -> tuple[int, int]:
    a, b = a.zfill(5), b.zfill(5)
    shared = next((i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y), 5)
    return (-shared, abs(int(a) - int(b)))


def load_directory(path: Path | None = None) -> Directory:
    """The dealers file at ``path`` (or the shipped one), validated."""
    return load_file(Directory, path, "dealers.yaml", "dealers file")
