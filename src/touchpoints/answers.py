"""What every typed answer shares: a pydantic model, immutable once made.

Parts define their answers (``journeys/results.py``, ``identity/results.py``,
``profiles/results.py``) on this base; the API returns them as they are (so
``/openapi.json`` documents every field), the CLI reads them back from JSON into the same
models, and the pages read their attributes.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Answer(BaseModel):
    """A typed answer: frozen, and only the fields it declares."""

    model_config = ConfigDict(frozen=True)
