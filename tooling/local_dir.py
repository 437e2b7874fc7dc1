"""The local stack's folder, as the stack itself finds it: `CONTINUUM_LOCAL_DIR`, else `.local` in the
checkout (`make test` points it at `.local/test`, the suite's own stack)."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCAL = Path(os.environ.get("CONTINUUM_LOCAL_DIR", ROOT / ".local")).resolve()
