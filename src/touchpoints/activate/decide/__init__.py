"""Personalisation: placements with rules in the audience language, and the decision a
website or an app asks for (``POST /v1/decide``), with a control group held out per
placement so the uplift can be measured."""

from touchpoints.activate.decide.facts import Facts
from touchpoints.activate.decide.service import DecideQuery, Decider, Placements, decide_query
from touchpoints.activate.decide.store import PlacementStore

__all__ = ["DecideQuery", "Decider", "Facts", "PlacementStore", "Placements", "decide_query"]
