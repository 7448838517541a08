"""What a hostile client tries against the server process itself: connections it holds open,
heads and bodies it sends a byte at a time, bodies larger than any route takes, gzip bombs,
more requests than a key may make. A real ``touchpoints serve`` on a loopback port (tests/
conftest.py ``start_server``), short timeouts set through the environment as a user would."""

from __future__ import annotations

import socket
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import Server, start_server

pytestmark = pytest.mark.e2e

SHORT = {
    "TOUCHPOINTS_HEADER_TIMEOUT_SECONDS": "1",
    "TOUCHPOINTS_BODY_TIMEOUT_SECONDS": "1",
    "TOUCHPOINTS_KEEP_ALIVE_SECONDS": "1",
}


@pytest.fixture
def short(tmp_path: Path) -> Iterator[Server]:
    """A server whose heads and bodies must arrive within a second."""
    srv = start_server(tmp_path / "data", SHORT)
    yield srv
    srv.stop()


def _connect(server: Server) -> socket.socket:
    host, port = server.url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    return sock


def _read_all(sock: socket.socket, timeout: float = 10) -> bytes:
    """Everything the server sends until it closes the connection (or ``timeout``)."""
    sock.settimeout(timeout)
    chunks = []
    try:
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    except (TimeoutError, ConnectionResetError):
        pass
    return b"".join(chunks)


def _vm_rss_kb(server: Server) -> int:
    status = Path(f"/proc/{server.process.pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmRSS")))


# -- slow clients ------------------------------------------------------------------------------
def test_headers_sent_a_byte_at_a_time_are_cut_off(short: Server) -> None:
    """Slowloris: a client that keeps sending a header byte by byte is answered 408 and
    closed once the header timeout (1 s here) is past, not held for as long as it trickles."""
    sock = _connect(short)
    started = time.monotonic()
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n")
    closed = False
    try:
        for byte in b"X-Slow: " + b"a" * 100:
            sock.sendall(bytes([byte]))
            time.sleep(0.1)
    except (BrokenPipeError, ConnectionResetError):
        closed = True
    answer = _read_all(sock, timeout=5) if not closed else b""
    elapsed = time.monotonic() - started
    sock.close()
    assert closed or answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert elapsed < 5, elapsed


def test_a_connection_that_sends_nothing_is_closed(short: Server) -> None:
    sock = _connect(short)
    started = time.monotonic()
    assert _read_all(sock, timeout=10) == b""  # closed, nothing to answer
    assert time.monotonic() - started < 5
    sock.close()


def test_a_body_sent_a_byte_at_a_time_is_cut_off(short: Server) -> None:
    sock = _connect(short)
    sock.sendall(
        b"POST /v1/track HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000\r\n\r\n{"
    )
    started = time.monotonic()
    answer = b""
    try:
        for _ in range(60):
            sock.sendall(b" ")
            time.sleep(0.1)
            sock.setblocking(False)
            try:
                answer += sock.recv(65536)
            except BlockingIOError:
                pass
            finally:
                sock.setblocking(True)
            if answer:
                break
    except (BrokenPipeError, ConnectionResetError):
        pass
    answer += _read_all(sock, timeout=5)
    sock.close()
    assert answer.startswith(b"HTTP/1.1 408"), answer[:300]
    assert b"connection: close" in answer.lower()
    assert time.monotonic() - started < 5


def test_three_hundred_idle_connections_do_not_stop_health(server: Server) -> None:
    """Idle sockets each hold a connection, not a worker: with 300 of them open (under
    ``max_connections``, 1000), /health still answers at once."""
    idle = [_connect(server) for _ in range(300)]
    try:
        time.sleep(0.3)
        started = time.monotonic()
        response = httpx.get(f"{server.url}/health", timeout=5)
        assert response.status_code == 200
        assert time.monotonic() - started < 2
        with server.client() as http:
            assert http.get("/v1/events/count").status_code == 200
    finally:
        for sock in idle:
            sock.close()


def test_connections_beyond_max_connections_are_answered_503(tmp_path: Path) -> None:
    srv = start_server(tmp_path / "data", {"TOUCHPOINTS_MAX_CONNECTIONS": "20"})
    try:
        idle = [_connect(srv) for _ in range(25)]
        try:
            time.sleep(0.3)
            response = httpx.get(f"{srv.url}/health", timeout=5)
            assert response.status_code == 503
        finally:
            for sock in idle:
                sock.close()
        time.sleep(0.3)
        assert httpx.get(f"{srv.url}/health", timeout=5).status_code == 200
    finally:
        srv.stop()


