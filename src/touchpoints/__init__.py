"""touchpoints: a self-hosted customer data platform with customer-journey analytics."""

from touchpoints.config import Settings, load_settings
from touchpoints.core import Touchpoints

__all__ = ["Settings", "Touchpoints", "load_settings"]
__version__ = "0.1.0"
