"""The server's transport wrapper (cli/protocol.py ``_OneWrite``): what uvicorn writes for one
response in one loop iteration (status line and headers, then the body) reaches the socket
as one write, in order; a lone write is not held past the iteration; closing, handing over
and writing EOF send what is held first; aborting drops it. On a real asyncio loop, with a
transport that records its writes."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from touchpoints.cli.protocol import _OneWrite


class Recording(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[str, Any]] = []
        self.closing = False

    def write(self, data: Any) -> None:
        self.calls.append(("write", bytes(data)))

    def close(self) -> None:
        self.calls.append(("close", None))
        self.closing = True

    def is_closing(self) -> bool:
        return self.closing

    def write_eof(self) -> None:
        self.calls.append(("eof", None))

    def set_protocol(self, protocol: asyncio.BaseProtocol) -> None:
        self.calls.append(("protocol", protocol))

    def abort(self) -> None:
        self.calls.append(("abort", None))
        self.closing = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return ("127.0.0.1", 9) if name == "peername" else default


def run(steps: Any) -> list[tuple[str, Any]]:
    """``steps`` on a loop of its own, in a thread of its own (a browser test before this one
    in the same worker may have left a loop running in the main thread)."""

    async def go() -> list[tuple[str, Any]]:
        raw = Recording()
        await steps(_OneWrite(raw, asyncio.get_running_loop()))
        await asyncio.sleep(0)
        await asyncio.sleep(0)
        return raw.calls

    found: list[list[tuple[str, Any]]] = []
    failed: list[BaseException] = []

    def thread() -> None:
        try:
            found.append(asyncio.run(go()))
        except BaseException as exc:  # noqa: BLE001 - raised again in the test's thread
            failed.append(exc)

    worker = threading.Thread(target=thread)
    worker.start()
    worker.join(30)
    if failed:
        raise failed[0]
    return found[0]


def test_a_head_and_body_written_together_go_out_as_one_write_in_order() -> None:
    async def steps(t: _OneWrite) -> None:
        t.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
        t.write(b"{}")
        t.write(b"HTTP/1.1 204 No Content\r\n\r\n")  # the next response, pipelined

    assert run(steps) == [
        ("write", b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"),
        ("write", b"HTTP/1.1 204 No Content\r\n\r\n"),
    ]


def test_a_lone_write_leaves_at_the_end_of_the_iteration_not_later() -> None:
    seen: list[list[tuple[str, Any]]] = []

    async def steps(t: _OneWrite) -> None:
        t.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        assert t._transport.calls == []  # type: ignore[attr-defined]
        await asyncio.sleep(0)  # one iteration: the held write is sent
        seen.append(list(t._transport.calls))  # type: ignore[attr-defined]

    run(steps)
    assert seen == [[("write", b"HTTP/1.1 100 Continue\r\n\r\n")]]


def test_close_eof_and_handover_send_what_is_held_first_and_abort_drops_it() -> None:
    async def closing(t: _OneWrite) -> None:
        t.write(b"bye")
        t.close()

    assert run(closing) == [("write", b"bye"), ("close", None)]

    async def eof(t: _OneWrite) -> None:
        t.write(b"last")
        t.write_eof()

    assert run(eof) == [("write", b"last"), ("eof", None)]

    protocol = asyncio.Protocol()

    async def handover(t: _OneWrite) -> None:
        t.write(b"HTTP/1.1 101 Switching Protocols\r\n\r\n")
        t.set_protocol(protocol)

    assert run(handover) == [
        ("write", b"HTTP/1.1 101 Switching Protocols\r\n\r\n"),
        ("protocol", protocol),
    ]

    async def aborting(t: _OneWrite) -> None:
        t.write(b"never")
        t.abort()

    assert run(aborting) == [("abort", None)]


def test_everything_else_is_the_transports_own() -> None:
    async def steps(t: _OneWrite) -> None:
        assert t.get_extra_info("peername") == ("127.0.0.1", 9)
        assert t.is_closing() is False

    assert run(steps) == []
