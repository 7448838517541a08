"""A webhook receiver for tests: a real HTTP server on a loopback port (the edge of the
world is a local server, not a mock), recording every request and answering as told."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


# What to answer a request: status, headers (and the receiver may sleep before).
Answerer = Callable[[Received], tuple[int, dict[str, str]]]


@dataclass
class Receiver:
    url: str
    received: list[Received] = field(default_factory=list)
    answer: Answerer = lambda _: (200, {})
    delay: float = 0.0

    def wait_for(self, count: int, timeout: float = 15) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"received {len(self.received)} of {count}")
            time.sleep(0.02)
        return list(self.received)


@contextmanager
def receiver(port: int = 0) -> Iterator[Receiver]:
    found = Receiver(url="")
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's name
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            request = Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            if found.delay:
                time.sleep(found.delay)
            with lock:
                status, headers = found.answer(request)
                found.received.append(request)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    server.daemon_threads = True
    found.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield found
    finally:
        server.shutdown()
        server.server_close()
