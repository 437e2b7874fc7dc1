"""Promotion gates and the approval policy: pure functions from a version's recorded evidence to a verdict.

The evidence is what `retrain_model` tagged on the version: its holdout metrics, the champion's
metrics on the same holdout (and which version that champion was), the validation status of its data,
its scoring latency and size. Each gate gives a verdict with the numbers behind it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

APPROVED, PENDING, REJECTED = "approved", "pending", "rejected"


@dataclass(frozen=True)
class Gate:
    """One gate's verdict and the numbers behind it, in words a person on call can read."""

    name: str
    passed: bool
    detail: str

    def to_dict(self) -> dict:
        return asdict(self)


def _num(tags: dict, key: str) -> float | None:
    try:
        return float(tags[key])
    except (KeyError, TypeError, ValueError):
        return None


def check_gates(tags: dict, champion_version: str | None, settings) -> list[Gate]:
    """Verdicts of the metric, validation, latency and size gates for a version with these tags, given
    the version that is champion now (None before the first promotion)."""
    metric, margin, floor = settings.promotion_metric, settings.promotion_margin, settings.promotion_floor
    value, gates = _num(tags, metric), []
    compared = tags.get("champion_version") or None
    if value is None:
        gates.append(Gate("metric", False, f"the version has no {metric} tag"))
    elif champion_version is None:
        ok = value >= floor
        gates.append(Gate("metric", ok,
                          f"no champion: {metric} {value:.4f} {'>=' if ok else '<'} floor {floor:.4f}"))
    elif compared != champion_version:
        gates.append(Gate("metric", False, f"the holdout comparison was made against version {compared}, but "
                                           f"the champion is now {champion_version}; retrain to compare on a "
                                           "shared holdout"))
    else:
        base = _num(tags, f"champion_{metric}")
        if base is None:
            gates.append(Gate("metric", False, f"the champion's {metric} on the shared holdout was not recorded"))
        else:
            ok = value >= base + margin
            gates.append(Gate("metric", ok, f"{metric} {value:.4f} vs champion v{champion_version} {base:.4f}: "
                                            f"{value - base:+.4f} {'>=' if ok else '<'} margin {margin:.4f}"))
    status = tags.get("validation", "")
    gates.append(Gate("validation", status == "valid", f"training data validation status: {status or 'unknown'}"))
    latency, limit = _num(tags, "latency_ms_per_1k"), settings.promotion_max_latency_ms
    shown = f"{latency:.1f}" if latency is not None else "unknown"
    gates.append(Gate("latency", latency is not None and latency <= limit,
                      f"scoring {shown} ms per 1,000 rows, limit {limit:g}"))
    size, most = _num(tags, "model_bytes"), settings.promotion_max_model_bytes
    gates.append(Gate("size", size is not None and size <= most,
                      f"model {int(size) if size is not None else -1:,} bytes, limit {most:,}"))
    return gates


def decide(gates: list[Gate], policy: str) -> str:
    """'rejected' when a gate fails; otherwise 'approved' under the auto policy, 'pending' (a person
    decides) under the manual one."""
    if not all(g.passed for g in gates):
        return REJECTED
    return APPROVED if policy == "auto" else PENDING


def failed(gates: list[Gate]) -> list[str]:
    """Names of the gates that failed, for the refusal message."""
    return [g.name for g in gates if not g.passed]
