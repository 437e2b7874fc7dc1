"""The settings a stack needs to replay a file under its own contract: `make replay` runs this first.

    python -m tooling.loop.prepare CONTRACT [MODEL]

writes the contract's Great Expectations suite (derived from the contract, as for the packaged ones)
to `.local/replay/expectations/<name>.json` and prints the environment the DAGs, the sidecar and the
loop then share, one `NAME=value` per line: the contract's absolute path, the model name (default: the
contract's name) and the suite's folder. Exit code 2 names a bad contract and the fix.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from ml.contract import ContractError, load_contract
from ml.validation.suite import build_suite, suite_path
from tooling.local_dir import LOCAL

SUITES = LOCAL / "replay" / "expectations"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not 1 <= len(args) <= 2:
        print("usage: python -m tooling.loop.prepare CONTRACT [MODEL]", file=sys.stderr)
        return 2
    given = Path(args[0])
    try:
        contract = load_contract(str(given.resolve()) if given.exists() else args[0])
    except ContractError as exc:
        print(f"CONTRACT={args[0]}: {exc}", file=sys.stderr)
        return 2
    path = suite_path(contract.name, SUITES)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(build_suite(contract), indent=2) + "\n", encoding="utf-8")
    print(f"CONTINUUM_CONTRACT={given.resolve() if given.exists() else args[0]}")
    print(f"CONTINUUM_MODEL_NAME={args[1] if len(args) > 1 and args[1] else contract.name}")
    print(f"CONTINUUM_EXPECTATIONS_DIR={SUITES}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
