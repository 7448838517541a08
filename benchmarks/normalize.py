"""The normaliser alone: microseconds per event for representative Segment messages.

``EventNormalizer.normalize`` runs once per event on the ingest hot path, so a change to it is
measured here rather than hoped. Three shapes, each timed on its own and then mixed:

- ``track``: a browser track with page, campaign, library and user agent in its context;
- ``identify``: an identify with traits (as analytics.js sends it);
- ``batch``: a server-side track from a batch, context, integrations and sentAt coming from
  the batch envelope (merged into the event's own values).

Each figure is the best of ``--repeat`` runs of ``--events`` calls (the minimum is the
figure least disturbed by other work on a shared machine).

    .venv/bin/python benchmarks/normalize.py [--events 5000] [--repeat 15]
"""

from __future__ import annotations

import argparse
import timeit
from collections.abc import Callable
from typing import Any

from touchpoints.channels import ChannelDetector
from touchpoints.events import EventNormalizer, Limits

RECEIVED = 1_709_640_000_000_000  # 2024-03-05T12:00:00Z in epoch microseconds


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


def timer(normalizer: EventNormalizer, shape: str, n: int) -> Callable[[], None]:
    """A callable that normalises ``n`` events of one shape (or all three, ``mixed``)."""
    makers = {"track": [track], "identify": [identify], "batch": [batch_event]}.get(
        shape, [track, identify, batch_event]
    )
    chosen = [makers[i % len(makers)] for i in range(n)]
    events = [(make(i), make is batch_event) for i, make in enumerate(chosen)]
    normalize = normalizer.normalize

    def run() -> None:
        for event, in_batch in events:
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
                row, _ = normalize(event, received_at=RECEIVED, source="bench", route_type=None)
            assert row is not None

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=5000, help="calls per timed run")
    parser.add_argument("--repeat", type=int, default=15, help="timed runs; the best is shown")
    args = parser.parse_args()
    normalizer = EventNormalizer(ChannelDetector(), Limits())
    print(f"best of {args.repeat} runs of {args.events:,} events, µs per event")
    for shape in ("track", "identify", "batch", "mixed"):
        run = timer(normalizer, shape, args.events)
        run()  # warm the caches (times, channel rules) as a running collector has them
        best = min(timeit.repeat(run, number=1, repeat=args.repeat))
        print(f"{shape:<10}{best / args.events * 1e6:>8.2f}")


if __name__ == "__main__":
    main()
