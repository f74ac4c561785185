"""PyTorch tensors (``torch``): dtype and shape, with a free batch axis.

The schema is MLEM's ``torch`` data type: ``shape`` (``null`` for the batch axis) and
``dtype`` (``float32``, ``int64``...). Lists, tuples and dicts of tensors are the builtin
containers holding tensor schemas (``tuple[torch[...], torch[...]]``).

A tensor travels

* as JSON: nested lists (``{"data": [[0.1, 0.2, ...]]}``);
* as ``.npy`` (``application/x-npy``), the fast path for big batches and what
  :class:`~mlem_lib.client.HTTPClient` sends for them;
* as CSV or Parquet rows when it has at most two dimensions;
* as images, when the shape is that of a batch of images (``(n, C, H, W)`` with C of 1, 3
  or 4, ``(n, H, W, C)`` or ``(n, H, W)``): a PNG/JPEG body, an upload of one or more
  files, and ``mlem apply MODEL 'images/*.png'``; each image is converted to the schema's
  channels, must have its height and width, and float tensors get pixels scaled to [0, 1]
  (torchvision's ``ToTensor``).

A wrong shape or dtype, or an image of the wrong size, is refused with a 400 naming what
was expected.

Example:
    >>> import torch
    >>> t = TorchTensorType.infer(torch.zeros(4, 3)).batch_free()
    >>> t.describe()
    'torch[float32, (n, 3)]'
    >>> t.from_json([[1, 2, 3]])
    tensor([[1., 2., 3.]])
    >>> t.validate_value(torch.zeros(2, 4))
    Traceback (most recent call last):
    ...
    mlem_lib.errors.SchemaError: array: expected shape (n, 3), got (2, 4) (axis 1 must be 3)
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mlem_lib.data import media
from mlem_lib.data.base import DataType

if TYPE_CHECKING:
    from mlem_lib.data.numpy import NumpyNdarrayType
    from mlem_lib.formats import Source

#: torch dtypes without a numpy twin travel as this numpy dtype
_NUMPY_STAND_IN = {"bfloat16": "float32"}


def _torch() -> Any:
    from mlem_lib.extras import require

    return require("torch", extra="torch", feature="torch tensors")


def dtype_name(dtype: Any) -> str:
    """``torch.float32`` -> ``float32``.

    Example:
        >>> import torch
        >>> dtype_name(torch.int64)
        'int64'
    """
    return str(dtype).removeprefix("torch.")


def to_numpy(value: Any) -> Any:
    """A tensor's values as a numpy array (on the CPU; bfloat16 as float32).

    Example:
        >>> import torch
        >>> to_numpy(torch.ones(2, dtype=torch.bfloat16)).dtype
        dtype('float32')
    """
    if type(value).__module__.split(".")[0] != "torch":
        import numpy as np

        return np.asarray(value)
    tensor = value.detach()
    if tensor.device.type != "cpu":
        tensor = tensor.cpu()
    if dtype_name(tensor.dtype) in _NUMPY_STAND_IN:
        tensor = tensor.to(getattr(_torch(), _NUMPY_STAND_IN[dtype_name(tensor.dtype)]))
    return tensor.numpy()


def _unwrap(chunk: Any) -> Any:
    from mlem_lib.data.filesource import unwrap

    return unwrap(chunk)


class TorchTensorType(DataType):
    """A ``torch.Tensor``; ``shape`` uses ``None`` for free axes (the batch axis)."""

    type: str = "torch"
    shape: list[int | None]
    dtype: str

    @classmethod
    def infer(cls, obj: Any) -> DataType | None:
        """A tensor: its shape and dtype (not its device: values are read to the CPU)."""
        torch = sys.modules.get("torch")
        if torch is None or not isinstance(obj, torch.Tensor):
            return None
        return cls(shape=list(obj.shape), dtype=dtype_name(obj.dtype))

    # --- checking: through the ndarray schema of the same shape -------------------
    def _array_type(self) -> NumpyNdarrayType:
        from mlem_lib.data.numpy import NumpyNdarrayType

        return NumpyNdarrayType(shape=self.shape,
                                dtype=_NUMPY_STAND_IN.get(self.dtype, self.dtype))

    def _tensor(self, arr: Any) -> Any:
        import numpy as np

        torch = _torch()
        tensor = torch.from_numpy(np.ascontiguousarray(arr))
        if self.dtype in _NUMPY_STAND_IN:
            tensor = tensor.to(getattr(torch, self.dtype))
        return tensor

    def validate_value(self, obj: Any, field: str | None = None) -> Any:
        obj = _unwrap(obj)
        torch = _torch()
        if isinstance(obj, torch.Tensor):
            if dtype_name(obj.dtype) == self.dtype:
                self._array_type().check_shape(obj, field)
                return obj
            return self._tensor(self._array_type().validate_value(to_numpy(obj), field))
        if hasattr(obj, "to_numpy") or type(obj).__module__ == "numpy":
            return self._tensor(self._array_type().validate_value(obj, field))
        return self.from_json(obj, field)

    def from_json(self, payload: Any, field: str | None = None) -> Any:
        return self._tensor(self._array_type().from_json(payload, field))

    def to_json(self, obj: Any) -> Any:
        return to_numpy(obj).tolist()

    def example(self) -> Any:
        torch = _torch()
        return torch.zeros([1 if s is None else s for s in self.shape],
                           dtype=getattr(torch, self.dtype))

    def batch_free(self) -> DataType:
        if not self.shape:
            return self
        return self.model_copy(update={"shape": [None, *self.shape[1:]]})

    def describe(self) -> str:
        shape = "(" + ", ".join("n" if s is None else str(s) for s in self.shape) + ")"
        return f"torch[{self.dtype}, {shape}]"

    def json_schema(self) -> dict[str, Any]:
        return self._array_type().json_schema()

    def requirement_modules(self) -> list[str]:
        """torch and numpy; Pillow too for image-shaped tensors, which take image files."""
        from mlem_lib.extras import available

        images = self._image_layout() is not None and available("PIL")
        return ["torch", "numpy", *(["PIL"] if images else [])]

    # --- formats --------------------------------------------------------------------
    def _image_layout(self) -> Any:
        from mlem_lib.data.image import image_layout

        return image_layout(self.shape) if self.shape and self.shape[0] is None else None

    def media_types(self) -> tuple[str, ...]:
        """JSON and ``.npy``; CSV and Parquet up to two dimensions; images for image shapes.

        Example:
            >>> TorchTensorType(shape=[None, 1, 28, 28], dtype="float32").media_types()
            ('application/json', 'application/x-npy', 'image/png', 'image/jpeg', 'multipart/form-data')
        """  # noqa: E501
        kinds: tuple[str, ...] = (media.JSON, media.NPY)
        if len(self.shape) <= 2:
            kinds += (media.CSV, media.PARQUET)
        if self._image_layout() is not None:
            from mlem_lib.data.image import IMAGE_MEDIA_TYPES
            from mlem_lib.data.uploads import MULTIPART

            kinds += (*IMAGE_MEDIA_TYPES, MULTIPART)
        return kinds

    def binary_media_type(self, value: Any = None) -> str | None:
        return media.NPY

    def body_schema(self, media_type: str) -> dict[str, Any]:
        from mlem_lib.data.uploads import MULTIPART, upload_schema

        if media_type == MULTIPART:
            return upload_schema(many=True)
        return super().body_schema(media_type)

    def images(self, images: list[Any], names: list[str] | None = None) -> Any:
        """A batch tensor of images (``PIL.Image`` values), converted to this schema.

        Raises:
            SchemaError: the schema does not take images, or an image has the wrong size.
        """
        import numpy as np

        from mlem_lib.data.image import image_array

        names = names or [f"image {i}" if len(images) > 1 else "body"
                          for i in range(len(images))]
        rows = [image_array(img, self.shape, _NUMPY_STAND_IN.get(self.dtype, self.dtype),
                            name) for img, name in zip(images, names, strict=True)]
        return self.validate_value(np.stack(rows))

    def decode(self, body: bytes, media_type: str,
               params: Mapping[str, str] | None = None) -> Any:
        """Tensors from JSON lists, ``.npy``, CSV/Parquet rows, or images."""
        if media_type == media.NPY:
            return self.validate_value(media.read_npy(body))
        if media_type in (media.CSV, media.PARQUET) and media_type in self.media_types():
            return self._tensor(self._array_type().decode(body, media_type, params))
        if media_type != media.JSON and media_type in self.media_types():
            from mlem_lib.data.image import decode_images

            return self.images(decode_images(body, media_type, params))
        return super().decode(body, media_type, params)

    def encode(self, value: Any, media_type: str) -> bytes:
        if media_type == media.JSON:
            return media.dumps_json(to_numpy(value), self.to_json)
        if media_type in (media.NPY, media.CSV, media.PARQUET) \
                and media_type in self.media_types():
            return super().encode(to_numpy(value), media_type)
        return super().encode(value, media_type)

    # --- batches: rows along the first axis -------------------------------------------
    def rows(self, value: Any) -> int | None:
        value = _unwrap(value)
        shape = getattr(value, "shape", None)
        if shape is not None:
            return int(shape[0]) if len(shape) else None
        return super().rows(value)

    def is_empty(self, value: Any) -> bool:
        return self.rows(value) == 0

    def from_chunk(self, chunk: Any) -> Any:
        chunk = _unwrap(chunk)
        if isinstance(chunk, list) and chunk and isinstance(chunk[0], dict):
            return super().from_chunk(chunk)
        if isinstance(chunk, list):
            return self.from_json(chunk)
        return self.validate_value(chunk)

    def concat(self, parts: list[Any]) -> Any:
        """The batches joined along the first axis.

        Example:
            >>> import torch
            >>> t = TorchTensorType(shape=[None, 2], dtype="float32")
            >>> t.concat([torch.ones(1, 2), torch.zeros(1, 2)]).shape, t.concat([]).shape
            (torch.Size([2, 2]), torch.Size([0, 2]))
        """
        torch = _torch()
        if not parts:
            inner = [0 if s is None else s for s in self.shape[1:]]
            return torch.empty((0, *inner), dtype=getattr(torch, self.dtype))
        return torch.cat([p if isinstance(p, torch.Tensor) else self.validate_value(p)
                          for p in parts])

    def open_source(self, url: str) -> Source | None:
        """Image files for image-shaped tensors (``images/*.png``, a folder): stacked in
        batches; any other file goes to the generic readers (``.npy``, CSV, Parquet)."""
        import os

        from mlem_lib.data.image import is_image_path, open_image

        if self._image_layout() is None:
            return None
        if not (is_image_path(url) or (os.path.isdir(url) and not url.endswith(".mlem"))):
            return None
        import numpy as np

        from mlem_lib.data.filesource import FilesSource
        from mlem_lib.data.image import image_array

        dtype = _NUMPY_STAND_IN.get(self.dtype, self.dtype)

        def read(body: bytes, name: str) -> Any:
            return image_array(open_image(body, name), self.shape, dtype, name)

        return FilesSource(url, read, lambda rows: self.validate_value(np.stack(rows)))
