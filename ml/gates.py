"""Promotion gates: pure functions from a version's evidence to a verdict.

The evidence (`GateInputs`) is what the training run logged and cannot be edited afterwards: its holdout
metrics, the champion's metrics on the same holdout (and which version that champion was), the validation
status of its data, its scoring latency and the digest of the model it trained; plus the size and digest
of the registered artifact itself (`ml.registry.trust.gate_inputs` builds it). Version tags are never
read here. Each gate gives a verdict with the numbers behind it; the approval policy turns the verdicts
into the version's first approval state (`ml.registry.approval.initial_state`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from ml.settings import GateSettings


@dataclass(frozen=True)
class Gate:
    """One gate's verdict and the numbers behind it, in words a person on call can read."""

    name: str
    passed: bool
    detail: str
    inputs: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class GateInputs:
    """What the gates judge: `metrics` and `champion_version`, `validation`, `trained_digest` as the training
    run logged them; `model_bytes` and `digest` measured on the registered artifact's data file."""

    metrics: dict[str, float]
    champion_version: str | None
    validation: str
    trained_digest: str | None
    model_bytes: int | None
    digest: str

    def to_dict(self) -> dict:
        return asdict(self)


def check_gates(inputs: GateInputs, champion_version: str | None, gates: GateSettings) -> list[Gate]:
    """Verdicts of the metric, validation, latency, size and artifact gates for a version with this
    evidence, given the version that is champion now (None before the first promotion), against the
    limits in `gates` (the gates section of the settings)."""
    metric, margin, floor = gates.metric, gates.margin, gates.floor
    value, compared, verdicts = inputs.metrics.get(metric), inputs.champion_version, []
    seen = {metric: value, "champion_version": compared, "current_champion": champion_version}
    if value is None:
        verdicts.append(Gate("metric", False, f"the training run logged no {metric} metric", seen))
    elif champion_version is None:
        ok = value >= floor
        verdicts.append(Gate("metric", ok, f"no champion: {metric} {value:.4f} {'>=' if ok else '<'} floor {floor:.4f}",
                             {**seen, "floor": floor}))
    elif compared != champion_version:
        verdicts.append(Gate("metric", False, f"the holdout comparison was made against version {compared}, but "
                                              f"the champion is now {champion_version}; retrain to compare on a "
                                              "shared holdout", seen))
    else:
        base = inputs.metrics.get(f"champion_{metric}")
        seen.update({f"champion_{metric}": base, "margin": margin})
        if base is None:
            verdicts.append(Gate("metric", False, f"the champion's {metric} on the shared holdout was not logged",
                                 seen))
        else:
            ok = value >= base + margin
            verdicts.append(Gate("metric", ok, f"{metric} {value:.4f} vs champion v{champion_version} {base:.4f}: "
                                               f"{value - base:+.4f} {'>=' if ok else '<'} margin {margin:.4f}", seen))
    status = inputs.validation
    verdicts.append(Gate("validation", status == "valid", f"training data validation status: {status or 'unknown'}",
                         {"validation": status}))
    latency, limit = inputs.metrics.get("latency_ms_per_1k"), gates.max_latency_ms
    shown = f"{latency:.1f}" if latency is not None else "unknown"
    verdicts.append(Gate("latency", latency is not None and latency <= limit,
                         f"scoring {shown} ms per 1,000 rows, limit {limit:g}", {"latency_ms_per_1k": latency,
                                                                                 "limit": limit}))
    size, most = inputs.model_bytes, gates.max_model_bytes
    verdicts.append(Gate("size", size is not None and size <= most,
                         f"model {size if size is not None else -1:,} bytes, limit {most:,}",
                         {"model_bytes": size, "limit": most}))
    same = inputs.trained_digest == inputs.digest
    verdicts.append(Gate("artifact", same, "the registered model file is the one the run trained" if same else
                         f"the registered model file (sha256 {inputs.digest[:12]}) is not the one the run trained "
                         f"(sha256 {(inputs.trained_digest or 'not logged')[:12]})",
                         {"digest": inputs.digest, "trained_digest": inputs.trained_digest}))
    return verdicts


def failed(gates: list[Gate]) -> list[str]:
    """Names of the gates that failed, for the refusal message."""
    return [g.name for g in gates if not g.passed]


def bake_gate(mark: dict | None) -> Gate:
    """The bake gate: a model file rolled back after its bake window (`mark`, under any version number)
    is refused for good; a model without such a mark passes."""
    if not mark:
        return Gate("bake", True, "never rolled back after a bake window")
    return Gate("bake", False, f"rolled back from champion at {mark.get('at')} by {mark.get('actor')}: "
                               f"{mark.get('reason')}; this model file is never promoted again, retrain instead",
                {"rolled_back": {k: mark.get(k) for k in ("version", "digest", "at", "actor", "audit_id")}})
