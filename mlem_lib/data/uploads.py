"""Files in HTTP bodies: base64 text, ``multipart/form-data`` uploads, media-type sniffing.

What the data types of whole files (:mod:`mlem_lib.data.binary`, :mod:`mlem_lib.data.image`)
and image-shaped tensors (:mod:`mlem_lib.data.tensor`) share.

Example:
    >>> sniff(b"\\x89PNG\\r\\n\\x1a\\n..."), to_base64(b"hi")
    ('image/png', 'aGk=')
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from mlem_lib.errors import HTTPProblem, SchemaError

OCTET = "application/octet-stream"
MULTIPART = "multipart/form-data"

# leading bytes -> media type, for the media types a sample is recorded with
_MAGIC: tuple[tuple[bytes, int, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", 0, "image/png"),
    (b"\xff\xd8\xff", 0, "image/jpeg"),
    (b"GIF8", 0, "image/gif"),
    (b"%PDF-", 0, "application/pdf"),
    (b"fLaC", 0, "audio/flac"),
    (b"OggS", 0, "audio/ogg"),
    (b"ID3", 0, "audio/mpeg"),
)


def sniff(body: bytes) -> str | None:
    """The media type of a file's content when its first bytes say it.

    Example:
        >>> sniff(b"RIFF\\x24\\x00\\x00\\x00WAVEfmt "), sniff(b"hello")
        ('audio/wav', None)
    """
    if body[:4] == b"RIFF" and body[8:12] == b"WAVE":
        return "audio/wav"
    if body[:4] == b"RIFF" and body[8:12] == b"WEBP":
        return "image/webp"
    for magic, offset, kind in _MAGIC:
        if body[offset:offset + len(magic)] == magic:
            return kind
    return None


def where(field: str | None) -> str:
    """How a message names the value: ``'field'``, or ``value`` for the whole of it."""
    return f"'{field}'" if field else "value"


def from_base64(payload: Any, expected: str, field: str | None = None) -> bytes:
    """Bytes from a base64 string (or a ``data:...;base64,`` URL).

    Raises:
        SchemaError: not a string, or not base64.

    Example:
        >>> from_base64("data:text/plain;base64,aGk=", "text")
        b'hi'
    """
    if not isinstance(payload, str):
        raise SchemaError(f"{where(field)}: expected {expected} as a base64 string, got "
                          f"{type(payload).__name__}", field=field,
                          expected=f"{expected} (base64 string)", got=type(payload).__name__)
    text = payload.split(",", 1)[1] if payload.startswith("data:") and "," in payload \
        else payload
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise SchemaError(f"{where(field)}: expected {expected} as a base64 string, got "
                          "text that is not base64", field=field,
                          expected=f"{expected} (base64 string)", got="not base64") from None


def to_base64(body: bytes) -> str:
    """The base64 text of ``body`` (what the JSON form of binary values holds)."""
    return base64.b64encode(body).decode("ascii")


@dataclass(frozen=True)
class Part:
    """One part of a ``multipart/form-data`` body."""

    name: str
    filename: str | None
    content_type: str | None
    data: bytes


def read_multipart(body: bytes, params: Mapping[str, str] | None) -> list[Part]:
    """The parts of a ``multipart/form-data`` body, in order.

    Raises:
        HTTPProblem: 400 when the boundary is missing or the body is not multipart.

    Example:
        >>> body = (b'--b\\r\\nContent-Disposition: form-data; name="file"; filename="a.wav"\\r\\n'
        ...         b'Content-Type: audio/wav\\r\\n\\r\\nRIFF\\r\\n--b--\\r\\n')
        >>> read_multipart(body, {"boundary": "b"})[0].filename
        'a.wav'
    """
    from python_multipart.multipart import MultipartParser, parse_options_header

    boundary = (params or {}).get("boundary")
    if not boundary:
        raise HTTPProblem(400, "multipart/form-data body without a boundary parameter",
                          field="Content-Type", expected="multipart/form-data; boundary=...",
                          got="no boundary")
    parts: list[Part] = []
    headers: dict[str, str] = {}
    field: list[bytes] = []
    chunks: list[bytes] = []

    def on_part_begin() -> None:
        headers.clear()
        chunks.clear()

    def on_header_field(data: bytes, start: int, end: int) -> None:
        field.append(data[start:end])

    def on_header_value(data: bytes, start: int, end: int) -> None:
        headers[b"".join(field).decode("latin-1").lower()] = data[start:end].decode("latin-1")
        field.clear()

    def on_part_data(data: bytes, start: int, end: int) -> None:
        chunks.append(data[start:end])

    def on_part_end() -> None:
        _, options = parse_options_header(headers.get("content-disposition", ""))
        name = options.get(b"name", b"").decode("utf-8", "replace")
        filename = options.get(b"filename")
        parts.append(Part(name=name,
                          filename=filename.decode("utf-8", "replace") if filename is not None
                          else None,
                          content_type=headers.get("content-type"), data=b"".join(chunks)))

    parser = MultipartParser(boundary, {  # type: ignore[arg-type]
        "on_part_begin": on_part_begin, "on_header_field": on_header_field,
        "on_header_value": on_header_value, "on_part_data": on_part_data,
        "on_part_end": on_part_end})
    try:
        parser.write(body)
        parser.finalize()
    except Exception as exc:  # python-multipart raises its own error types
        raise HTTPProblem(400, f"malformed multipart/form-data body: {exc}", field="body",
                          expected="multipart/form-data", got="malformed body") from None
    return parts


def uploaded_files(body: bytes, params: Mapping[str, str] | None, expected: str) -> list[Part]:
    """The file parts of an upload (parts with a file name; else every part).

    Raises:
        HTTPProblem: 400 when the body holds no part at all.
    """
    parts = read_multipart(body, params)
    files = [p for p in parts if p.filename is not None] or parts
    if not files:
        raise HTTPProblem(400, f"the upload holds no file: expected {expected}", field="file",
                          expected=expected, got="no file")
    return files


def one_upload(body: bytes, params: Mapping[str, str] | None, expected: str) -> bytes:
    """The content of the single file of an upload.

    Raises:
        HTTPProblem: 400 for no file or more than one.
    """
    files = uploaded_files(body, params, expected)
    if len(files) > 1:
        raise HTTPProblem(400, f"the upload holds {len(files)} files: send one ({expected})",
                          field="file", expected=f"one file: {expected}",
                          got=f"{len(files)} files")
    return files[0].data


def upload_schema(many: bool = False) -> dict[str, Any]:
    """The OpenAPI schema of a ``multipart/form-data`` upload (a file field in ``/docs``).

    Example:
        >>> upload_schema()["properties"]["file"]
        {'type': 'string', 'format': 'binary'}
    """
    binary = {"type": "string", "format": "binary"}
    if many:
        return {"type": "object", "properties": {"files": {"type": "array", "items": binary}},
                "required": ["files"]}
    return {"type": "object", "properties": {"file": binary}, "required": ["file"]}
