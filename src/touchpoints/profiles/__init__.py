"""Profiles: the 360° view of one person."""

from touchpoints.profiles.profile import Profile, ProfileNotFound, Profiles, parse_key

__all__ = ["Profile", "ProfileNotFound", "Profiles", "parse_key"]
