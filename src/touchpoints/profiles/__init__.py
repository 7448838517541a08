"""Profiles: the 360° view of one person."""

from touchpoints.identity.identifiers import parse_key
from touchpoints.profiles.profile import ProfileNotFound, Profiles
from touchpoints.profiles.results import Profile

__all__ = ["Profile", "ProfileNotFound", "Profiles", "parse_key"]
