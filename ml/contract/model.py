"""The event contract as data: which fields an event has, which of them the model reads, and the label.

A contract is loaded from YAML (see `loader.py`) into these frozen dataclasses. Every stage that
touches events (offload, validation, drift, training, serving, the simulator) asks the contract for
field names, types and ranges instead of hard-coding them, so the pipeline runs on any stream.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Literal

import pyarrow as pa

NUMERIC, CATEGORICAL = "numeric", "categorical"
DERIVED_OPS = ("difference", "product", "ratio", "sum")
TIMESTAMP = pa.timestamp("ms", tz="UTC")


class ContractError(ValueError):
    """A contract or an event breaks the rules; the message names the field (and the file, if any)."""


@dataclass(frozen=True)
class Feature:
    """A raw model input sent by the machine: numeric with a valid range, or categorical with fixed values."""

    name: str
    kind: Literal["numeric", "categorical"]
    unit: str | None = None
    min: float | None = None
    max: float | None = None
    allowed: tuple[str, ...] | None = None
    nullable: bool = False
    max_null_rate: float = 0.0
    description: str = field(default="", compare=False)


@dataclass(frozen=True)
class Derived:
    """A model input computed from numeric inputs by one safe operation, times an optional scale."""

    name: str
    op: Literal["difference", "product", "ratio", "sum"]
    inputs: tuple[str, ...]
    scale: float = 1.0
    unit: str | None = None
    description: str = field(default="", compare=False)


@dataclass(frozen=True)
class Label:
    """Where the truth arrives: its topic, the field joining it to an event, the 0/1 field, its time."""

    topic: str
    join_key: str
    field: str
    observed_at: str
    expected_delay_minutes: float
    max_delay_minutes: float


@dataclass(frozen=True)
class Limits:
    """Bounds on raw events; a larger message is rejected as oversized before it is parsed."""

    max_event_bytes: int = 8192


@dataclass(frozen=True)
class Contract:
    """One event stream's contract: identity fields, features, derived features, passthrough, label."""

    name: str
    event_id: str
    entity_key: str
    event_time: str
    features: tuple[Feature, ...]
    label: Label
    derived: tuple[Derived, ...] = ()
    passthrough: tuple[str, ...] = ()
    limits: Limits = Limits()
    description: str = field(default="", compare=False)
    source: str = field(default="", compare=False)

    @property
    def raw_columns(self) -> list[str]:
        """Raw feature names, in contract order."""
        return [f.name for f in self.features]

    @property
    def derived_columns(self) -> list[str]:
        return [d.name for d in self.derived]

    @property
    def model_columns(self) -> list[str]:
        """The model's ordered input columns: raw features, then derived ones."""
        return self.raw_columns + self.derived_columns

    @property
    def fields(self) -> list[str]:
        """Every field of a telemetry event, in wire order: identity, event time, features, passthrough."""
        return [self.event_id, self.entity_key, self.event_time, *self.raw_columns, *self.passthrough]

    @property
    def numeric_features(self) -> list[Feature]:
        return [f for f in self.features if f.kind == NUMERIC]

    @property
    def categorical_features(self) -> list[Feature]:
        return [f for f in self.features if f.kind == CATEGORICAL]

    def feature(self, name: str) -> Feature:
        """The raw feature called `name`; ContractError if there is none."""
        for feat in self.features:
            if feat.name == name:
                return feat
        raise ContractError(f"features.{name}: no such feature in contract {self.name!r}")

    def categories(self, name: str) -> tuple[str, ...]:
        """The fixed categories of a categorical feature, in contract order (its codes are positions)."""
        feat = self.feature(name)
        if feat.kind != CATEGORICAL or feat.allowed is None:
            raise ContractError(f"features.{name}: is {feat.kind}, not categorical")
        return feat.allowed

    def arrow_schema(self) -> pa.Schema:
        """Arrow schema of one parsed telemetry row: ids as strings, event time in ms UTC, features typed."""
        cols = [
            pa.field(self.event_id, pa.string(), nullable=False),
            pa.field(self.entity_key, pa.string(), nullable=False),
            pa.field(self.event_time, TIMESTAMP, nullable=False),
        ]
        for feat in self.features:
            typ = pa.float64() if feat.kind == NUMERIC else pa.string()
            cols.append(pa.field(feat.name, typ, nullable=feat.nullable))
        cols += [pa.field(name, pa.string()) for name in self.passthrough]
        return pa.schema(cols, metadata={"contract": self.name, "schema_hash": self.schema_hash()})

    def label_arrow_schema(self) -> pa.Schema:
        """Arrow schema of one parsed outcome: join key, entity, the 0/1 label and when it was observed."""
        label = self.label
        cols = [pa.field(label.join_key, pa.string(), nullable=False)]
        if self.entity_key != label.join_key:
            cols.append(pa.field(self.entity_key, pa.string()))
        cols += [
            pa.field(label.field, pa.int64(), nullable=False),
            pa.field(label.observed_at, TIMESTAMP, nullable=False),
        ]
        return pa.schema(cols, metadata={"contract": self.name, "schema_hash": self.schema_hash()})

    def schema_hash(self) -> str:
        """Stable sha256 of the contract's meaning (descriptions and file location do not count)."""
        data = asdict(self)
        data.pop("description"), data.pop("source")
        for item in data["features"] + data["derived"]:
            item.pop("description")
        text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=list)
        return hashlib.sha256(text.encode()).hexdigest()
