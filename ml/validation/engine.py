"""Run a suite on one frame with an ephemeral Great Expectations context and render its Data Docs.

Nothing here knows about the lake: a frame, a suite (plain data) and the run's parameters go in; GE's
result (as JSON-able data) and a folder of GE's own Data Docs come out. The context lives in memory
for one call, with analytics and progress bars off, and writes docs only to the folder it is given.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pandas as pd

from ml.validation.suite import CRITICAL, SuiteError

DOCS_SITE = "continuum"


def run_suite(df: pd.DataFrame, suite: dict, parameters: dict[str, Any], docs_dir: Path | None = None,
              run_name: str | None = None) -> dict:
    """Validate `df` against `suite`; returns GE's suite validation result as a dict. With `docs_dir`,
    GE's Data Docs site for this one result is built there too."""
    import great_expectations as gx
    from great_expectations.core.run_identifier import RunIdentifier

    context = _context(docs_dir)
    gx_suite = context.suites.add(_gx_suite(gx, suite))
    batch = context.data_sources.add_pandas("lake").add_dataframe_asset("hour").add_batch_definition_whole_dataframe("all")
    definition = context.validation_definitions.add(gx.ValidationDefinition(name=suite["name"], data=batch, suite=gx_suite))
    result = definition.run(batch_parameters={"dataframe": df}, expectation_parameters=parameters,
                            result_format="SUMMARY", run_id=RunIdentifier(run_name=run_name))
    if docs_dir is not None:
        context.build_data_docs(site_names=[DOCS_SITE])
    return result.to_json_dict()


def _context(docs_dir: Path | None):
    import great_expectations as gx
    from great_expectations.data_context.types.base import (
        DataContextConfig,
        InMemoryStoreBackendDefaults,
        ProgressBarsConfig,
    )

    sites = {}
    if docs_dir is not None:
        sites[DOCS_SITE] = {
            "class_name": "SiteBuilder",
            "store_backend": {"class_name": "TupleFilesystemStoreBackend", "base_directory": str(docs_dir)},
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
        }
    config = DataContextConfig(store_backend_defaults=InMemoryStoreBackendDefaults(), data_docs_sites=sites,
                               analytics_enabled=False, progress_bars=ProgressBarsConfig(globally=False))
    return gx.get_context(project_config=config, mode="ephemeral")


def _gx_suite(gx, suite: dict):
    """GE's suite object; GE only logs an expectation it cannot build and drops it, so refuse instead."""
    built = gx.ExpectationSuite(name=suite["name"], expectations=copy.deepcopy(suite["expectations"]),
                                meta=copy.deepcopy(suite.get("meta") or {}))
    if len(built.expectations) != len(suite["expectations"]):
        known = {e.expectation_type for e in built.expectations}
        bad = sorted({e["type"] for e in suite["expectations"]} - known) or ["(see the log)"]
        raise SuiteError(f"suite {suite['name']!r}: Great Expectations rejected expectations: {', '.join(bad)}")
    return built


def failures(result: dict) -> tuple[list[str], list[str]]:
    """(critical failures, warnings) of a GE result, one line each: expectation, column, what was seen."""
    items = result.get("results", [])
    present = next((set(i["result"].get("observed_value") or []) for i in items
                    if i["expectation_config"]["type"] == "expect_table_columns_to_match_set" and i.get("result")), None)
    critical, warnings = [], []
    for item in items:
        if item.get("success"):
            continue
        config = item.get("expectation_config") or {}
        kwargs = config.get("kwargs") or {}
        missing = present is not None and "column" in kwargs and kwargs["column"] not in present
        line = f"{config.get('type')}({_target(kwargs)}): {'column is missing' if missing else _observed(item)}"
        (critical if (config.get("severity") or CRITICAL) == CRITICAL else warnings).append(line)
    # an expectation checked at two levels (e.g. the row count: critical below 1, a warning below 1,000)
    # is reported once, at its worst level
    failed = {line.split(":", 1)[0] for line in critical}
    return critical, [w for w in warnings if w.split(":", 1)[0] not in failed]


def _target(kwargs: dict) -> str:
    if "column" in kwargs:
        return str(kwargs["column"])
    if "column_list" in kwargs:
        return ", ".join(kwargs["column_list"])
    return "table"


def _observed(item: dict) -> str:
    error = _error(item.get("exception_info") or {})
    if error:
        return "error: " + error
    res = item.get("result") or {}
    mismatched = (res.get("details") or {}).get("mismatched")
    if mismatched:
        return "columns " + ", ".join(f"{k} {sorted(v)}" for k, v in sorted(mismatched.items()) if v)
    if "observed_value" in res:
        return f"observed {res['observed_value']!r}"
    if "unexpected_count" in res:
        sample = res.get("partial_unexpected_list") or []
        return (f"{res['unexpected_count']} of {res.get('element_count')} rows "
                f"({res.get('unexpected_percent') or 0:.3g}%) unexpected, e.g. {sample[:5]!r}")
    return "failed"


def _error(info: dict) -> str | None:
    """The first exception message GE caught: given flat, or keyed by the metric that raised it."""
    for entry in [info, *(v for v in info.values() if isinstance(v, dict))]:
        if entry.get("raised_exception") or entry.get("exception_message"):
            return str(entry.get("exception_message") or "exception").splitlines()[0][:300]
    return None
