"""The questions the predictions service takes: typed and validated once, for every face."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

_FROZEN = ConfigDict(extra="forbid", frozen=True)


class LtvTraining(BaseModel):
    """Fit the lifetime-value models on the purchases of a window of days (UTC)."""

    model_config = _FROZEN
    since: date | None = Field(
        default=None, description="First day of purchases to learn from; unset: the first"
    )
    until: date | None = Field(
        default=None,
        description="Last day of purchases to learn from, and the end of observation; unset: today",
    )
    conversion_event: str | None = Field(
        default=None, min_length=1, description="unset: the setting predictions_conversion_event"
    )
    revenue_property: str | None = Field(
        default=None,
        pattern=r'^[^"\\]+$',
        description="unset: the setting predictions_revenue_property",
    )

    @model_validator(mode="after")
    def _window(self) -> LtvTraining:
        if self.since is not None and self.until is not None and self.until <= self.since:
            raise ValueError("until: give a day after since")
        return self


class HoldoutQuery(BaseModel):
    """Fit on a calibration period, predict the purchases of the holdout period that follows,
    and compare with what was bought (by frequency in the calibration period)."""

    model_config = _FROZEN
    calibration_end: date = Field(description="Last day of the calibration period")
    holdout_end: date = Field(description="Last day of the holdout period")
    since: date | None = Field(
        default=None, description="First day of the calibration period; unset: the first"
    )
    conversion_event: str | None = Field(
        default=None, min_length=1, description="unset: the setting predictions_conversion_event"
    )

    @model_validator(mode="after")
    def _periods(self) -> HoldoutQuery:
        if self.holdout_end <= self.calibration_end:
            raise ValueError("holdout_end: give a day after calibration_end")
        if self.since is not None and self.calibration_end <= self.since:
            raise ValueError("calibration_end: give a day after since")
        return self


class ChurnTraining(BaseModel):
    """Train the churn-risk models: on the persons at a cutoff two windows before ``until``,
    labelled by the window after it, tested on the persons at the next cutoff, one window
    before ``until``, labelled by the last window. Unset fields: the settings."""

    model_config = _FROZEN
    until: date | None = Field(
        default=None, description="Last day of the test period's window; unset: yesterday"
    )
    events: list[Annotated[str, Field(min_length=1)]] | None = Field(
        default=None, description="Activity events; empty: any event (predictions_churn_events)"
    )
    window_days: int | None = Field(
        default=None, ge=7, le=730, description="unset: predictions_churn_window_days"
    )
    population: Literal["purchasers", "everyone"] | None = Field(
        default=None, description="unset: predictions_churn_population"
    )
