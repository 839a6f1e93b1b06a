"""Settings of one generator run (what ``leadcast generate`` takes on its command line)."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict, Field

#: Bumped whenever the same settings would produce different data.
GENERATOR_VERSION = "1.0.0"


class GeneratorConfig(BaseModel):
    """One generator run. Same settings and version → byte-identical output.

    ``end_date`` is the last day of the history: the snapshot is taken at the end of that day
    (nothing is stamped at or after the following midnight). ``years`` is the length of the
    history; ``shock_sd`` the sd of the monthly shock shared by all leads created in a month;
    ``invalid_share`` the share of each table's rows made invalid on purpose.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    leads: int = Field(ge=1, le=9_999_999, description="number of leads")
    seed: int = Field(ge=0, description="random seed")
    end_date: date
    years: float = Field(default=3.0, gt=0.0, le=20.0)
    shock_sd: float = Field(default=0.15, ge=0.0, le=1.0)
    invalid_share: float = Field(default=0.0, ge=0.0, le=0.2)
