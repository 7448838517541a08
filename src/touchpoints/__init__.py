"""touchpoints: a self-hosted customer data platform with customer-journey analytics.

``Touchpoints``, ``Settings`` and ``load_settings`` are loaded when first asked for (PEP 562):
importing any part of the package (a collector process imports the collector, the keys and
the write-ahead log) does not import the whole application with it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from touchpoints.config import Settings, load_settings
    from touchpoints.core import Touchpoints

__all__ = ["Settings", "Touchpoints", "load_settings"]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name == "Touchpoints":
        from touchpoints.core import Touchpoints

        return Touchpoints
    if name in ("Settings", "load_settings"):
        from touchpoints import config

        return getattr(config, name)
    raise AttributeError(f"module 'touchpoints' has no attribute {name!r}")
