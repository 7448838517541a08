"""``touchpoints serve --collectors N``: collector processes beside the server.

The server (the process that owns the warehouse) starts N processes of this module once it
has recovered its logs and written the keys they verify. Each binds ``collect_port`` with
``SO_REUSEPORT``, so the kernel spreads connections among them, judges requests as the server
does, logs what it accepts and answers (:class:`touchpoints.core.CollectorProcess`); the
server loads their logs (:mod:`touchpoints.collect.spool`). A process that dies is started
again (its open log is read, its torn last line skipped); a collector whose server is gone
stops on its own within a second. The server stops them (SIGTERM: each finishes its requests
and hands over its last segment) before it writes what it holds and exits.

Run as ``python -m touchpoints.cli.collectors <data dir> <number> <settings JSON>``; it prints
one line, ``ready`` or ``error: <why>``, for the server to read.
"""

from __future__ import annotations

import logging
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

import orjson

from touchpoints.config import ConfigError, Settings, load_settings

log = logging.getLogger("touchpoints.collectors")

_START_SECONDS = 60.0  # a process that has said nothing by then is taken as failed
_STOP_SECONDS = 30.0


def _overrides(settings: Settings) -> dict[str, Any]:
    """What a collector process must see as the server does, whatever the server was given
    on its command line (the environment and the data directory's file it reads itself)."""
    return {
        "host": settings.host,
        "port": settings.port,
        "collectors": settings.collectors,
        "collect_port": settings.collectors_port,
        "tls_cert": str(settings.tls_cert_path) if settings.tls_cert_path else None,
        "tls_key": str(settings.tls_key_path) if settings.tls_key_path else None,
    }


class CollectorProcesses:
    """Starts, watches and stops the collector processes of one server."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.count = settings.collectors
        self._procs: dict[int, subprocess.Popen[bytes]] = {}
        self._stopping = threading.Event()
        self._watch: threading.Thread | None = None

    def start(self) -> str | None:
        numbers = range(1, self.count + 1)
        for number in numbers:  # all at once: each takes a few seconds to start
            self._launch(number)
        for number in numbers:
            failure = self._started(number)
            if failure is not None:
                self.stop()
                return failure
        self._watch = threading.Thread(
            target=self._watching, name="touchpoints-collectors", daemon=True
        )
        self._watch.start()
        log.info(
            "%d collector processes on %s:%d",
            self.count,
            self.settings.host,
            self.settings.collectors_port,
        )
        return None

    def _spawn(self, number: int) -> str | None:
        self._launch(number)
        return self._started(number)

    def _launch(self, number: int) -> None:
        settings = self.settings
        command = [
            sys.executable,
            "-m",
            "touchpoints.cli.collectors",
            str(settings.data_dir),
            str(number),
            orjson.dumps(_overrides(settings)).decode(),
        ]
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
        self._procs[number] = proc

    def _started(self, number: int) -> str | None:
        """None once process ``number`` says it is ready; else why it could not start."""
        settings = self.settings
        proc = self._procs[number]
        assert proc.stdout is not None
        line = _first_line(proc.stdout, _START_SECONDS)
        if line == "ready":
            return None
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        why = line.removeprefix("error: ") if line else f"it ended with code {proc.returncode}"
        return (
            f"collector process {number} could not start on "
            f"{settings.host}:{settings.collectors_port}: {why}"
        )

    def _watching(self) -> None:
        while not self._stopping.wait(1.0):
            for number, proc in list(self._procs.items()):
                if proc.poll() is None or self._stopping.is_set():
                    continue
                log.warning(
                    "collector process %d ended with code %s; starting it again",
                    number,
                    proc.returncode,
                )
                failure = self._spawn(number)
                if failure is not None:
                    log.error("%s", failure)

    def stop(self) -> None:
        """SIGTERM every process, wait for each to hand over its last segment (killed after
        ``_STOP_SECONDS``: its log is then read at the next start)."""
        self._stopping.set()
        if self._watch is not None and self._watch is not threading.current_thread():
            self._watch.join()
        for proc in self._procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + _STOP_SECONDS
        for proc in self._procs.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
        self._procs.clear()


def _first_line(stream: IO[bytes], timeout: float) -> str:
    """The first line a child prints, or "" when it prints none in time (or ends)."""
    ready, _, _ = select.select([stream], [], [], timeout)
    if not ready:
        return ""
    return stream.readline().decode(errors="replace").strip()


def _listening_socket(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    # Every collector process binds the same port; the kernel spreads the connections.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    return sock


def _watch_parent(server: Any, parent: int) -> None:
    """Stop when the server that started this process is gone (killed: no SIGTERM came)."""
    while not server.should_exit:
        if os.getppid() != parent:
            log.warning("the server is gone; this collector process stops")
            server.should_exit = True
            return
        time.sleep(0.5)


def main(argv: list[str]) -> int:
    import uvicorn

    from touchpoints.api.collector_app import create_collector_app
    from touchpoints.cli.serving import uvicorn_config
    from touchpoints.collect.process import CollectorProcess

    parent = os.getppid()
    data_dir, number, overrides = Path(argv[0]), int(argv[1]), orjson.loads(argv[2])
    try:
        settings = load_settings(data_dir, **overrides)
    except ConfigError as exc:
        print(f"error: {exc}", flush=True)
        return 2
    logging.basicConfig(
        level=settings.log_level.upper(),
        format=f"%(asctime)s %(levelname)s %(name)s[collector {number}]: %(message)s",
    )
    try:
        sock = _listening_socket(settings.host, settings.collectors_port)
    except OSError as exc:
        print(f"error: {exc.strerror or exc}", flush=True)
        return 2
    host = CollectorProcess(settings, number, share=settings.collectors)
    app = create_collector_app(host, number, share=settings.collectors)
    server = uvicorn.Server(uvicorn_config(app, settings))
    ready = threading.Thread(target=_say_ready, args=(server,), daemon=True)
    ready.start()
    threading.Thread(target=_watch_parent, args=(server, parent), daemon=True).start()
    sys.setswitchinterval(0.001)
    # uvicorn stops gracefully on SIGTERM, then re-raises it with the handlers it found:
    # finding these no-ops, the process ends with 0 once its last segment is handed over.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, _ignore)
    server.run(sockets=[sock])
    return 0 if server.started else 1


def _ignore(signum: int, frame: object) -> None:
    """A signal handler that does nothing (see main)."""


def _say_ready(server: Any) -> None:
    while not server.started and not server.should_exit:
        time.sleep(0.02)
    if server.started:
        print("ready", flush=True)
    else:
        print("error: it stopped while starting", flush=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
