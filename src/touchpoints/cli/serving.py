"""How touchpoints runs uvicorn: the server and each of its collector processes alike.

Light on purpose (the configuration, the certificate check and the guarded protocol only): a
collector process imports it without the commands and the application behind them."""

from __future__ import annotations

import os
import resource
import ssl
from typing import Any

from touchpoints.cli.base import fail
from touchpoints.config import Settings


def uvicorn_config(app: Any, settings: Settings) -> Any:
    """How the server (and each of its collector processes) runs uvicorn."""
    import uvicorn

    from touchpoints.cli.protocol import guarded_protocol

    tls = tls_context(settings)
    raise_open_file_limit(settings.max_connections)
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=False,
        lifespan="on",
        server_header=False,
        # X-Forwarded-For and -Proto only from the proxies named (anyone can send them).
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=",".join(settings.trusted_proxies) or None,
        # httptools, with the bounds on a request's head uvicorn lacks (cli/protocol.py);
        # the body's are the app's (api/limits.py).
        http=guarded_protocol(settings.header_timeout_seconds, settings.max_header_bytes),
        limit_concurrency=settings.max_connections,
        timeout_keep_alive=settings.keep_alive_seconds,  # type: ignore[arg-type]
        ssl_certfile=settings.tls_cert_path if tls else None,
        ssl_context_factory=(lambda config, default: tls) if tls else None,
    )


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    """The server's TLS context for ``tls_cert`` and ``tls_key`` (None: plain HTTP): TLS 1.2
    at least, Python's default (modern) ciphers. A missing, unreadable or mismatched file
    stops the command with what to do."""
    cert, key = settings.tls_cert_path, settings.tls_key_path
    if cert is None or key is None:
        return None
    for option, path in (("--tls-cert", cert), ("--tls-key", key)):
        if not path.is_file():
            raise fail(f"{option}: {path} does not exist (or is not a file)")
        if not os.access(path, os.R_OK):
            raise fail(f"{option}: {path} cannot be read by this user")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        context.load_cert_chain(cert, key)
    except ssl.SSLError as exc:
        raise fail(
            f"--tls-cert {cert} and --tls-key {key} do not make a certificate and its key "
            f"(PEM): {exc.reason or exc}"
        ) from None
    return context


def raise_open_file_limit(connections: int) -> None:
    """Let the process hold ``max_connections`` sockets (and its files) open: raise the soft
    open-file limit toward the hard one when it is lower."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = connections + 256
    if soft != resource.RLIM_INFINITY and soft < wanted:
        target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
        if target > soft:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