def test_an_idle_kept_alive_connection_is_closed(short: Server) -> None:
    sock = _connect(short)
    sock.sendall(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
    started = time.monotonic()
    answer = _read_all(sock, timeout=10)
    assert answer.startswith(b"HTTP/1.1 200")
    assert time.monotonic() - started < 5  # closed after keep_alive_seconds (1 s)
    sock.close()


# -- sizes -------------------------------------------------------------------------------------
def test_headers_larger_than_max_header_bytes_are_431(server: Server) -> None:
    response = httpx.get(f"{server.url}/health", headers={"X-Big": "a" * 20_000}, timeout=10)
    assert response.status_code == 431


def test_a_body_larger_than_any_route_takes_is_413_unread(server: Server) -> None:
    """An API route (FastAPI reads a whole body before it checks the key) is refused at the
    declared length, before a byte of the body is read."""
    sock = _connect(server)
    sock.sendall(
        b"POST /v1/keys HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 50000000\r\n\r\n"
    )
    answer = _read_all(sock, timeout=10)
    sock.close()
    assert answer.startswith(b"HTTP/1.1 413"), answer[:300]
    assert b"1048576" in answer


def test_a_chunked_body_past_the_limit_is_413(server: Server) -> None:
    def chunks() -> Iterator[bytes]:
        for _ in range(40):
            yield b"x" * 65536

    response = httpx.post(
        f"{server.url}/v1/journeys/query",
        content=chunks(),
        headers={"Authorization": f"Bearer {server.read_key}"},
        timeout=30,
    )
    assert response.status_code == 413


def _gzip_bomb(inflated: int) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    zeros = b"0" * (1 << 20)
    parts = [packer.compress(zeros) for _ in range(inflated >> 20)]
    parts.append(packer.flush())
    return b"".join(parts)


@pytest.mark.parametrize("path", ["/v1/batch", "/v1/track"])
def test_a_gzip_bomb_is_413_without_inflating_it(server: Server, path: str) -> None:
    """300 MB of JSON-ish zeros gzipped to about 300 KB (under the batch limit): refused 413
    once it inflates past the route's limit, the server's memory hardly moving."""
    bomb = _gzip_bomb(300 << 20)
    assert len(bomb) < 512_000
    before = _vm_rss_kb(server)
    response = httpx.post(
        f"{server.url}{path}",
        content=bomb,
        auth=(server.write_key, ""),
        headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
        timeout=30,
    )
    assert response.status_code == 413, response.text
    assert "nothing was stored" in response.json()["error"]
    assert _vm_rss_kb(server) - before < 50_000  # KB: nowhere near the 300 MB it holds
    assert server.count() == 0


# -- rates -------------------------------------------------------------------------------------
def test_a_read_key_past_its_rate_is_429_with_retry_after(tmp_path: Path) -> None:
    srv = start_server(
        tmp_path / "data",
        {"TOUCHPOINTS_RATE_LIMIT_API": "0.5", "TOUCHPOINTS_RATE_LIMIT_API_BURST": "5"},
    )
    try:
        with srv.client() as http:
            codes = [http.get("/v1/events/count").status_code for _ in range(5)]
            assert codes == [200] * 5
            refused = http.get("/v1/events/count")
            assert refused.status_code == 429
            assert int(refused.headers["Retry-After"]) >= 1
            assert "retry in" in refused.json()["detail"]
        with srv.client(srv.admin_key()) as other:  # another key has its own bucket
            assert other.get("/v1/events/count").status_code == 200
        assert httpx.get(f"{srv.url}/health", timeout=5).status_code == 200  # no key, no limit
    finally:
        srv.stop()


def test_a_write_key_past_its_rate_is_429_and_nothing_stored(tmp_path: Path) -> None:
    srv = start_server(
        tmp_path / "data",
        {"TOUCHPOINTS_RATE_LIMIT_COLLECT": "0.5", "TOUCHPOINTS_RATE_LIMIT_COLLECT_BURST": "3"},
    )
    try:
        event = {"userId": "u", "event": "E"}
        codes = [
            srv.post("/v1/track", json=event, auth=(srv.write_key, "")).status_code
            for _ in range(3)
        ]
        assert codes == [200] * 3
        refused = srv.post("/v1/track", json=event, auth=(srv.write_key, ""))
        assert refused.status_code == 429
        assert int(refused.headers["Retry-After"]) >= 1
        assert "nothing was stored" in refused.json()["error"]
        srv.wait_idle()
        assert srv.count() == 3
    finally:
        srv.stop()


def test_the_default_rates_take_an_sdk_burst(server: Server) -> None:
    """An SDK flushing its queue sends its batches back to back: 300 at once pass."""
    batch = {"batch": [{"type": "track", "userId": "u", "event": "E"} for _ in range(10)]}
    with httpx.Client(base_url=server.url, auth=(server.write_key, ""), timeout=30) as http:
        codes = {http.post("/v1/batch", json=batch).status_code for _ in range(300)}
    assert codes == {200}
    with server.client() as http:
        assert {http.get("/v1/events/count").status_code for _ in range(150)} == {200}


def test_a_body_in_the_same_read_as_its_headers_is_not_counted_as_headers(server: Server) -> None:
    """A 400 KB batch sent in one write (head and body in one read) is stored: only the head
    counts toward ``max_header_bytes`` (it was refused 431 when the read was counted whole)."""
    batch = {"batch": [{"type": "track", "userId": "u", "event": "E" * 4000} for _ in range(100)]}
    response = server.post("/v1/batch", json=batch, auth=(server.write_key, ""))
    assert response.status_code == 200, response.text
    assert server.wait_for_count(100) == 100
