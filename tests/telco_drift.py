"""Drift injected into telco_churn rows with an exact, known shape, for the tests that must
find it (the monitor's and the dashboard's)."""

from __future__ import annotations

import pandas as pd


def shifted(frame: pd.DataFrame) -> pd.DataFrame:
    """monthly_charges scaled by 1.3; the shares of two contract values swapped."""
    out = frame.copy()
    out["monthly_charges"] = out["monthly_charges"] * 1.3
    swap = {"Month-to-month": "Two year", "Two year": "Month-to-month"}
    out["contract"] = out["contract"].map(lambda v: swap.get(v, v))
    return out
