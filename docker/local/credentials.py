"""The embedded stack's generated secrets: each is made on the first start that needs it, kept in one file
under `.local/secrets/` (the folder 0700, each file 0600, readable by its owner only), and shown only by
`stack.py status` (`make status`). Nothing secret goes into a process's argv, a log or the repository:
services read them from files or their environment, never from their command line.

There is no default password: a secret that is missing is generated, one that exists is kept, so a
restart does not lock a user out.
"""

from __future__ import annotations

import os
import secrets as _random
from pathlib import Path

from processes import LOCAL

SECRETS = LOCAL / "secrets"


def secret_path(name: str) -> Path:
    return SECRETS / name


def write_private(path: Path, text: str) -> None:
    """Write `text` to `path` with mode 0600 from its creation (never readable by others, not even for an
    instant), replacing what was there."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def secret(name: str) -> str:
    """The stack's secret `name`: read from its file, or generated (32 random URL-safe characters) and
    stored on first use."""
    SECRETS.mkdir(parents=True, exist_ok=True)
    SECRETS.chmod(0o700)
    path = secret_path(name)
    if path.exists():
        path.chmod(0o600)
        value = path.read_text().strip()
        if value:
            return value
    value = _random.token_urlsafe(24)
    write_private(path, value)
    return value


def adopt(name: str, old: Path) -> None:
    """Move a secret an earlier version of the stack kept elsewhere (`old`) to its place, so an existing
    installation keeps its passwords."""
    path = secret_path(name)
    if old.exists() and not path.exists():
        SECRETS.mkdir(parents=True, exist_ok=True)
        SECRETS.chmod(0o700)
        write_private(path, old.read_text().strip())
        old.unlink()


def stored() -> dict[str, str]:
    """Every secret the stack has generated so far, by name (for `status`)."""
    if not SECRETS.is_dir():
        return {}
    return {p.name: p.read_text().strip() for p in sorted(SECRETS.iterdir()) if p.is_file() and not p.name.startswith(".")}
