"""Writing and reading data objects (``object_type: data``) in their artifact format."""

from __future__ import annotations

import io
import json
from typing import IO, Any

from mlem_lib.data.base import DataType


def format_for(obj: Any) -> str:
    """The artifact format a data object is saved in."""
    module = type(obj).__module__.split(".")[0]
    if module == "pandas":
        return "parquet"
    if module == "numpy" and hasattr(obj, "ndim") and obj.ndim > 0:
        return "npy"
    return "json"


def write(obj: Any, data_type: DataType, fmt: str, f: IO[bytes]) -> None:
    if fmt == "parquet":
        import pandas as pd

        frame = obj.to_frame() if isinstance(obj, pd.Series) else obj
        buf = io.BytesIO()  # pyarrow wants a real file object, not our hashing wrapper
        frame.to_parquet(buf)
        f.write(buf.getvalue())
    elif fmt == "npy":
        import numpy as np

        buf = io.BytesIO()
        np.save(buf, obj, allow_pickle=False)
        f.write(buf.getvalue())
    else:
        f.write(json.dumps(data_type.to_json(obj)).encode())


def read(body: bytes, data_type: DataType, fmt: str) -> Any:
    """Turn an artifact's bytes back into the object (validated against its schema)."""
    if fmt == "parquet":
        import pandas as pd

        frame = pd.read_parquet(io.BytesIO(body))
        if data_type.type == "series":
            return data_type.validate_value(frame.iloc[:, 0])
        return data_type.validate_value(frame)
    if fmt in ("npy", "npz"):
        import numpy as np

        loaded = np.load(io.BytesIO(body), allow_pickle=False)
        if hasattr(loaded, "files"):  # npz as MLEM writes it
            loaded = loaded[loaded.files[0]]
        return data_type.validate_value(loaded)
    if fmt == "csv":
        import pandas as pd

        frame = pd.read_csv(io.BytesIO(body))
        unnamed = [c for c in frame.columns if str(c).startswith("Unnamed: ")]
        if unnamed:
            frame = frame.drop(columns=unnamed)
        if data_type.type == "series":
            return data_type.validate_value(frame.iloc[:, 0])
        return data_type.validate_value(frame)
    return data_type.from_json(json.loads(body))
