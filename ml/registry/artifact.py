"""The one way Continuum loads a registered model: as data, never as code.

MLflow's own loaders honour what an artifact's `MLmodel` file asks for (a `model_class` to import, a
`code/` folder put first on `sys.path`), so a crafted artifact could run code in whatever loads it.
Here the `MLmodel` file is read with `yaml.safe_load` and checked: the artifact must be an XGBoost
Booster saved in XGBoost's own UBJ or JSON format, with no code of its own. Only then is its data file
hashed (SHA-256, the digest a verdict is bound to), handed to an optional check, and parsed by
`xgboost.Booster().load_model`. Nothing from the artifact is ever imported.
"""

from __future__ import annotations

import hashlib
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import yaml
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from ml.registry.versions import DEFAULT_THRESHOLD, RegistryError, unreachable

BOOSTER_CLASS = "xgboost.core.Booster"
FORMATS = {"ubj": ".ubj", "json": ".json"}  # XGBoost's own formats; never a pickle


class ArtifactRefused(RegistryError):
    """A registered artifact is not a plain XGBoost Booster in UBJ or JSON; the message says what is wrong."""


@dataclass(frozen=True)
class FetchedModel:
    """A loaded version: its booster, the SHA-256 of its data file, its size and the version's tags."""

    name: str
    version: str
    run_id: str
    booster: object  # xgboost.Booster
    digest: str
    size: int
    tags: dict


def model_file(folder: Path) -> Path:
    """The data file of a downloaded MLflow XGBoost model folder, after checking its `MLmodel` as data;
    ArtifactRefused naming the offending entry otherwise."""
    spec_path = folder / "MLmodel"
    if not spec_path.is_file():
        raise ArtifactRefused(f"no MLmodel file in {folder.name}/: not an MLflow model")
    try:
        spec = yaml.safe_load(spec_path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ArtifactRefused(f"MLmodel is not valid YAML: {str(exc)[:200]}") from None
    flavors = spec.get("flavors") if isinstance(spec, dict) else None
    if not isinstance(flavors, dict) or not isinstance(flavors.get("xgboost"), dict):
        raise ArtifactRefused(f"MLmodel has no xgboost flavor (flavors: {sorted(flavors or {})})")
    for flavor, entry in flavors.items():
        if isinstance(entry, dict) and entry.get("code"):
            raise ArtifactRefused(f"MLmodel flavor {flavor!r} ships code ({entry['code']!r}); a model is data only")
    if (folder / "code").exists():
        raise ArtifactRefused("the artifact has a code/ folder; a model is data only")
    xgb = flavors["xgboost"]
    if xgb.get("model_class", BOOSTER_CLASS) != BOOSTER_CLASS:
        raise ArtifactRefused(f"MLmodel model_class is {xgb.get('model_class')!r}; only {BOOSTER_CLASS} is loaded")
    fmt = xgb.get("model_format")
    if fmt not in FORMATS:
        raise ArtifactRefused(f"MLmodel model_format is {fmt!r}; only {' or '.join(FORMATS)} is loaded")
    data = xgb.get("data")
    if not isinstance(data, str) or Path(data).name != data or not data.endswith(FORMATS[fmt]):
        raise ArtifactRefused(f"MLmodel data is {data!r}; expected a file name ending {FORMATS[fmt]} beside MLmodel")
    path = folder / data
    if path.is_symlink() or not path.is_file():
        raise ArtifactRefused(f"the model file {data!r} named by MLmodel is missing or not a regular file")
    return path


def load_booster(path: Path):
    """Parse a checked UBJ/JSON file into a fresh `xgboost.Booster`."""
    import xgboost

    booster = xgboost.Booster()
    try:
        booster.load_model(str(path))
    except xgboost.core.XGBoostError as exc:
        first = str(exc).splitlines()[0][:200]
        raise ArtifactRefused(f"{path.name} is not a readable XGBoost model: {first}") from None
    return booster


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@contextmanager
def downloaded(tracking_uri: str, name: str, version: str | int) -> Iterator[tuple[object, Path, str]]:
    """A registered version downloaded to a temporary folder, its MLmodel checked: (model version, path of
    its data file, the artifact URI it came from); the folder is removed on exit."""
    import mlflow.artifacts

    client = MlflowClient(tracking_uri)
    try:
        mv = client.get_model_version(name, str(version))
    except MlflowException as exc:
        if unreachable(exc):  # no answer is not "no such version": the caller may ask again
            raise
        raise RegistryError(f"model {name!r} has no version {version!r}: {exc.message}") from None
    with tempfile.TemporaryDirectory(prefix="continuum-model-") as tmp:
        # resolved through this client: a `models:/` URI would go to the process-wide registry instead
        source = client.get_model_version_download_uri(name, mv.version)
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=source, dst_path=tmp,
                                                         tracking_uri=tracking_uri))
        yield mv, model_file(local), source


def fetch_model(tracking_uri: str, name: str, version: str | int,
                check: Callable[[str, object, str], None] | None = None) -> FetchedModel:
    """Download a registered version, check its MLmodel, hash its data file, run `check(digest, model
    version, artifact uri)` (which raises to refuse) before any byte is parsed, then load the booster."""
    with downloaded(tracking_uri, name, version) as (mv, path, source):
        digest = sha256(path)
        if check is not None:
            check(digest, mv, source)
        booster = load_booster(path)
        size = path.stat().st_size
    return FetchedModel(name, str(mv.version), mv.run_id or "", booster, digest, size, dict(mv.tags))


def load_version(tracking_uri: str, name: str, version: str | int):
    """(xgboost.Booster, serving threshold, version tags) of one registered version, through the one safe
    loader (`fetch_model`). It does not ask whether the version may serve: callers
    that serve or compare a model use `ml.registry.trust.load_trusted`."""
    model = fetch_model(tracking_uri, name, version)
    return model.booster, float(model.tags.get("threshold", DEFAULT_THRESHOLD)), model.tags
