"""The data contract: what training data looked like, kept as versioned JSON.

* :mod:`.schema`: the models (column specs, reference statistics, the contract) and JSON;
* :mod:`.learn`: :func:`learn_contract`, a contract learned from a training table;
* :mod:`.validate`: :func:`validate`, a table checked against a contract (pandas);
* :mod:`.rules`: what a value of each type is (true/false tokens, numbers, ISO dates) and
  the violation messages, shared by every path that reads values against a contract.
"""

from mlwright.data.contract.learn import N_BINS, QUANTILE_PROBS, TOP_VALUES, learn_contract
from mlwright.data.contract.schema import (
    FORMAT,
    VERSION,
    ColumnSpec,
    ColumnStats,
    Contract,
    ContractMeta,
    DatetimeStats,
    FrequencyStats,
    LogicalType,
    NumericStats,
    Policy,
    Scalar,
    Severity,
    TargetSpec,
    TextStats,
)
from mlwright.data.contract.validate import ValidationResult, Violation, validate

__all__ = [
    "FORMAT",
    "N_BINS",
    "QUANTILE_PROBS",
    "TOP_VALUES",
    "VERSION",
    "ColumnSpec",
    "ColumnStats",
    "Contract",
    "ContractMeta",
    "DatetimeStats",
    "FrequencyStats",
    "LogicalType",
    "NumericStats",
    "Policy",
    "Scalar",
    "Severity",
    "TargetSpec",
    "TextStats",
    "ValidationResult",
    "Violation",
    "learn_contract",
    "validate",
]
