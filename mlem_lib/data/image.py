"""Images (``image``): ``PIL.Image`` values, png/jpg files and uploads.

A model whose sample is a ``PIL.Image.Image`` takes one image per call, converted to the
sample's mode (``L``, ``RGB``...). It travels

* as JSON: the base64 of a PNG or JPEG file (``{"data": "iVBORw0..."}``, or a ``data:``
  URL);
* raw: an ``image/png`` or ``image/jpeg`` body (``curl --data-binary @cat.png -H
  'Content-Type: image/png'``);
* as an upload: ``multipart/form-data`` with one file (``curl -F file=@cat.png``).

``mlem apply MODEL 'images/*.png' -o preds.csv`` calls the model once per file and writes
one row per file, with its name. Bytes that no image decoder reads are refused with a 400
that says what was expected.

This module also holds what tensor and array types use to take images
(:func:`open_image`, :func:`image_layout`, :func:`image_array`): a tensor schema shaped like
a batch of images, ``(n, 1, 28, 28)`` say, accepts PNG/JPEG bodies and files decoded to
that shape.

Example:
    >>> from PIL import Image
    >>> t = ImageType.infer(Image.new("L", (28, 28)))
    >>> t.describe()
    'image[L, 28x28]'
    >>> t.from_json(t.to_json(Image.new("RGB", (4, 4)))).mode
    'L'
"""

from __future__ import annotations

import io
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mlem_lib.data import media
from mlem_lib.data.base import DataType
from mlem_lib.data.filesource import WholeFileType
from mlem_lib.errors import HTTPProblem, SchemaError

if TYPE_CHECKING:
    pass

PNG = "image/png"
JPEG = "image/jpeg"
IMAGE_MEDIA_TYPES = (PNG, JPEG)
#: Files ``apply`` reads as images.
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")
_CHANNELS = {"1": 1, "L": 1, "I": 1, "F": 1, "LA": 2, "RGB": 3, "YCbCr": 3, "RGBA": 4,
             "CMYK": 4}
_MODE_OF_CHANNELS = {1: "L", 3: "RGB", 4: "RGBA"}
EXPECTED = "a PNG or JPEG image"


def _pil() -> Any:
    from mlem_lib.extras import require

    return require("PIL.Image", extra="images", feature="reading images")


def _where(field: str | None) -> str:
    return f"'{field}'" if field else "image"


def is_image_path(url: str) -> bool:
    """True for a path, folder-less glob or URL that names image files by extension.

    Example:
        >>> is_image_path("images/*.PNG"), is_image_path("data.csv")
        (True, False)
    """
    return url.split("?", 1)[0].lower().endswith(IMAGE_EXTENSIONS)


def open_image(body: bytes, field: str | None = None) -> Any:
    """Decode an image file's bytes into a loaded ``PIL.Image.Image``.

    Raises:
        SchemaError: empty bytes, or bytes no image decoder reads (the message says what
            was expected).

    Example:
        >>> open_image(blank_image("PNG")).size
        (1, 1)
    """
    image_mod = _pil()
    if not body:
        raise SchemaError(f"{_where(field)}: empty file: expected {EXPECTED}", field=field,
                          expected=EXPECTED, got="empty file")
    try:
        img = image_mod.open(io.BytesIO(body))
        img.load()
    except Exception as exc:  # PIL raises UnidentifiedImageError, OSError, SyntaxError...
        reason = ("not an image file" if type(exc).__name__ == "UnidentifiedImageError"
                  else f"{type(exc).__name__}: {exc}")
        raise SchemaError(f"{_where(field)}: cannot decode the image ({reason}); expected "
                          f"{EXPECTED}", field=field, expected=EXPECTED,
                          got=f"{len(body)} bytes that are not an image") from None
    return img


def save_image(img: Any, fmt: str = "PNG") -> bytes:
    """The bytes of ``img`` as a PNG (or JPEG) file."""
    buf = io.BytesIO()
    if fmt.upper() in ("JPEG", "JPG") and img.mode not in ("L", "RGB", "CMYK"):
        img = img.convert("RGB")
    img.save(buf, format=fmt)
    return buf.getvalue()


