"""Raw bytes and files (``binary``): audio clips, documents, any blob a model reads itself.

A model whose sample is ``bytes`` (or a file object such as ``io.BytesIO`` or an open
file) takes the whole file as one value. It travels

* as JSON: a base64 string (``{"data": "UklGRi..."}``; a ``data:`` URL works too);
* raw: the body itself, as ``application/octet-stream`` or the media type the sample had
  (``audio/wav`` for a WAV sample: ``curl --data-binary @clip.wav -H 'Content-Type:
  audio/wav'``);
* as an upload: ``multipart/form-data`` with one file (``curl -F file=@clip.wav``), which
  ``/docs`` shows as a file field.

``mlem apply MODEL clip.wav`` and ``mlem apply MODEL 'clips/*.wav' -o out.csv`` call the
model once per file. An empty file is refused with a 400 that says what was expected.

Example:
    >>> t = BinaryType.infer(b"RIFF\\x00\\x00\\x00\\x00WAVEfmt ")
    >>> t.media_type, t.describe()
    ('audio/wav', 'binary[audio/wav]')
    >>> BinaryType.infer(b"any bytes").from_json("aGVsbG8=")
    b'hello'
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from mlem_lib.data import media
from mlem_lib.data.base import DataType
from mlem_lib.data.filesource import WholeFileType
from mlem_lib.data.uploads import (
    MULTIPART,
    OCTET,
    from_base64,
    one_upload,
    sniff,
    to_base64,
    upload_schema,
    where,
)
from mlem_lib.errors import HTTPProblem, SchemaError

if TYPE_CHECKING:
    pass

# a tiny valid file per media type, for the example a smoke test sends
def _silent_wav() -> bytes:
    import wave

    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(b"\0\0" * 1600)
    return buf.getvalue()


def _blank_image(kind: str) -> bytes:
    from mlem_lib.data.image import blank_image

    return blank_image("PNG" if kind == "image/png" else "JPEG")


class BinaryType(WholeFileType):
    """A whole file as ``bytes``, or as a file object when the sample was one.

    Attributes:
        kind: ``bytes`` or ``file`` (the model gets an ``io.BytesIO``).
        media_type: the sample's media type when its content said it (``audio/wav``);
            accepted as a request body besides ``application/octet-stream``.
    """

    type: str = "binary"
    kind: Literal["bytes", "file"] = "bytes"
    media_type: str | None = None

    @classmethod
    def infer(cls, obj: Any) -> DataType | None:
        """``bytes``, ``bytearray`` or a readable binary file object.

        Example:
            >>> BinaryType.infer(io.BytesIO(b"%PDF-1.7")).describe()
            'file[application/pdf]'
            >>> BinaryType.infer("text") is None
            True
        """
        if isinstance(obj, bytes | bytearray | memoryview):
            return cls(kind="bytes", media_type=sniff(bytes(obj[:16])))
        if _is_binary_file(obj):
            head = _peek(obj)
            return cls(kind="file", media_type=sniff(head))
        return None

    def _what(self) -> str:
        return f"{self.media_type} bytes" if self.media_type else "bytes"

    def _wrap(self, body: bytes, field: str | None) -> Any:
        if not body:
            raise SchemaError(f"{where(field)}: empty file: expected {self._what()}",
                              field=field, expected=self._what(), got="empty file")
        self._check_content(body, field)
        return io.BytesIO(body) if self.kind == "file" else body

    def _check_content(self, body: bytes, field: str | None) -> None:
        """Refuse a file whose content is not of the sample's kind: a model saved with a WAV
        sample takes audio (any format its bytes say), one saved with a PNG images."""
        if not self.media_type:
            return
        found = sniff(body[:16])
        family = self.media_type.split("/")[0]
        if found == self.media_type or (found is not None and family in ("audio", "image")
                                        and found.split("/")[0] == family):
            return
        got = found or "bytes of no known file format"
        raise SchemaError(f"{where(field)}: expected {self._what()}, got {got}", field=field,
                          expected=self._what(), got=got)

    def validate_value(self, obj: Any, field: str | None = None) -> Any:
        if isinstance(obj, bytes | bytearray | memoryview):
            return self._wrap(bytes(obj), field)
        if _is_binary_file(obj):
            return self._wrap(obj.read(), field)
        if isinstance(obj, str):
            return self.from_json(obj, field)
        raise SchemaError(f"{where(field)}: expected {self._what()}, got "
                          f"{type(obj).__name__}", field=field, expected=self._what(),
                          got=type(obj).__name__)

    def from_json(self, payload: Any, field: str | None = None) -> Any:
        return self._wrap(from_base64(payload, self._what(), field), field)

    def to_json(self, obj: Any) -> Any:
        return to_base64(_as_bytes(obj))

    def example(self) -> Any:
        if self.media_type in ("audio/wav", "audio/x-wav"):
            body = _silent_wav()
        elif self.media_type in ("image/png", "image/jpeg"):
            body = _blank_image(self.media_type)
        else:
            body = b"\0"
        return io.BytesIO(body) if self.kind == "file" else body

    def describe(self) -> str:
        kind = "file" if self.kind == "file" else "binary"
        return f"{kind}[{self.media_type}]" if self.media_type else kind

    def json_schema(self) -> dict[str, Any]:
        return {"type": "string", "format": "byte",
                "description": f"{self._what()}, base64-encoded"}

    # --- formats: JSON (base64), the raw body, an upload ---------------------------
    def media_types(self) -> tuple[str, ...]:
        extra = (self.media_type,) if self.media_type else ()
        return (media.JSON, OCTET, MULTIPART, *extra)

    def binary_media_type(self, value: Any = None) -> str | None:
        return OCTET

    def body_schema(self, media_type: str) -> dict[str, Any]:
        if media_type == MULTIPART:
            return upload_schema()
        return {"type": "string", "format": "binary"}

    def decode(self, body: bytes, media_type: str,
               params: Mapping[str, str] | None = None) -> Any:
        """A file from the raw body, an upload's file, or JSON base64.

        Example:
            >>> BinaryType().decode(b"\\x00\\x01", OCTET)
            b'\\x00\\x01'
        """
        if media_type == MULTIPART:
            return self._wrap(one_upload(body, params, self._what()), "file")
        if media_type == media.JSON:
            return super().decode(body, media_type, params)
        if media_type in self.media_types():
            return self._wrap(body, "body")
        return super().decode(body, media_type, params)

    def encode(self, value: Any, media_type: str) -> bytes:
        if media_type != media.JSON and media_type in self.media_types() \
                and media_type != MULTIPART:
            return _as_bytes(value)
        return super().encode(value, media_type)

    # --- batches: one file per call --------------------------------------------------
    def read_file(self, body: bytes, name: str) -> Any:
        return self._wrap(body, name)


def _is_binary_file(obj: Any) -> bool:
    if not (callable(getattr(obj, "read", None)) and callable(getattr(obj, "seek", None))):
        return False
    return not isinstance(obj, io.TextIOBase) and "b" in getattr(obj, "mode", "b")


def _peek(f: Any) -> bytes:
    try:
        pos = f.tell()
        head = f.read(16)
        f.seek(pos)
    except (OSError, ValueError):
        return b""
    return bytes(head or b"")


def _as_bytes(obj: Any) -> bytes:
    if isinstance(obj, bytes | bytearray | memoryview):
        return bytes(obj)
    if _is_binary_file(obj):
        pos = obj.tell()
        obj.seek(0)
        body = obj.read()
        obj.seek(pos)
        return bytes(body)
    raise HTTPProblem(406, f"the result is {type(obj).__name__}, not bytes",
                      field="Accept", expected=media.JSON, got=type(obj).__name__)
