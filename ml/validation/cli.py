"""continuum-expectations: (re)generate a contract's Great Expectations suite as JSON.

    continuum-expectations --contract machine_telemetry --min-rows 1000 --max-rows 1000000
    continuum-expectations --contract tests/contracts/wind_turbine.yaml --out /tmp/wind_turbine.json

Run it after every contract change and commit the result: validation refuses a suite built for
another version of the contract, and a unit test fails until the committed suite is regenerated.
"""

from __future__ import annotations

import argparse
import sys

from ml.contract import ContractError, load_contract
from ml.validation.suite import SuiteError, build_suite, suite_path, write_suite


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="continuum-expectations", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contract", required=True, help="a packaged contract name or a contract YAML path")
    parser.add_argument("--out", help="output file (default: expectations/<contract name>.json in the repository)")
    parser.add_argument("--min-rows", type=int, help="expected volume band: fewest rows per hour (a warning below)")
    parser.add_argument("--max-rows", type=int, help="expected volume band: most rows per hour (a warning above)")
    args = parser.parse_args(argv)
    if (args.min_rows is None) != (args.max_rows is None):
        parser.error("give both --min-rows and --max-rows, or neither")
    band = None if args.min_rows is None else (args.min_rows, args.max_rows)
    try:
        contract = load_contract(args.contract)
        suite = build_suite(contract, band)
    except (ContractError, SuiteError) as exc:
        print(f"continuum-expectations: {exc}", file=sys.stderr)
        return 2
    path = write_suite(suite, args.out or suite_path(contract.name))
    print(f"{path}: {len(suite['expectations'])} expectations for contract {contract.name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