def blank_image(fmt: str = "PNG", size: tuple[int, int] = (1, 1), mode: str = "L") -> bytes:
    """A black image file: what examples and smoke requests send.

    Example:
        >>> blank_image()[:4]
        b'\\x89PNG'
    """
    return save_image(_pil().new(mode, size), fmt)


def image_layout(shape: list[int | None]) -> tuple[str, int, int | None, int | None] | None:
    """How a batch of images fits an array schema, or ``None`` when it does not look like one.

    Returns:
        (layout, channels, height, width): ``CHW`` for ``(n, C, H, W)`` with C of 1, 3 or 4
        (PyTorch's order), ``HWC`` for ``(n, H, W, C)``, ``HW`` for ``(n, H, W)`` (grayscale).

    Example:
        >>> image_layout([None, 1, 28, 28]), image_layout([None, 28, 28])
        (('CHW', 1, 28, 28), ('HW', 1, 28, 28))
        >>> image_layout([None, 10]) is None
        True
    """
    dims = shape[1:]
    if len(dims) == 3:
        if dims[0] in (1, 3, 4) and dims[1] != dims[0]:
            return "CHW", int(dims[0]), dims[1], dims[2]
        if dims[2] in (1, 3, 4):
            return "HWC", int(dims[2]), dims[0], dims[1]
        return None
    if len(dims) == 2 and (dims[0] is None or dims[0] > 4) and (dims[1] is None or dims[1] > 4):
        return "HW", 1, dims[0], dims[1]
    return None


def image_array(img: Any, shape: list[int | None], dtype: str,
                field: str | None = None) -> Any:
    """One image as an array of one row of ``shape`` (without the batch axis).

    The image is converted to the schema's channels (L, RGB or RGBA) and must have its
    height and width. Float arrays get values scaled to [0, 1], as torchvision's
    ``ToTensor`` does; integer arrays keep 0-255.

    Raises:
        SchemaError: the size differs from the schema's.
    """
    import numpy as np

    layout = image_layout(shape)
    if layout is None:
        raise SchemaError(f"{_where(field)}: an array of shape {shape} does not take images",
                          field=field, expected=f"shape {shape}", got="an image")
    order, channels, height, width = layout
    mode = _MODE_OF_CHANNELS.get(channels, "L")
    if img.mode != mode:
        img = img.convert(mode)
    if (height is not None and img.height != height) or (width is not None
                                                         and img.width != width):
        want = f"{width or 'any'}x{height or 'any'}"
        raise SchemaError(f"{_where(field)}: expected a {want} image, got {img.width}x"
                          f"{img.height}", field=field, expected=f"a {want} image",
                          got=f"{img.width}x{img.height}")
    arr = np.asarray(img)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if order == "CHW":
        arr = arr.transpose(2, 0, 1)
    elif order == "HW":
        arr = arr[:, :, 0]
    kind = np.dtype(dtype).kind if dtype not in ("bfloat16",) else "f"
    if kind == "f":
        target = "float32" if dtype == "bfloat16" else dtype
        return (arr.astype(target) / 255.0).astype(target)
    return arr.astype(dtype)


def decode_images(body: bytes, media_type: str, params: Mapping[str, str] | None) -> list[Any]:
    """The images of a request body: one for ``image/*`` bodies, each file of an upload.

    Raises:
        SchemaError: a body or file that is not an image.
        HTTPProblem: 400 for an upload without files.
    """
    from mlem_lib.data.uploads import MULTIPART, uploaded_files

    if media_type == MULTIPART:
        files = uploaded_files(body, params, EXPECTED)
        return [open_image(f.data, f.filename or f.name or "file") for f in files]
    return [open_image(body, "body")]


