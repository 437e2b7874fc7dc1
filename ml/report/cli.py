"""continuum-report: write the loop report (one HTML page) to the lake and print where it is.

    continuum-report
    continuum-report --lake s3://continuum-lake --out-key reports/last-2-days.html --days 2
    continuum-report --airflow-url http://127.0.0.1:8080 --mlflow-url http://127.0.0.1:5000

The lake, the model and the MLflow URL default to the process settings (CONTINUUM_* variables).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime, timedelta, timezone
from urllib.parse import urlparse

from botocore.exceptions import BotoCoreError, ClientError

from ml.contract import ContractError, load_contract
from ml.lake import Lake, LakeError
from ml.lake.layout import loop_report_key
from ml.report.loop import build_loop_report
from ml.settings import SettingsError, load_settings


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="continuum-report", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lake", help="lake root: a local folder or s3://bucket/prefix (default: CONTINUUM_LAKE_URI)")
    parser.add_argument("--out-key", default=loop_report_key(),
                        help=f"lake key of the page (default: {loop_report_key()})")
    parser.add_argument("--model", help="registered model name (default: CONTINUUM_MODEL_NAME)")
    parser.add_argument("--contract",
                        help="event contract (a name under ml/contracts or a YAML path) whose labels the live AUC "
                             "per version is realized with (default: CONTINUUM_CONTRACT)")
    parser.add_argument("--days", type=float, help="show only the last N days (default: everything in the lake)")
    parser.add_argument("--airflow-url", help="the Airflow UI, linked from the page's header")
    parser.add_argument("--mlflow-url",
                        help="the MLflow UI, linked from the header (default: CONTINUUM_MLFLOW_TRACKING_URI)")
    args = parser.parse_args(argv)
    if args.lake is not None:
        parsed = urlparse(args.lake.strip())
        if not args.lake.strip() or parsed.scheme not in ("", "file", "s3") or (parsed.scheme == "s3" and not parsed.netloc):
            parser.error(f"--lake: expected a local folder or s3://bucket/prefix, got {args.lake!r}")
    key = args.out_key.strip().strip("/")
    if not key.endswith(".html") or ".." in key.split("/") or "//" in key:
        parser.error(f"--out-key: expected a lake key ending in .html, e.g. {loop_report_key()}; got {args.out_key!r}")
    args.out_key = key
    if args.model is not None and not args.model.strip():
        parser.error("--model: give a registered model name, e.g. machine-failure")
    if args.days is not None and not args.days > 0:
        parser.error(f"--days: expected a number of days > 0, got {args.days:g}")
    for flag, url in (("--airflow-url", args.airflow_url), ("--mlflow-url", args.mlflow_url)):
        if url is not None and (urlparse(url).scheme not in ("http", "https") or not urlparse(url).netloc):
            parser.error(f"{flag}: expected an http(s) URL such as http://127.0.0.1:8080, got {url!r}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"continuum-report: {exc}", file=sys.stderr)
        return 2
    if args.lake is None:
        lake = Lake.from_settings(settings.lake)
    else:
        lake = Lake(args.lake, settings.s3_endpoint_url)
    if not lake.is_s3 and not lake.root.is_dir():
        print(f"continuum-report: --lake: no such folder {lake.root}", file=sys.stderr)
        return 2
    try:
        contract = load_contract(args.contract or settings.contract)
    except (ContractError, OSError) as exc:
        print(f"continuum-report: --contract: {exc}", file=sys.stderr)
        return 2
    links = {"airflow": args.airflow_url, "mlflow": args.mlflow_url or settings.mlflow_tracking_uri}
    since = datetime.now(timezone.utc) - timedelta(days=args.days) if args.days else None
    try:
        result = build_loop_report(lake, args.model or settings.model_name, links, args.out_key, since, contract)
    except (LakeError, OSError, BotoCoreError, ClientError) as exc:  # e.g. no such bucket, refused credentials
        print(f"continuum-report: {lake.uri}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
