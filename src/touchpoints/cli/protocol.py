"""The server's HTTP/1.1 protocol: uvicorn's httptools protocol with the two bounds it lacks.

uvicorn (0.54, pinned) closes a kept-alive connection that stays idle, answers 503 beyond
``limit_concurrency`` connections and bounds headers only with its h11 protocol
(``h11_max_incomplete_event_size``), which is several times slower than httptools. It does
not bound the time a client takes to send a request's head: a connection that sends nothing,
or its headers a byte at a time (slowloris), is held for ever, and with httptools a header
of any size is buffered whole. This protocol adds both:

- the request line and headers must arrive within ``header_timeout`` seconds, counted from
  the connection (or, on a kept-alive one, from the request's first byte); otherwise the
  answer is 408 (or, when nothing was sent at all, the connection is just closed);
- they may be at most ``max_header_bytes`` long; otherwise 431. The bytes are counted as they
  arrive (up to the blank line that ends the head; a body in the same read is not counted),
  before the parser keeps them, so at most one more read (256 KB) is ever buffered.

Either way the connection is closed: what else it sent is not read. The body's bounds (time
and size) are the app's (:class:`touchpoints.api.limits.RequestGuard`), where the answer can
say which route refused it.

It also answers with one write where uvicorn makes two. uvicorn writes a response's status
line and headers, then its body, each straight to the socket: two system calls and two
segments on the wire for every small answer. py-spy on the server under ``wrk -c32`` of
decisions (benchmarks/decide.py, 2026-12-02) put 26 % of the event loop's samples in those
two writes, the first dearer (251 samples against 74). :class:`_OneWrite` holds the first
write of a loop iteration and sends it with the next one, or at the end of the iteration
(``call_soon``) when no other follows; closing sends what it holds first.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol


class _OneWrite:
    """A transport that joins the writes of one loop iteration into one ``write``. What it
    holds is sent before the transport closes or hands over to another protocol; every
    other attribute is the transport's own."""

    __slots__ = ("_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        held = self._held
        if held is None:
            self._held = bytes(data)
            self._loop.call_soon(self.flush)
        else:
            self._held = None
            self._transport.write(held + data)

    def flush(self) -> None:
        held = self._held
        if held is not None:
            self._held = None
            if not self._transport.is_closing():
                self._transport.write(held)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.flush()
        self._transport.set_protocol(protocol)

    def abort(self) -> None:
        self._held = None
        self._transport.abort()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """httptools' protocol with a deadline and a size limit for the request head. Made for a
    server's settings by :func:`guarded_protocol`."""

    header_timeout: ClassVar[float] = 10.0
    max_header_bytes: ClassVar[int] = 16 * 1024

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timer: asyncio.TimerHandle | None = None
        self._in_head = True  # reading a request's line and headers
        self._head_bytes = 0
        self._head_tail = b""  # the last bytes of the head so far (its end may straddle reads)
        self._head_begun = False  # a request's first byte has come (its head is not complete)
        self._refused = False

    # -- the connection ----------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.transport = _OneWrite(transport, self.loop)  # type: ignore[assignment]
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self._in_head and not self._head_fits(data):
            self._refuse(431, "the request's headers are larger than the server accepts")
            return
        super().data_received(data)

    def _head_fits(self, data: bytes) -> bool:
        """Count the bytes of ``data`` that belong to the request's head (up to the blank
        line that ends it, if it is in ``data``: the body that follows is not the head's)."""
        window = self._head_tail + data
        end = window.find(b"\r\n\r\n")
        in_head = len(data) if end < 0 else end + 4 - len(self._head_tail)
        self._head_bytes += max(in_head, 0)
        self._head_tail = window[-3:]
        return self._head_bytes <= self.max_header_bytes

    # -- the parser's callbacks --------------------------------------------------------------
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._head_begun = True
        if not self._in_head:
            self._in_head = True
            self._arm()

    def on_headers_complete(self) -> None:
        if self._refused:
            return
        self._in_head = self._head_begun = False
        self._head_bytes, self._head_tail = 0, b""
        self._disarm()
        size = len(self.url) + sum(len(name) + len(value) + 4 for name, value in self.headers)
        if size > self.max_header_bytes:
            self._refuse(431, "the request's headers are larger than the server accepts")
            return
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        if not self._refused:
            super().on_body(body)

    def on_message_complete(self) -> None:
        if not self._refused:
            super().on_message_complete()

    # -- refusing ----------------------------------------------------------------------------
    def _arm(self) -> None:
        if self._head_timer is None:
            self._head_timer = self.loop.call_later(self.header_timeout, self._head_timed_out)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if self._refused or not self._in_head or self.transport.is_closing():
            return
        if not self._head_begun and (self.cycle is None or self.cycle.response_complete):
            self._refused = True
            self.transport.close()  # nothing was asked: nothing to answer
            return
        self._refuse(408, "the request's headers did not arrive in time")

    def _refuse(self, status: int, message: str) -> None:
        """Answer ``status`` with ``message`` and close the connection, reading no more."""
        self._refused = True
        self._disarm()
        if self.transport.is_closing():
            return
        body = message.encode()
        head = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            head.extend([name, b": ", value, b"\r\n"])
        head.extend(
            [
                b"content-type: text/plain; charset=utf-8\r\n",
                b"content-length: " + str(len(body)).encode() + b"\r\n",
                b"connection: close\r\n\r\n",
                body,
            ]
        )
        self.transport.write(b"".join(head))
        self.transport.close()


def guarded_protocol(header_timeout: float, max_header_bytes: int) -> type[HttpToolsProtocol]:
    """The protocol class uvicorn makes each connection with, for these bounds."""
    return type(
        "GuardedHttpToolsProtocol",
        (GuardedHttpToolsProtocol,),
        {"header_timeout": header_timeout, "max_header_bytes": max_header_bytes},
    )
