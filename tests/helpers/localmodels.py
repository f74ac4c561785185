"""A local (not installed) module with model code, to test shipping local source."""

from __future__ import annotations

import numpy as np


class Scaler:
    """A plain class exposing predict: scales the row sums."""

    def __init__(self, factor: float) -> None:
        self.factor = factor

    def predict(self, df):
        return np.asarray(df.sum(axis=1)) * self.factor


def add_one(values):
    return [v + 1 for v in values]


class Unpicklable:
    """A model whose pickling fails: a save of it must leave the previous version."""

    def predict(self, xs):
        return xs

    def __reduce__(self):
        raise TypeError("cannot pickle this")


class Unrestorable:
    """Saves fine, but every unpickling raises: a model that no process can load."""

    def __init__(self) -> None:
        self.k = 1

    def predict(self, xs):
        return xs

    def __setstate__(self, state):
        raise RuntimeError("this model cannot be restored")


class LoadRecorder:
    """Appends the PID of every process that unpickles it to ``path``: shows which
    processes hold a loaded copy of the model."""

    def __init__(self, path: str) -> None:
        self.path = path

    def predict(self, xs):
        return [float(x) for x in xs]

    def __setstate__(self, state):
        import os

        self.__dict__.update(state)
        with open(self.path, "a") as f:
            f.write(f"{os.getpid()}\n")
