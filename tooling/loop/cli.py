"""continuum-loop: play the whole loop on the running local stack and print what it did.

    continuum-loop reset                 # empty topics, lake and registered model (embedded stack only)
    continuum-loop run --profile demo    # about a day of history, drift, retrain, promotion, swap
    continuum-loop run --profile short   # the same, fewer hours (the end-to-end test)
    continuum-loop alive                 # after a run: waits for the first live hour's scheduled offload
                                         # and monitor (up to --timeout-minutes) and checks they went green
    continuum-loop run --replay FILE --contract C.yaml (--time-column T | --rows-per-hour N)
                       [--label-column L] [--label-delay-minutes M] [--entity-column E] [--names a,b,c]
                       [--from T] [--to T] [--history-hours 24] [--change-at T|row:N]
                                         # a recorded file through the same loop (`make replay`)

Exit codes: 0 the loop closed (alive: every check passed), 1 a step failed (named, with where to look), 2 a bad argument.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from ml.settings import SettingsError, load_settings
from ml.settings.login import use_stack_login
from tooling.loop.replay_args import add_replay_arguments, replay_play
from tooling.local_dir import LOCAL

PASSWORDS = LOCAL / "airflow" / "simple_auth_manager_passwords.json.generated"


def _password(args) -> tuple[str, str]:
    if args.airflow_password:
        return args.airflow_user, args.airflow_password
    if PASSWORDS.exists():
        users = json.loads(PASSWORDS.read_text())
        if args.airflow_user in users:
            return args.airflow_user, users[args.airflow_user]
    raise SystemExit(f"continuum-loop: no password for Airflow user {args.airflow_user!r}: set "
                     f"CONTINUUM_AIRFLOW_PASSWORD or --airflow-password (the local stack writes it to {PASSWORDS})")


def main(argv: list[str] | None = None) -> int:
    from tooling.loop.timeline import PROFILES

    parser = argparse.ArgumentParser(prog="continuum-loop", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["run", "reset", "alive"])
    parser.add_argument("--profile", default="demo", help=f"how much of the loop to play: {', '.join(PROFILES)}")
    parser.add_argument("--airflow-url", default=os.environ.get("CONTINUUM_AIRFLOW_URL", "http://127.0.0.1:8080"))
    parser.add_argument("--airflow-user", default=os.environ.get("CONTINUUM_AIRFLOW_USER", "admin"))
    parser.add_argument("--airflow-password", default=os.environ.get("CONTINUUM_AIRFLOW_PASSWORD"))
    parser.add_argument("--serving-url", default=f"http://127.0.0.1:{os.environ.get('CONTINUUM_SERVING_PORT', '8000')}")
    parser.add_argument("--summary", type=Path, default=LOCAL / "loop" / "summary.json",
                        help="where to write the summary as JSON (alive: the run's summary, whose time is its end)")
    parser.add_argument("--timeout-minutes", type=float, default=90.0,
                        help="alive: how long to wait for the first live hour's runs (default 90)")
    add_replay_arguments(parser)
    args = parser.parse_args(argv)
    if args.profile not in PROFILES:
        parser.error(f"--profile {args.profile!r} is unknown; choose one of {', '.join(PROFILES)}")
    try:
        settings = load_settings()
    except SettingsError as exc:
        print(f"continuum-loop: {exc}", file=sys.stderr)
        return 2
    use_stack_login()  # MLflow's login: the variables if set, else the local stack's pipeline account
    from tooling.loop.reset import wipe_local_stack
    from tooling.loop.run import Loop, write_json
    from tooling.loop.timeline import LoopError

    if args.command == "reset":
        wipe_local_stack(settings)
        print("[loop] topics, lake and registered model reset")
        return 0
    from ml.report import build_loop_report
    from tooling.loop.airflow_api import AirflowApi, AirflowError

    if args.command == "alive":
        return _alive(args, settings)
    from tooling.loop.summary import hour_table, summarize, table

    try:
        api = AirflowApi(args.airflow_url, *_password(args))
        profile, play = PROFILES[args.profile], None
        if args.replay:
            profile, play = replay_play(args, settings, api)
        loop = Loop(settings, api, profile, args.serving_url.rstrip("/"), play)
        print(f"[loop] {loop.play.name}: event time {loop.timeline.describe()}, history to "
              f"{loop.timeline.onset:%Y-%m-%d %H:%M}Z", flush=True)
        outcome = loop.run()
        report = loop.step("write the loop report", build_loop_report, loop.lake, settings.model_name,
                           {"airflow": api.url, "mlflow": settings.mlflow_tracking_uri}, None, None, loop.contract)
        summary = summarize(loop, outcome, report)
    except (LoopError, AirflowError) as exc:
        print(f"[loop] FAILED: {exc}\n[loop] logs: {LOCAL / 'logs'}/ (airflow.log, serving.log, mlflow.log, kafka.log)",
              file=sys.stderr)
        return 1
    write_json(args.summary, summary)
    print("\nContinuum loop summary\n" + table(summary) + "\n\nHours played\n" + hour_table(summary))
    print(f"\nSummary as JSON: {args.summary}")
    return 0


def _alive(args, settings) -> int:
    from ml.lake import Lake
    from tooling.loop.airflow_api import AirflowApi, AirflowError
    from tooling.loop.alive import check_alive, describe, loop_end_of

    if not args.summary.is_file():
        print(f"continuum-loop alive: no loop summary at {args.summary}: run `make demo` first", file=sys.stderr)
        return 2
    if args.timeout_minutes <= 0:
        print(f"continuum-loop alive: --timeout-minutes {args.timeout_minutes:g} must be above 0", file=sys.stderr)
        return 2
    try:
        found = check_alive(AirflowApi(args.airflow_url, *_password(args)), Lake.from_settings(settings.lake),
                            Path(settings.alert_log_path or LOCAL / "logs" / "alerts.jsonl"),
                            loop_end_of(args.summary), args.timeout_minutes * 60)
    except AirflowError as exc:
        print(f"[alive] FAILED: {exc}", file=sys.stderr)
        return 1
    print(describe(found))
    return 1 if found.problems else 0


if __name__ == "__main__":
    sys.exit(main())
