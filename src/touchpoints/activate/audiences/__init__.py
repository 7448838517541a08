"""Audiences and computed traits: conditions and figures over what touchpoints knows of each
person, kept current as events arrive, and sent to destinations as Segment sends them."""

from touchpoints.activate.audiences.conditions import valid_key
from touchpoints.activate.audiences.evaluation import Evaluation, MembershipChanges
from touchpoints.activate.audiences.files import AudienceFiles, Schedule, parsed_schedule
from touchpoints.activate.audiences.live import LiveAudiences
from touchpoints.activate.audiences.service import Audiences, ComputedTraits

__all__ = [
    "AudienceFiles",
    "Audiences",
    "ComputedTraits",
    "Evaluation",
    "LiveAudiences",
    "MembershipChanges",
    "Schedule",
    "parsed_schedule",
    "valid_key",
]
