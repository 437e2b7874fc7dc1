"""Event contracts: the one place that says what an event, its features and its label look like.

    contract = load_contract(settings.contract)
    valid, rejects = check_records(contract, decoded_frame)
    X = model_frame(contract, valid)

Everything downstream reads field names, types, ranges, derived features and the label from here.
"""

from ml.contract.frame import derive, model_frame, model_matrix
from ml.contract.loader import CONTRACTS_DIR, load_contract, parse_contract
from ml.contract.model import Contract, ContractError, Derived, Feature, Label, Limits
from ml.contract.records import check_event, check_records, decode_event, invalid_rows

__all__ = [
    "CONTRACTS_DIR",
    "Contract",
    "ContractError",
    "Derived",
    "Feature",
    "Label",
    "Limits",
    "check_event",
    "check_records",
    "decode_event",
    "derive",
    "invalid_rows",
    "load_contract",
    "model_frame",
    "model_matrix",
    "parse_contract",
]
