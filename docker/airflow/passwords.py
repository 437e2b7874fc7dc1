"""Write Airflow's login passwords file for docker-compose, from the environment, before Airflow starts.

Airflow's simple auth manager generates the password of a configured user missing from its passwords
file and prints it to its log. With every user of AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS already in
the file (AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE), it generates and prints nothing. Each
user's password comes from AIRFLOW_<USER>_PASSWORD (compose takes it from `.env`); none has a default.
The file is written with mode 0600. Standard library only: compose's airflow-init runs it as

    python /opt/continuum/passwords.py && airflow db migrate
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path


def users(configured: str) -> list[str]:
    """The user names of a `user:role[,user:role...]` setting."""
    return [item.split(":")[0].strip() for item in configured.split(",") if item.strip()]


def write(path: Path, passwords: dict[str, str]) -> None:
    """Write the file readable by its owner only, from its creation on, replacing what was there."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    with os.fdopen(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as f:
        f.write(json.dumps(passwords) + "\n")
    os.replace(tmp, path)


def main(environ=os.environ) -> int:
    names = users(environ.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", ""))
    target = environ.get("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE", "")
    variables = {name: f"AIRFLOW_{name.upper().replace('-', '_')}_PASSWORD" for name in names}
    missing = [var for var in variables.values() if not environ.get(var)]
    if not names or not target or missing:
        needed = missing or ["AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS",
                             "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE"]
        print(f"passwords: set {', '.join(needed)} (no Airflow user has a default password)", file=sys.stderr)
        return 2
    write(Path(target), {name: environ[var] for name, var in variables.items()})
    print(f"passwords: {target} holds the password of {', '.join(names)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
