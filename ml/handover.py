"""What every hand-over between tasks shares: a value that crosses a task (XCom) or an Asset event as
JSON is read back by its dataclass's `from_dict`, which refuses a dict lacking a key it cannot do
without, naming the key and the step that writes it, instead of failing later on a missing value.

    require(data, ("run_id", "tags"), "the retrain summary", "train_candidate")
"""

from __future__ import annotations


class HandoverError(ValueError):
    """A hand-over dict lacks a key its reader needs; the message names the keys and who writes them."""


def require(data: object, keys: tuple[str, ...], what: str, writer: str) -> dict:
    """`data` itself when it is a dict holding every key in `keys`; else a HandoverError that names the
    missing keys and the step whose value it should be."""
    if not isinstance(data, dict):
        raise HandoverError(f"{what} must be a JSON object as {writer} returns it; got {type(data).__name__}")
    missing = [k for k in keys if k not in data]
    if missing:
        raise HandoverError(f"{what} lacks {', '.join(repr(k) for k in missing)}: pass the value {writer} "
                            f"returns (it writes every key), or run {writer} again to get one")
    return data
