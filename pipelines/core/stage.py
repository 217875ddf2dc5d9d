"""The stage protocol: typed frozen config, lazy `setup()`, and `__call__(batch) -> batch` over pyarrow tables.

The same stage object runs in a local loop, in a unit test, and as a Ray Data `map_batches` actor.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import ClassVar

import pyarrow as pa
from pydantic import BaseModel, ConfigDict


class StageConfig(BaseModel):
    """Base for stage configs: frozen and strict, so a typo in an option is an error, not a silent default."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class Stage(ABC):
    """A batch transform. Subclasses set `config_cls`, load models in `setup()` and map a table in `process()`."""

    config_cls: ClassVar[type[StageConfig]] = StageConfig
    name: ClassVar[str] = "stage"
    # True when the result over a row depends on every other row (dedup, a pool-wide top fraction): such a stage
    # must see the whole table in one call, so the runner refuses to split it into batches.
    whole_pool: ClassVar[bool] = False

    def __init__(self, config: StageConfig | dict | None = None, **overrides) -> None:
        if config is None or isinstance(config, dict):
            config = self.config_cls(**{**(config or {}), **overrides})
        elif overrides:
            config = config.model_copy(update=overrides)
        self.config = config
        self._ready = False

    def setup(self) -> None:
        """Load models or other heavy state; called once per process before the first batch."""

    def __call__(self, batch: pa.Table) -> pa.Table:
        if not self._ready:
            self.setup()
            self._ready = True
        return self.process(batch)

    @abstractmethod
    def process(self, batch: pa.Table) -> pa.Table:
        """Map one columnar batch to the next; never delete rows, add columns instead."""
