"""Read a contract from YAML and check it, so a mistake fails at load time naming the field and the file.

`load_contract("machine_telemetry")` reads the packaged `ml/contracts/machine_telemetry.yaml`; any
other argument is a path. Unknown keys are errors too: a typo such as `maxx` must not pass silently.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import yaml

from ml.contract.model import (
    CATEGORICAL,
    DERIVED_OPS,
    NUMERIC,
    Contract,
    ContractError,
    Derived,
    Feature,
    Label,
    Limits,
)

CONTRACTS_DIR = Path(__file__).resolve().parent.parent / "contracts"
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_BARE = re.compile(r"^[A-Za-z0-9_\-]+$")
_TOP = {"name", "event_id", "entity_key", "event_time", "features", "label"}
_TOP_OPT = {"description", "derived", "passthrough", "limits"}
_FEATURE_OPT = {"unit", "min", "max", "allowed", "nullable", "max_null_rate", "description"}
_LABEL = {"topic", "join_key", "field", "observed_at", "expected_delay_minutes", "max_delay_minutes"}


def load_contract(name_or_path: str) -> Contract:
    """Load a packaged contract by bare name, or a contract file by path."""
    text = str(name_or_path)
    path = CONTRACTS_DIR / f"{text}.yaml" if _BARE.match(text) else Path(text)
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in CONTRACTS_DIR.glob("*.yaml")))
        raise ContractError(f"contract {text!r}: no file {path} (packaged contracts: {known}; or give a path)")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ContractError(f"contract {path}: not valid YAML: {exc}") from None
    return parse_contract(data, source=str(path))


def parse_contract(data: Any, source: str = "<data>") -> Contract:
    """Check a contract given as plain data (as read from YAML) and build the Contract."""
    r = _Reader(source)
    top = r.mapping(data, "", _TOP, _TOP_OPT)
    features = tuple(r.feature(item, i) for i, item in enumerate(r.sequence(top["features"], "features")))
    if not features:
        r.fail("features", "must declare at least one feature")
    derived = tuple(r.derived(item, i) for i, item in enumerate(r.sequence(top.get("derived", []), "derived")))
    names = r.sequence(top.get("passthrough", []), "passthrough")
    passthrough = tuple(r.name(v, f"passthrough[{i}]") for i, v in enumerate(names))
    contract = Contract(
        name=r.name(top["name"], "name"),
        event_id=r.name(top["event_id"], "event_id"),
        entity_key=r.name(top["entity_key"], "entity_key"),
        event_time=r.name(top["event_time"], "event_time"),
        features=features,
        label=r.label(top["label"]),
        derived=derived,
        passthrough=passthrough,
        limits=r.limits(top.get("limits", {})),
        description=str(top.get("description", "") or "").strip(),
        source=source,
    )
    _check_references(r, contract)
    return contract


def _check_references(r: _Reader, c: Contract) -> None:
    """Names are unique, derived inputs are numeric and declared earlier, the label joins on a field."""
    seen: dict[str, str] = {}
    named = [("event_id", c.event_id), ("entity_key", c.entity_key), ("event_time", c.event_time)]
    named += [(f"features.{f.name}", f.name) for f in c.features] + [(f"derived.{d.name}", d.name) for d in c.derived]
    named += [(f"passthrough.{p}", p) for p in c.passthrough]
    for path, name in named:
        if name in seen:
            r.fail(path, f"name {name!r} is already used by {seen[name]}")
        seen[name] = path
    numeric = {f.name for f in c.features if f.kind == NUMERIC}
    for d in c.derived:
        for name in d.inputs:
            if name not in numeric:
                r.fail(f"derived.{d.name}.inputs", f"{name!r} is not a numeric feature or an earlier derived feature")
        numeric.add(d.name)
    if c.label.join_key not in (c.event_id, c.entity_key, *c.passthrough):
        r.fail("label.join_key", f"{c.label.join_key!r} is not a field of the event")


class _Reader:
    """Typed getters that know the path they read, so every error names its field and file."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, path: str, message: str) -> None:
        raise ContractError(f"{path or '<top>'}: {message} (in {self.source})")

    def mapping(self, value: Any, path: str, required: set[str], optional: set[str] = frozenset()) -> dict:
        if not isinstance(value, dict):
            self.fail(path, "must be a mapping")
        for key in value:
            if key not in required | optional:
                self.fail(_join(path, str(key)), f"unknown key (known: {', '.join(sorted(required | optional))})")
        for key in sorted(required - set(value)):
            self.fail(_join(path, key), "is required")
        return value

    def sequence(self, value: Any, path: str) -> list:
        if not isinstance(value, list):
            self.fail(path, "must be a list")
        return value

    def name(self, value: Any, path: str) -> str:
        if not isinstance(value, str) or not _NAME.match(value):
            self.fail(path, f"must be a name of letters, digits and _ (got {value!r})")
        return value

    def number(self, value: Any, path: str, positive: bool = False) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            self.fail(path, f"must be a number (got {value!r})")
        if positive and value <= 0:
            self.fail(path, f"must be > 0 (got {value!r})")
        return float(value)

    def feature(self, item: Any, i: int) -> Feature:
        path = f"features[{i}]"
        if isinstance(item, dict) and isinstance(item.get("name"), str):
            path = f"features.{item['name']}"
        item = self.mapping(item, path, {"name", "kind"}, _FEATURE_OPT)
        name, kind = self.name(item["name"], f"{path}.name"), item["kind"]
        if kind not in (NUMERIC, CATEGORICAL):
            self.fail(f"{path}.kind", f"must be {NUMERIC} or {CATEGORICAL} (got {kind!r})")
        lo = self.number(item["min"], f"{path}.min") if item.get("min") is not None else None
        hi = self.number(item["max"], f"{path}.max") if item.get("max") is not None else None
        allowed = None
        if kind == NUMERIC:
            if "allowed" in item:
                self.fail(f"{path}.allowed", "only categorical features have allowed values")
            if lo is not None and hi is not None and lo >= hi:
                self.fail(f"{path}.min", f"must be below max ({lo:g} >= {hi:g})")
        else:
            for key in ("min", "max", "unit"):
                if key in item:
                    self.fail(f"{path}.{key}", "only numeric features have a range and a unit")
            values = self.sequence(item.get("allowed"), f"{path}.allowed")
            if not values or not all(isinstance(v, str) and v for v in values) or len(set(values)) != len(values):
                self.fail(f"{path}.allowed", "must be a list of distinct, non-empty strings")
            allowed = tuple(values)
        nullable = item.get("nullable", False)
        if not isinstance(nullable, bool):
            self.fail(f"{path}.nullable", f"must be true or false (got {nullable!r})")
        rate = self.number(item.get("max_null_rate", 0.0), f"{path}.max_null_rate")
        if not 0.0 <= rate <= 1.0 or (rate > 0 and not nullable):
            self.fail(f"{path}.max_null_rate", "must be within [0, 1], and 0 unless the feature is nullable")
        unit = item.get("unit")
        return Feature(name, kind, None if unit is None else str(unit), lo, hi, allowed, nullable, rate,
                       str(item.get("description", "") or ""))

    def derived(self, item: Any, i: int) -> Derived:
        named = isinstance(item, dict) and isinstance(item.get("name"), str)
        path = f"derived.{item['name']}" if named else f"derived[{i}]"
        item = self.mapping(item, path, {"name", "op", "inputs"}, {"scale", "unit", "description"})
        if item["op"] not in DERIVED_OPS:
            self.fail(f"{path}.op", f"must be one of {', '.join(DERIVED_OPS)} (got {item['op']!r})")
        names = self.sequence(item["inputs"], f"{path}.inputs")
        inputs = tuple(self.name(v, f"{path}.inputs[{j}]") for j, v in enumerate(names))
        want_two = item["op"] in ("difference", "ratio")
        if (want_two and len(inputs) != 2) or len(inputs) < 2:
            self.fail(f"{path}.inputs", f"{item['op']} needs {'exactly' if want_two else 'at least'} 2 inputs")
        scale = self.number(item.get("scale", 1.0), f"{path}.scale")
        unit = item.get("unit")
        return Derived(self.name(item["name"], f"{path}.name"), item["op"], inputs, scale,
                       None if unit is None else str(unit), str(item.get("description", "") or ""))

    def label(self, item: Any) -> Label:
        item = self.mapping(item, "label", {"topic", "join_key", "field"}, _LABEL)
        topic = item["topic"]
        if not isinstance(topic, str) or not re.match(r"^[A-Za-z0-9._\-]+$", topic):
            self.fail("label.topic", f"must be a Kafka topic name (got {topic!r})")
        expected = self.number(item.get("expected_delay_minutes", 30), "label.expected_delay_minutes", positive=True)
        longest = self.number(item.get("max_delay_minutes", 360), "label.max_delay_minutes", positive=True)
        if longest < expected:
            self.fail("label.max_delay_minutes", f"must be >= expected_delay_minutes ({longest:g} < {expected:g})")
        return Label(topic, self.name(item["join_key"], "label.join_key"), self.name(item["field"], "label.field"),
                     self.name(item.get("observed_at", "observed_at"), "label.observed_at"), expected, longest)

    def limits(self, item: Any) -> Limits:
        item = self.mapping(item, "limits", set(), {"max_event_bytes"})
        size = self.number(item.get("max_event_bytes", Limits.max_event_bytes), "limits.max_event_bytes", positive=True)
        return Limits(int(size))


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key
