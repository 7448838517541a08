"""The normaliser alone: microseconds per event for representative Segment messages.

``EventNormalizer.normalize`` runs once per event on the ingest hot path, so a change to it is
measured here rather than hoped. Three shapes, each timed on its own and then mixed:

- ``track``: a browser track with page, campaign, library and user agent in its context;
- ``identify``: an identify with traits (as analytics.js sends it);
- ``batch``: a server-side track from a batch, context, integrations and sentAt coming from
  the batch envelope (merged into the event's own values);
- ``mixed+log``: the three in turn, 100 at a time, each hundred's rows then written out as
  the write-ahead log's lines (``writer.log_lines``), as the collector does before answering.

Each figure is the best of ``--repeat`` runs of ``--events`` events: the minimum is the figure
least disturbed by other work on a shared machine. ``--against REF`` also loads
``src/touchpoints/events.py`` as it is at the git revision REF and runs both versions in turn
in this one process, so that both see the same machine at the same moments; it prints both
and their ratio (the log lines are written by today's writer for both).

    .venv/bin/python benchmarks/normalize.py [--events 1000] [--repeat 100] [--against main]
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import tempfile
import timeit
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import touchpoints.events
from touchpoints.channels import ChannelDetector
from touchpoints.collect.writer import log_lines

RECEIVED = 1_709_640_000_000_000  # 2024-03-05T12:00:00Z in epoch microseconds
SHAPES = ("track", "identify", "batch", "mixed", "mixed+log")


def track(i: int) -> dict[str, Any]:
    return {
        "type": "track",
        "event": "Configurator Opened",
        "userId": f"u{i % 5000}",
        "anonymousId": f"a{i % 20000}",
        "messageId": f"track-{i}",
        "properties": {"model": "EV3", "step": i % 7, "price": 41990.0},
        "context": {
            "library": {"name": "analytics.js", "version": "4.1.0"},
            "page": {
                "url": "https://example.com/configure?utm_source=newsletter",
                "referrer": "https://www.google.com/",
                "path": "/configure",
            },
            "campaign": {"source": "newsletter", "medium": "email", "name": "spring"},
            "userAgent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/126.0",
            "ip": "192.0.2.1",
            "locale": "de-DE",
        },
        "originalTimestamp": "2024-03-05T09:00:00.250Z",
        "sentAt": "2024-03-05T09:00:03.000Z",
    }


def identify(i: int) -> dict[str, Any]:
    return {
        "type": "identify",
        "userId": f"u{i % 5000}",
        "anonymousId": f"a{i % 20000}",
        "messageId": f"identify-{i}",
        "traits": {
            "email": f"person{i % 5000}@example.com",
            "firstName": "Ada",
            "lastName": "Lovelace",
            "plan": "pro",
        },
        "context": {"library": {"name": "analytics.js", "version": "4.1.0"}},
        "timestamp": "2024-03-05T09:00:00Z",
    }


def batch_event(i: int) -> dict[str, Any]:
    return {
        "type": "track",
        "event": "Order Completed",
        "anonymousId": f"a{i % 20000}",
        "messageId": f"batch-{i}",
        "properties": {"total": 12.5, "currency": "EUR"},
        "context": {"ip": "198.51.100.7"},
        "timestamp": "2024-03-05T08:59:58Z",
    }


ENVELOPE: dict[str, Any] = {
    "context": {"library": {"name": "analytics-python", "version": "2.3.4"}},
    "integrations": {"All": True, "Amplitude": False},
    "sentAt": "2024-03-05T09:00:01Z",
}


def timer(events_module: ModuleType, shape: str, n: int) -> Callable[[], None]:
    """A callable that normalises ``n`` events of one shape with that module's normaliser."""
    normalize = events_module.EventNormalizer(ChannelDetector(), events_module.Limits()).normalize
    makers = {"track": [track], "identify": [identify], "batch": [batch_event]}.get(
        shape, [track, identify, batch_event]
    )
    chosen = [makers[i % len(makers)] for i in range(n)]
    events = [(make(i), make is batch_event) for i, make in enumerate(chosen)]

    def one(event: dict[str, Any], in_batch: bool) -> Any:
        if in_batch:
            row, _ = normalize(
                event,
                received_at=RECEIVED,
                source="bench",
                batch_context=ENVELOPE["context"],
                batch_integrations=ENVELOPE["integrations"],
                batch_sent_at=ENVELOPE["sentAt"],
                index=0,
            )
        else:
            row, _ = normalize(event, received_at=RECEIVED, source="bench")
        assert row is not None
        return row

    def logged() -> None:
        for start in range(0, n, 100):
            log_lines([one(event, in_batch) for event, in_batch in events[start : start + 100]])

    def normalized() -> None:
        for event, in_batch in events:
            one(event, in_batch)

    return logged if shape == "mixed+log" else normalized


def events_module_at(ref: str) -> ModuleType:
    """``src/touchpoints/events.py`` as it is at the git revision ``ref``, loaded on its own."""
    root = Path(__file__).resolve().parent.parent
    source = subprocess.run(
        ["git", "show", f"{ref}:src/touchpoints/events.py"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    path = Path(tempfile.mkdtemp(prefix="tp-normalize-")) / "events_at_ref.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("events_at_ref", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["events_at_ref"] = module  # dataclasses look their module up while building
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1000, help="events per timed run")
    parser.add_argument("--repeat", type=int, default=100, help="timed runs; the best is shown")
    parser.add_argument("--against", metavar="REF", help="also time events.py at this revision")
    args = parser.parse_args()
    versions = {"now": touchpoints.events}
    if args.against:
        versions = {args.against: events_module_at(args.against), **versions}
    runs = {
        (label, shape): timer(module, shape, args.events)
        for label, module in versions.items()
        for shape in SHAPES
    }
    for run in runs.values():
        run()  # warm the caches (times, channel rules) as a running collector has them
    best = dict.fromkeys(runs, float("inf"))
    order = list(runs.items())
    for _ in range(args.repeat):
        for key, run in order:  # in turn, so that each version sees the same load
            best[key] = min(best[key], timeit.timeit(run, number=1))
        order.reverse()  # and neither always runs first

    print(f"best of {args.repeat} runs of {args.events:,} events, µs per event")
    print(f"{'shape':<11}" + "".join(f"{label:>10}" for label in versions), end="")
    print(f"{'ratio':>8}" if args.against else "")
    for shape in SHAPES:
        figures = [best[label, shape] / args.events * 1e6 for label in versions]
        line = f"{shape:<11}" + "".join(f"{figure:>10.2f}" for figure in figures)
        print(line + (f"{figures[-1] / figures[0]:>8.3f}" if args.against else ""))


if __name__ == "__main__":
    main()
