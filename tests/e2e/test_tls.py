"""``touchpoints serve --tls-cert FILE --tls-key FILE``: HTTPS with a self-signed certificate
made by the test (the openssl command), HSTS over it, the CLI still reaching the server, and
a clear refusal of files that cannot serve."""

from __future__ import annotations

import shutil
import ssl
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from conftest import Server, cli, run_cli, start_server

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command"),
]


def _self_signed(directory: Path, name: str = "server") -> tuple[Path, Path]:
    cert, key = directory / f"{name}.crt", directory / f"{name}.key"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
            "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.fixture(scope="module")
def pair(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """One certificate and key for the module (the files are only read)."""
    return _self_signed(tmp_path_factory.mktemp("tls"))


def _trusting(cert: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cert))


@pytest.fixture(scope="module")
def tls_server(
    tmp_path_factory: pytest.TempPathFactory, pair: tuple[Path, Path]
) -> Iterator[Server]:
    """One TLS server for the module's tests of it (starting one takes seconds)."""
    cert, key = pair
    srv = start_server(
        tmp_path_factory.mktemp("tls-server") / "data",
        serve_args=("--tls-cert", str(cert), "--tls-key", str(key)),
        verify=_trusting(cert),
    )
    yield srv
    srv.stop()


def test_serve_with_a_certificate_answers_https_with_hsts(
    tls_server: Server, pair: tuple[Path, Path]
) -> None:
    cert = _trusting(pair[0])
    assert tls_server.url.startswith("https://")
    response = httpx.get(f"{tls_server.url}/health", verify=cert, timeout=10)
    assert response.status_code == 200
    assert response.extensions["http_version"] == b"HTTP/1.1"
    assert "max-age=" in response.headers["Strict-Transport-Security"]
    event = {"userId": "tls", "event": "Over TLS"}
    sent = httpx.post(
        f"{tls_server.url}/v1/track", json=event, auth=(tls_server.write_key, ""), verify=cert
    )
    assert sent.status_code == 200
    with httpx.Client(
        base_url=tls_server.url,
        verify=cert,
        headers={"Authorization": f"Bearer {tls_server.read_key}"},
    ) as http:
        deadline_count = 0
        for _ in range(100):
            deadline_count = http.get("/v1/events/count").json()["count"]
            if deadline_count:
                break
            time.sleep(0.05)
        assert deadline_count == 1


def test_plain_http_to_the_tls_port_is_not_answered_in_plain_text(tls_server: Server) -> None:
    plain = tls_server.url.replace("https://", "http://")
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{plain}/health", timeout=5)


def test_an_unknown_certificate_is_refused_by_a_checking_client(tls_server: Server) -> None:
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{tls_server.url}/health", timeout=5)  # the system's CAs only


def test_the_cli_reaches_a_tls_server(tls_server: Server, pair: tuple[Path, Path]) -> None:
    """The CLI finds the server in server.json and trusts its certificate, and only it."""
    result = run_cli("events", "count", data_dir=tls_server.data_dir)
    assert result.returncode == 0, result.stderr
    with httpx.Client(
        base_url=tls_server.url,
        verify=_trusting(pair[0]),
        headers={"Authorization": f"Bearer {tls_server.read_key}"},
    ) as http:
        counted = http.get("/v1/events/count").json()["count"]
    assert result.stdout.split()[-1] == str(counted)


def _said(result: subprocess.CompletedProcess[str]) -> str:
    return " ".join(result.stderr.split())  # the console wraps long lines


def _serve(data_dir: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``touchpoints serve`` refusing its settings, in this process (the checks come before
    anything starts; the first test below runs the real process once)."""
    cli("init", data_dir=data_dir)
    return cli("serve", "--port", "1", *args, data_dir=data_dir)


def test_a_missing_certificate_stops_serve_naming_the_file(
    tmp_path: Path, pair: tuple[Path, Path]
) -> None:
    missing = tmp_path / "nowhere.crt"
    run_cli("init", data_dir=tmp_path / "data")
    result = run_cli(
        "serve",
        "--port",
        "1",
        "--tls-cert",
        str(missing),
        "--tls-key",
        str(pair[1]),
        data_dir=tmp_path / "data",
    )
    assert result.returncode != 0
    assert "--tls-cert" in result.stderr and str(missing) in _said(result), result.stderr


def test_a_key_that_is_not_the_certificates_stops_serve(
    tmp_path: Path, pair: tuple[Path, Path]
) -> None:
    _, other_key = _self_signed(tmp_path, "other")
    result = _serve(tmp_path / "data", "--tls-cert", str(pair[0]), "--tls-key", str(other_key))
    assert result.returncode != 0
    assert "do not make a certificate and its key" in _said(result), result.stderr


def test_a_file_that_is_not_pem_stops_serve(tmp_path: Path, pair: tuple[Path, Path]) -> None:
    junk = tmp_path / "junk.crt"
    junk.write_text("not a certificate")
    result = _serve(tmp_path / "data", "--tls-cert", str(junk), "--tls-key", str(pair[1]))
    assert result.returncode != 0
    assert "do not make a certificate and its key" in _said(result), result.stderr


def test_a_certificate_without_its_key_stops_serve(tmp_path: Path, pair: tuple[Path, Path]) -> None:
    result = _serve(tmp_path / "data", "--tls-cert", str(pair[0]))
    assert result.returncode != 0
    assert "tls_cert and tls_key" in _said(result), result.stderr


# -- behind a reverse proxy (docs/security.md) ------------------------------------------------
def test_a_trusted_proxys_forwarded_https_gets_hsts_and_others_are_ignored(
    tmp_path: Path,
) -> None:
    """With ``trusted_proxies`` naming the proxy (here this machine), its X-Forwarded-Proto
    is believed (HSTS over the proxy's TLS); without it, the header is anyone's and ignored."""
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.7"}
    trusting = start_server(tmp_path / "a", {"TOUCHPOINTS_TRUSTED_PROXIES": '["127.0.0.1"]'})
    try:
        response = httpx.get(f"{trusting.url}/health", headers=forwarded, timeout=10)
        assert "Strict-Transport-Security" in response.headers
        plain = httpx.get(f"{trusting.url}/health", timeout=10)
        assert "Strict-Transport-Security" not in plain.headers
    finally:
        trusting.stop()
    untrusting = start_server(tmp_path / "b")
    try:
        response = httpx.get(f"{untrusting.url}/health", headers=forwarded, timeout=10)
        assert "Strict-Transport-Security" not in response.headers
    finally:
        untrusting.stop()


def test_a_trusted_proxy_that_is_no_address_stops_serve(tmp_path: Path) -> None:
    data = tmp_path / "data"
    cli("init", data_dir=data)
    result = cli(
        "serve", "--port", "1", data_dir=data, env={"TOUCHPOINTS_TRUSTED_PROXIES": '["nginx"]'}
    )
    assert result.returncode != 0
    assert "'nginx' is not an IP address or network" in _said(result), result.stderr
