"""Small made-up tables for tests: text, integer and float columns with a learnable target."""

from __future__ import annotations

import numpy as np
import pandas as pd


def customers(n: int = 300, seed: int = 0) -> tuple[pd.DataFrame, pd.Series]:
    """``(frame, churn)``: ``city`` and ``plan`` (text), ``age`` (int), ``income`` (float)."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"city": rng.choice(["paris", "rome", "oslo"], n),
                          "plan": rng.choice(["free", "pro"], n),
                          "age": rng.integers(18, 80, n),
                          "income": rng.normal(50.0, 10.0, n)})
    churn = ((frame.income > 50) ^ (frame.city == "rome")).astype(int)
    return frame, churn
