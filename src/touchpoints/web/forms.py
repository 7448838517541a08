"""Reading a page's form: an url-encoded body, bounded in size and in fields."""

from __future__ import annotations

from urllib.parse import parse_qs

from starlette.requests import Request

from touchpoints.errors import TooLarge

FORM_MAX = 64 * 1024  # the largest form of the dashboard is a few kB
FIELDS_MAX = 200


async def form_fields(request: Request, limit: int = FORM_MAX) -> dict[str, str]:
    """An url-encoded form's fields (the first value of each); a body longer than ``limit``
    bytes is refused (:class:`TooLarge`) before it is read to its end."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"the form is larger than {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise TooLarge(f"the form is larger than {limit} bytes")
    text = bytes(body).decode("utf-8", errors="replace")
    try:
        fields = parse_qs(text, keep_blank_values=True, max_num_fields=FIELDS_MAX)
    except ValueError:  # more fields than FIELDS_MAX
        raise TooLarge(f"the form has more than {FIELDS_MAX} fields") from None
    return {k: v[0] for k, v in fields.items()}
