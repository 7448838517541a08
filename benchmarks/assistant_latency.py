"""The service assistant's time per message once its model is loaded, as a server answers
(the writer and its write-ahead log running), beside what its parts cost in the same run.

    .venv/bin/python benchmarks/assistant_latency.py [--persons 2000] [--messages 400]

1. A fresh data directory with ``--persons`` customers (identify, an order, a shipment each).
2. The model is loaded and trained (timed: what a server does at start, in a thread).
3. ``--messages`` customer messages through the HTTP API in process (FastAPI, the write key,
   the JSON): a mix of anonymous public questions (opening hours, dealers, an FAQ, out of
   scope, a greeting), signed-in order questions, new conversations and continued ones.
   Handovers (routing, the journey stage, the summary) are timed on their own.
4. Baselines in the same run: the encoder on one sentence, and ``GET /health`` (the HTTP
   stack alone).

Prints p50, p90, p99 and max in milliseconds: wall time as the client waits, and the
process's CPU time per message (all its threads: the request's, the writer's), which a
machine shared with other work stretches less than the wall time. Run it under ``nice -n
-15`` on a busy machine, and with ``PYTHONPATH`` at another checkout's ``src`` to compare
two versions in one sitting.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from touchpoints.api.app import create_app
from touchpoints.assist.verification import user_hash
from touchpoints.cli.client import in_process_client
from touchpoints.config import load_settings
from touchpoints.core import Touchpoints

SECRET = "benchmark-secret-0123456789"
PUBLIC = [
    "Wann habt ihr am Samstag geöffnet?",
    "What are your opening hours?",
    "Gibt es einen Händler in Köln?",
    "Where is the nearest dealer to 80331?",
    "Wie lange ist die Garantie auf die Batterie?",
    "Can I pay with PayPal?",
    "Hallo!",
    "Erzähl mir einen Witz",
    "Kann ich eine Probefahrt mit dem E5 machen?",
    "Danke, das war's",
]
PERSONAL = ["Wo ist meine Bestellung?", "Where is my order?", "Wann wird geliefert?"]


def customers(n: int) -> list[dict[str, Any]]:
    out = []
    for i in range(n):
        user = f"u-{i}"
        out += [
            {
                "type": "identify",
                "userId": user,
                "traits": {"first_name": f"Kunde{i}", "email": f"k{i}@example.com"},
                "context": {"consent": {"categoryPreferences": {"analytics": i % 2 == 0}}},
            },
            {
                "type": "track",
                "userId": user,
                "event": "Order Completed",
                "properties": {"order_id": f"NW-{i:08d}", "revenue": 100.0 + i},
            },
            {
                "type": "track",
                "userId": user,
                "event": "Order Shipped",
                "properties": {"order_id": f"NW-{i:08d}", "carrier": "DHL"},
            },
        ]
    return out


def quantiles(values: list[float]) -> str:
    ordered = sorted(values)

    def at(q: float) -> float:
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    return (
        f"{len(values):>5} | {at(0.5):7.1f} | {at(0.9):7.1f} | {at(0.99):7.1f} | {ordered[-1]:7.1f}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--persons", type=int, default=2000)
    parser.add_argument("--messages", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    data = Path(tempfile.mkdtemp()) / "data"
    tp = Touchpoints.open(load_settings(data, assistant_identity_secret=SECRET))
    batch = customers(args.persons)
    for start in range(0, len(batch), 2000):
        tp.write_rows(tp.judge({"batch": batch[start : start + 2000]}, "batch", source="b").rows)
    tp.start_writer()
    app = create_app(tp)
    key = tp.keys.create("write", "bench")[1]
    started = time.perf_counter()
    tp.assistant.understanding.warm()
    print(
        f"{args.persons} persons; model loaded and trained in "
        f"{time.perf_counter() - started:.1f} s\n"
    )

    times: dict[str, list[float]] = {"public": [], "personal": [], "handover": []}
    cpu: dict[str, list[float]] = {"public": [], "personal": []}
    open_conversations: list[str] = []
    with in_process_client(app, key) as http:
        for n in range(args.messages + 20):
            personal = rng.random() < 0.35
            kind = "personal" if personal else "public"
            user = f"u-{rng.randrange(args.persons)}"
            body: dict[str, Any] = {"text": rng.choice(PERSONAL if personal else PUBLIC)}
            if personal:
                body.update(user_id=user, user_hash=user_hash(SECRET, user))
            else:
                body["anonymous_id"] = f"anon-{rng.randrange(10_000)}"
            if open_conversations and rng.random() < 0.5 and not personal:
                body["conversation"] = rng.choice(open_conversations)
            before, before_cpu = time.perf_counter(), time.process_time()
            answer = http.post("/v1/assistant/messages", json=body)
            spent = (time.perf_counter() - before) * 1000
            spent_cpu = (time.process_time() - before_cpu) * 1000
            if answer.status_code != 200:
                if answer.status_code == 409:  # continued one that is with a person now
                    continue
                sys.exit(f"{answer.status_code}: {answer.text}")
            if answer.json()["state"] == "queued":  # accepted an offer of a person
                kind = "handover"
            if n >= 20:  # the first ones warm caches
                times[kind].append(spent)
                if kind in cpu:
                    cpu[kind].append(spent_cpu)
            if answer.json()["state"] == "bot":
                open_conversations.append(answer.json()["conversation"])
        for _ in range(30):
            before = time.perf_counter()
            http.post(
                "/v1/assistant/messages",
                json={
                    "text": "Ich möchte mit einem Mitarbeiter sprechen",
                    "anonymous_id": f"anon-{rng.randrange(10_000)}",
                },
            )
            times["handover"].append((time.perf_counter() - before) * 1000)
        health = []
        for _ in range(200):
            before = time.perf_counter()
            http.get("/health")
            health.append((time.perf_counter() - before) * 1000)
    encoder = tp.assistant.understanding.encoder
    encode = []
    for i in range(200):
        before = time.perf_counter()
        encoder.encode([f"Wo ist meine Bestellung Nummer {i}?"])
        encode.append((time.perf_counter() - before) * 1000)
    tp.close()

    print("| per message (ms) | n | p50 | p90 | p99 | max |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    everything = times["public"] + times["personal"]
    for name, values in (
        ("all but handovers (POST /v1/assistant/messages)", everything),
        ("public answers (anonymous)", times["public"]),
        ("personal answers (signed in: order and state)", times["personal"]),
        ("handovers (routing, stage, summary)", times["handover"]),
        ("CPU time: public answers", cpu["public"]),
        ("CPU time: personal answers", cpu["personal"]),
        ("baseline: GET /health (the HTTP stack)", health),
        ("baseline: the encoder on one sentence", encode),
    ):
        print(f"| {name} | {quantiles(values)} |")
    print(f"\nmean of all but handovers: {statistics.mean(everything):.1f} ms")
    print(
        f"load average during the run (1 min): {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )


if __name__ == "__main__":
    main()
