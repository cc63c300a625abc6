"""The field types the config's sections share, and the Section base: each field a pydantic
annotation over a plain check of `watcher.config.values`."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict

from watcher.config.values import (
    check_address,
    check_ignore_rule,
    check_kind,
    interval_seconds,
    parse_size,
    positive_duration,
)
from watcher.times import parse_duration

Duration = Annotated[float, BeforeValidator(parse_duration)]
Interval = Annotated[float, BeforeValidator(interval_seconds)]
Size = Annotated[int, BeforeValidator(parse_size)]
KindName = Annotated[str, AfterValidator(check_kind)]
IgnoreRule = Annotated[str, AfterValidator(check_ignore_rule)]
PositiveDuration = Annotated[float, BeforeValidator(positive_duration)]
Address = Annotated[str, AfterValidator(check_address)]


class Section(BaseModel):
    """A table of the config file: an unknown key is an error, and values never change once read."""

    model_config = ConfigDict(extra="forbid", frozen=True)
