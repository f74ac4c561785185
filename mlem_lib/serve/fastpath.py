"""JSON rows straight into a numpy array, for estimators that never look at column names.

A scikit-learn estimator fitted on a DataFrame spends most of a one-row ``predict``
checking the frame it is given (0.5 ms on a DataFrame against 0.1 ms on an array for an
iris LogisticRegression), and building that one-row DataFrame costs as much again. When
the argument is a table of numeric columns and nothing inside the estimator can tell a
DataFrame from an array (no ``ColumnTransformer``, no ``FunctionTransformer``, no class
from outside scikit-learn/xgboost/lightgbm, no pandas output), the server checks the
JSON rows against the schema (exactly the schema's columns, numbers only) and calls the
estimator with an array of the dtype the DataFrame would have had. Anything else (a
missing column, a string, a null, another layout) goes the regular way, which also
words the error, so answers and errors are the same with and without this path.

Example:
    >>> import numpy as np, pandas as pd
    >>> from sklearn.linear_model import LogisticRegression
    >>> from mlem_lib.data.pandas import DataFrameType
    >>> X = pd.DataFrame({"a": [0.0, 1.0, 2.0, 3.0], "b": [1.0, 0.0, 1.0, 0.0]})
    >>> model = LogisticRegression().fit(X, [0, 0, 1, 1])
    >>> path = ArrayPath.for_model(model, DataFrameType.infer(X))
    >>> path.from_json({"values": [{"b": 1.0, "a": 2}]})
    array([[2., 1.]])
    >>> path.from_json({"values": [{"a": 2.0}]}) is None  # the regular path answers 400
    True
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterator
from itertools import chain
from operator import itemgetter
from typing import Any

# estimators from these packages take arrays as they take frames of numeric columns
_ARRAY_SAFE_PACKAGES = ("sklearn", "xgboost", "lightgbm")
# ...except these, which select, pass or build columns by name
_NAME_USERS = {"ColumnTransformer", "FunctionTransformer", "make_column_selector"}
_NUMBERS = {int, float}
_FEATURE_NAMES_WARNING = "X does not have valid feature names"


def _estimators(obj: Any, seen: set[int] | None = None) -> Iterator[Any]:
    """``obj`` and every estimator inside it (pipeline steps, wrapped estimators...)."""
    seen = set() if seen is None else seen
    if id(obj) in seen:
        return
    seen.add(id(obj))
    yield obj
    get_params = getattr(obj, "get_params", None)
    if get_params is None:
        return
    try:
        params = get_params(deep=False)
    except Exception:  # an estimator that cannot list its parameters: treat it as opaque
        yield None
        return
    for value in params.values():
        for item in value if isinstance(value, list | tuple) else [value]:
            # pipeline steps and FeatureUnion members come as (name, estimator) pairs
            candidates = item if isinstance(item, tuple) else (item,)
            for candidate in candidates:
                if hasattr(candidate, "get_params") or callable(
                        getattr(candidate, "predict", None)):
                    yield from _estimators(candidate, seen)


def uses_column_names(model: Any) -> bool:
    """Whether an estimator, or anything inside it, may depend on being given a DataFrame.

    Example:
        >>> from sklearn.pipeline import make_pipeline
        >>> from sklearn.preprocessing import StandardScaler, FunctionTransformer
        >>> from sklearn.linear_model import LogisticRegression
        >>> uses_column_names(make_pipeline(StandardScaler(), LogisticRegression()))
        False
        >>> uses_column_names(make_pipeline(FunctionTransformer(), LogisticRegression()))
        True
    """
    for est in _estimators(model):
        if est is None:
            return True
        cls = type(est)
        if cls.__name__ in _NAME_USERS or cls.__module__.split(".")[0] not in \
                _ARRAY_SAFE_PACKAGES:
            return True
        output = getattr(est, "_sklearn_output_config", None) or {}
        if any(v not in (None, "default") for v in output.values()):
            return True  # set_output(transform="pandas"): results follow the input frame
    return False


def _array_safe_estimator(model: Any, columns: list[str]) -> bool:
    if "sklearn" not in sys.modules:  # an estimator's class would have imported it
        return False
    from sklearn.base import BaseEstimator

    if not isinstance(model, BaseEstimator) or uses_column_names(model):
        return False
    names = getattr(model, "feature_names_in_", None)
    return names is None or [str(n) for n in names] == columns


class ArrayPath:
    """Turns JSON rows of a numeric table into the array the estimator is called with."""

    def __init__(self, columns: list[str], dtype: Any, column_dtypes: list[Any] | None = None
                 ) -> None:
        import numpy as np

        self.columns = columns
        # one column gives a bare value, not a 1-tuple: wrap it so chain() sees rows
        getter = itemgetter(*columns)
        self._getter = getter if len(columns) > 1 else (lambda row: (getter(row),))
        self.dtype = dtype
        self.column_dtypes = list(column_dtypes) if column_dtypes else [dtype] * len(columns)
        self.integers = dtype.kind in "iu"
        # columns narrower than the array's dtype (an int64 or a float32 column in a float64
        # table) are checked one by one: the cast would hide a fraction or an overflow
        self._narrow: list[tuple[int, bool, float, float]] = []
        for i, col in enumerate(column_dtypes or []):
            if col == dtype:
                continue
            if col.kind in "iu":
                info = np.iinfo(col)
                self._narrow.append((i, True, info.min, info.max))
            elif col.kind == "f" and col.itemsize < dtype.itemsize:
                top = float(np.finfo(col).max)
                self._narrow.append((i, False, -top, top))

    @classmethod
    def for_model(cls, model: Any, arg_type: Any) -> ArrayPath | None:
        """The fast path for a model and its argument's data type, or None when it would
        change what the model sees."""
        import numpy as np

        if getattr(arg_type, "index_cols", None):  # a table schema has columns, no index
            return None
        columns = [str(c) for c in getattr(arg_type, "columns", None) or []]
        dtypes = list(getattr(arg_type, "dtypes", None) or [])
        if not columns or len(dtypes) != len(columns) or len(set(columns)) != len(columns):
            return None
        try:
            kinds = [np.dtype(d) for d in dtypes]
        except TypeError:  # category, string, datetime with a zone...
            return None
        if any(k.kind not in "iuf" for k in kinds):
            return None
        takes_arrays = getattr(model, "takes_arrays", None)  # a model that says so itself
        if callable(takes_arrays):
            if not takes_arrays(arg_type):
                return None
        elif not _array_safe_estimator(model, columns):
            return None
        # the dtype DataFrame.to_numpy() gives the same columns
        dtype = kinds[0] if len(set(kinds)) == 1 else np.result_type(*kinds)
        warnings.filterwarnings("ignore", message=_FEATURE_NAMES_WARNING, category=UserWarning)
        return cls(columns, dtype, kinds)

    def from_json(self, payload: Any) -> Any:
        """The rows as an array, or None when they are not plainly valid numeric rows."""
        import numpy as np

        if isinstance(payload, dict):
            if len(payload) == 1 and "values" in payload:
                payload = payload["values"]
            elif payload.keys() == {"columns", "data"}:
                return self._from_split(payload["columns"], payload["data"])
            else:
                return None
        if not isinstance(payload, list) or not payload:
            return None
        # C-speed checks and gathering: every row a dict with exactly the schema's columns
        if set(map(type, payload)) != {dict} or set(map(len, payload)) != {len(self.columns)}:
            return None
        try:
            values = list(map(self._getter, payload))
        except KeyError:
            return None
        return self._array(list(chain.from_iterable(values)), len(payload), np)

    def from_matrix(self, payload: Any, values: Any) -> Any:
        """The split layout whose rows were read as one array
        (:func:`~mlem_lib.data.media.loads_json_matrix`) as the estimator's array, or None
        when its columns are not the schema's in order or a value does not fit the dtype.

        Example:
            >>> import numpy as np
            >>> from mlem_lib.data import media
            >>> path = ArrayPath(["a", "b"], np.dtype("float32"))
            >>> rest, arr = media.loads_json_matrix(
            ...     b'{"columns": ["a", "b"], "data": [[1, 2.5]]}', "float64")
            >>> path.from_matrix(rest, arr)
            array([[1. , 2.5]], dtype=float32)
        """
        import numpy as np

        from mlem_lib.data import media

        if media.split_columns(payload) != self.columns or values.shape[1] != len(
                self.columns):
            return None
        if values.dtype == self.dtype:
            return values
        if self.integers:
            if values.dtype.kind not in "iu":
                return None
            info = np.iinfo(self.dtype)
            if values.min() < info.min or values.max() > info.max:
                return None
        elif values.dtype.kind != "f":
            return None
        return values.astype(self.dtype)

    def from_frame(self, frame: Any) -> Any:
        """A validated table as the array the estimator would make of it (else unchanged)."""
        columns = getattr(frame, "columns", None)
        if columns is None or list(columns) != self.columns:
            return frame
        return frame.to_numpy()

    def from_parquet(self, body: bytes) -> Any:
        """A Parquet body as the estimator's array, read with pyarrow without building a
        DataFrame; None when a column's name, order, type or a null differs from the schema
        (the regular path then reads it and names what is wrong).

        Example:
            >>> import io, numpy as np, pandas as pd
            >>> buf = io.BytesIO()
            >>> pd.DataFrame({"a": [1.0, 2.0], "b": [3.0, 4.0]}).to_parquet(buf)
            >>> ArrayPath(["a", "b"], np.dtype("float64"),
            ...           [np.dtype("float64")] * 2).from_parquet(buf.getvalue())
            array([[1., 3.],
                   [2., 4.]])
        """
        import numpy as np

        from mlem_lib.data import media
        from mlem_lib.errors import HTTPProblem, SchemaError

        try:
            table = media.read_parquet_table(body)
        except (HTTPProblem, SchemaError, ImportError):  # the regular path words it
            return None
        if table.column_names != self.columns or table.num_rows == 0:
            return None
        columns = []
        for column, dtype in zip(table.columns, self.column_dtypes, strict=True):
            # exactly the schema's type, no nulls: what validation then to_numpy() would give
            if column.null_count or column.type.to_pandas_dtype() != dtype:
                return None
            columns.append(column.to_numpy())
        return np.column_stack(columns).astype(self.dtype, copy=False)

    def _from_split(self, columns: Any, data: Any) -> Any:
        import numpy as np

        if columns != self.columns or not isinstance(data, list) or not data:
            return None
        if set(map(type, data)) != {list} or set(map(len, data)) != {len(self.columns)}:
            return None
        return self._array(list(chain.from_iterable(data)), len(data), np)

    def _array(self, flat: list[Any], rows: int, np: Any) -> Any:
        types = set(map(type, flat))
        if not types <= _NUMBERS or (self.integers and float in types):
            return None
        width = len(self.columns)
        for i, integers, low, high in self._narrow:
            values = flat[i::width]
            if integers and float in set(map(type, values)):
                return None
            if not low <= min(values) or not max(values) <= high:
                return None  # the regular path names the column and the value
        try:
            return np.array(flat, dtype=self.dtype).reshape(rows, len(self.columns))
        except (OverflowError, ValueError):  # an integer beyond the column's range
            return None