class ImageType(WholeFileType):
    """One ``PIL.Image.Image``, converted to ``mode``.

    Attributes:
        mode: PIL's mode of the sample (``L``, ``RGB``, ``RGBA``...); every image the model
            gets is converted to it.
        size: ``[width, height]`` of the sample (examples use it; other sizes are accepted:
            the model resizes if it needs to).
    """

    type: str = "image"
    mode: str = "RGB"
    size: list[int] | None = None

    @classmethod
    def infer(cls, obj: Any) -> DataType | None:
        """A ``PIL.Image.Image``: its mode and size."""
        image_mod = sys.modules.get("PIL.Image")
        if image_mod is None or not isinstance(obj, image_mod.Image):
            return None
        return cls(mode=obj.mode, size=list(obj.size))

    def _convert(self, img: Any) -> Any:
        return img if img.mode == self.mode else img.convert(self.mode)

    def validate_value(self, obj: Any, field: str | None = None) -> Any:
        image_mod = _pil()
        if isinstance(obj, image_mod.Image):
            return self._convert(obj)
        if isinstance(obj, bytes | bytearray):
            return self._convert(open_image(bytes(obj), field))
        if isinstance(obj, str):
            return self.from_json(obj, field)
        if type(obj).__module__ == "numpy":
            try:
                return self._convert(image_mod.fromarray(obj))
            except (TypeError, ValueError) as exc:
                raise SchemaError(f"{_where(field)}: cannot make an image of an array "
                                  f"{getattr(obj, 'shape', '')} {getattr(obj, 'dtype', '')}: "
                                  f"{exc}", field=field, expected=EXPECTED,
                                  got="array") from None
        raise SchemaError(f"{_where(field)}: expected {EXPECTED}, got {type(obj).__name__}",
                          field=field, expected=EXPECTED, got=type(obj).__name__)

    def from_json(self, payload: Any, field: str | None = None) -> Any:
        from mlem_lib.data.uploads import from_base64

        return self._convert(open_image(from_base64(payload, EXPECTED, field), field))

    def to_json(self, obj: Any) -> Any:
        from mlem_lib.data.uploads import to_base64

        return to_base64(save_image(obj))

    def example(self) -> Any:
        size = tuple(self.size) if self.size else (8, 8)
        return _pil().new(self.mode, size)

    def describe(self) -> str:
        size = f", {self.size[0]}x{self.size[1]}" if self.size else ""
        return f"image[{self.mode}{size}]"

    def json_schema(self) -> dict[str, Any]:
        return {"type": "string", "format": "byte",
                "description": "a PNG or JPEG file, base64-encoded"}

    def requirement_modules(self) -> list[str]:
        return ["PIL"]

    # --- formats: JSON (base64), image bodies, an upload ---------------------------
    def media_types(self) -> tuple[str, ...]:
        from mlem_lib.data.uploads import MULTIPART, OCTET

        return (media.JSON, PNG, JPEG, MULTIPART, OCTET)

    def binary_media_type(self, value: Any = None) -> str | None:
        return PNG

    def body_schema(self, media_type: str) -> dict[str, Any]:
        from mlem_lib.data.uploads import MULTIPART, upload_schema

        if media_type == MULTIPART:
            return upload_schema()
        return super().body_schema(media_type)

    def decode(self, body: bytes, media_type: str,
               params: Mapping[str, str] | None = None) -> Any:
        if media_type == media.JSON:
            return super().decode(body, media_type, params)
        if media_type not in self.media_types():
            return super().decode(body, media_type, params)
        images = decode_images(body, media_type, params)
        if len(images) > 1:
            raise HTTPProblem(400, f"the upload holds {len(images)} images: send one",
                              field="file", expected=f"one file: {EXPECTED}",
                              got=f"{len(images)} files")
        return self._convert(images[0])

    def encode(self, value: Any, media_type: str) -> bytes:
        from mlem_lib.data.uploads import OCTET

        if media_type in (PNG, JPEG, OCTET):
            return save_image(value, "JPEG" if media_type == JPEG else "PNG")
        return super().encode(value, media_type)

    # --- batches: one image per call -------------------------------------------------
    def read_file(self, body: bytes, name: str) -> Any:
        return self._convert(open_image(body, name))
