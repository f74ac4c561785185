"""Data schemas: one module per kind of data, found through :mod:`mlem_lib.data.base`."""

from mlem_lib.data.base import AnyDataType, DataType, infer_data_type, parse_data_type

__all__ = ["AnyDataType", "DataType", "infer_data_type", "parse_data_type"]
