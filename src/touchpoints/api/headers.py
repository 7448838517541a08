"""Security headers on every answer: dashboard pages, the API, the collector, errors.

The Content-Security-Policy lets a page load scripts, styles, images and connections only
from this server: no inline script or style (the templates have none: charts take their
height from ``data-height``, bars are SVG, each page's styles are a file under
``static/pages``; a test reads every template for ``<script>`` without ``src``, ``on…=``
handlers, ``style`` attributes and ``<style>`` blocks), no ``eval`` (htmx is told not to), no
plugins, no ``<base>``, forms posting only here, and no framing (``frame-ancestors 'none'``,
and ``X-Frame-Options`` for old browsers). Addresses of the dashboard can hold personal data
(``/people/email:…``), so no ``Referer`` leaves the page; the browser features the dashboard
never uses are switched off. Answers with personal data are not kept by caches
(``Cache-Control: no-store`` unless the answer sets its own; static files keep theirs), and
over TLS browsers are told to keep to HTTPS (HSTS).
"""

from __future__ import annotations

from starlette.types import Message, Scope

CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "font-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
PERMISSIONS_POLICY = ", ".join(
    f"{feature}=()"
    for feature in (
        "accelerometer",
        "browsing-topics",
        "camera",
        "geolocation",
        "gyroscope",
        "magnetometer",
        "microphone",
        "payment",
        "usb",
    )
)
HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"permissions-policy", PERMISSIONS_POLICY.encode()),
    (b"cross-origin-opener-policy", b"same-origin"),
)
_NO_STORE = (b"cache-control", b"no-store")
_HSTS = (b"strict-transport-security", b"max-age=31536000")


def secured(message: Message, scope: Scope) -> Message:
    """A response's start (``http.response.start``) with the security headers it lacks."""
    headers = list(message.get("headers", ()))
    present = {name.lower() for name, _ in headers}
    headers.extend(header for header in HEADERS if header[0] not in present)
    if b"cache-control" not in present and not scope.get("path", "").startswith("/static/"):
        headers.append(_NO_STORE)
    if scope.get("scheme") == "https":
        headers.append(_HSTS)
    return {**message, "headers": headers}
