"""The deep-learning data types: tensors, images and raw files (mlem_lib/data/tensor.py,
image.py, binary.py, filesource.py): schemas, every media type they speak, bad input."""

from __future__ import annotations

import base64
import io

import httpx
import numpy as np
import pytest

from mlem_lib.data.base import infer_data_type, parse_data_type
from mlem_lib.errors import HTTPProblem, ObjectNotFoundError, SchemaError
from mlem_lib.serve.codecs import body_media_type
from tests._fixtures.deeplearning import need


def _torch():
    need("torch")
    import torch

    return torch


def _png(size=(28, 28), mode="L", fmt="PNG") -> bytes:
    need("PIL")
    from PIL import Image

    buf = io.BytesIO()
    Image.new(mode, size, color=255 if mode == "L" else (255, 0, 0)).save(buf, fmt)
    return buf.getvalue()


def _multipart(*files: tuple[str, bytes, str]) -> tuple[bytes, str, dict[str, str]]:
    """A real multipart/form-data body as httpx writes it: (body, media type, params)."""
    request = httpx.Request("POST", "http://x", files=[("file", f) for f in files])
    body = request.read()
    kind, params = body_media_type(request.headers["content-type"],
                                   ("multipart/form-data",))
    return body, kind, params


# --- tensors ------------------------------------------------------------------------------

def test_a_tensor_schema_has_dtype_and_a_free_batch_axis_and_reads_back_from_yaml():
    torch = _torch()
    t = infer_data_type(torch.zeros(5, 3, dtype=torch.float64)).batch_free()
    assert (t.type, t.shape, t.dtype) == ("torch", [None, 3], "float64")
    assert t.describe() == "torch[float64, (n, 3)]"
    again = parse_data_type(t.model_dump())
    assert again == t and type(again).__name__ == "TorchTensorType"
    assert t.json_schema()["items"]["maxItems"] == 3


@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16", "int64", "uint8", "bool"])
def test_tensors_roundtrip_through_json_and_npy(dtype):
    torch = _torch()
    value = (torch.arange(6).reshape(2, 3) % 2).to(getattr(torch, dtype))
    t = infer_data_type(value).batch_free()
    for kind in ("application/json", "application/x-npy"):
        back = t.decode(t.encode(value, kind), kind)
        assert isinstance(back, torch.Tensor) and back.dtype == value.dtype
        assert torch.equal(back, value)
    assert "text/csv" in t.media_types()  # two dimensions: rows of values as well


def test_wrong_shape_and_wrong_dtype_name_what_was_expected():
    torch = _torch()
    t = infer_data_type(torch.zeros(2, 1, 28, 28)).batch_free()
    with pytest.raises(SchemaError, match=r"expected shape \(n, 1, 28, 28\)") as shape:
        t.from_json(np.zeros((1, 1, 27, 28)).tolist())
    assert shape.value.expected == "shape (n, 1, 28, 28)" and shape.value.got == "(1, 1, 27, 28)"
    with pytest.raises(SchemaError, match="float32"):
        t.from_json([[[["x"] * 28] * 28]])
    ints = infer_data_type(torch.zeros(2, 3, dtype=torch.int64)).batch_free()
    with pytest.raises(SchemaError, match="expected dtype int64"):
        ints.validate_value(torch.full((1, 3), 0.5))  # would lose the fraction
    assert ints.validate_value(torch.ones(1, 3)).dtype == torch.int64  # whole floats are fine


def test_lists_tuples_and_dicts_of_tensors_free_each_batch_axis():
    torch = _torch()
    pair = infer_data_type((torch.zeros(4, 3), torch.zeros(4, dtype=torch.long))).batch_free()
    assert pair.describe() == "tuple[torch[float32, (n, 3)], torch[int64, (n)]]"
    back = pair.from_json([np.zeros((7, 3)).tolist(), list(range(7))])
    assert isinstance(back, tuple) and back[0].shape == (7, 3) and back[1].dtype == torch.long
    inputs = infer_data_type({"ids": torch.zeros(2, 5, dtype=torch.long),
                              "mask": torch.ones(2, 5, dtype=torch.long)}).batch_free()
    assert inputs.describe() == "dict{ids: torch[int64, (n, 5)], mask: torch[int64, (n, 5)]}"
    assert inputs.from_json({"ids": [[1] * 5] * 3, "mask": [[1] * 5] * 3})["ids"].shape == (3, 5)
    with pytest.raises(SchemaError, match="missing key 'mask'"):
        inputs.from_json({"ids": [[1] * 5]})
    many = infer_data_type([torch.zeros(3), torch.zeros(3)]).batch_free()
    assert [v.shape for v in many.from_json([[1, 2, 3]] * 4)] == [(3,)] * 4


def test_image_shaped_tensors_take_png_jpeg_and_uploads_scaled_to_the_schema():
    torch = _torch()
    t = infer_data_type(torch.zeros(2, 1, 28, 28)).batch_free()
    assert {"image/png", "image/jpeg", "multipart/form-data"} <= set(t.media_types())
    white = t.decode(_png(), "image/png")
    assert white.shape == (1, 1, 28, 28) and white.dtype == torch.float32
    assert float(white.min()) == float(white.max()) == 1.0  # 255 scaled to [0, 1]
    colour = t.decode(_png(mode="RGB", fmt="JPEG"), "image/jpeg")  # converted to one channel
    assert colour.shape == (1, 1, 28, 28)
    body, kind, params = _multipart(("a.png", _png(), "image/png"),
                                    ("b.png", _png(), "image/png"))
    assert t.decode(body, kind, params).shape == (2, 1, 28, 28)
    hwc = infer_data_type(torch.zeros(1, 28, 28, 3, dtype=torch.uint8)).batch_free()
    red = hwc.decode(_png(mode="RGB"), "image/png")
    assert red.shape == (1, 28, 28, 3) and red[0, 0, 0].tolist() == [255, 0, 0]
    vector = infer_data_type(torch.zeros(2, 10)).batch_free()
    assert "image/png" not in vector.media_types()


def test_undecodable_or_wrongly_sized_images_are_schema_errors():
    t = infer_data_type(_torch().zeros(2, 1, 28, 28)).batch_free()
    with pytest.raises(SchemaError, match="cannot decode the image") as junk:
        t.decode(b"this is no image", "image/png")
    assert junk.value.expected == "a PNG or JPEG image"
    with pytest.raises(SchemaError, match="expected a 28x28 image, got 32x32"):
        t.decode(_png(size=(32, 32)), "image/png")
    with pytest.raises(SchemaError, match="empty file"):
        t.decode(b"", "image/png")


def test_tensor_batches_concat_and_count_rows():
    torch = _torch()
    t = infer_data_type(torch.zeros(2, 3)).batch_free()
    assert t.rows(torch.zeros(5, 3)) == 5 and t.is_empty(torch.zeros(0, 3))
    assert t.concat([torch.ones(2, 3), torch.zeros(1, 3)]).shape == (3, 3)
    assert t.from_chunk(np.ones((4, 3))).dtype == torch.float32  # from a .npy input file


# --- images ---------------------------------------------------------------------------------

def test_pil_images_travel_as_base64_raw_bodies_and_uploads_in_the_sample_mode():
    need("PIL")
    from PIL import Image

    t = infer_data_type(Image.new("L", (28, 28)))
    assert (t.type, t.mode, t.size) == ("image", "L", [28, 28])
    assert parse_data_type(t.model_dump()) == t
    rgb = Image.new("RGB", (10, 6), (10, 200, 30))
    from_json = t.from_json(t.to_json(rgb))
    assert from_json.mode == "L" and from_json.size == (10, 6)  # any size, converted mode
    data_url = "data:image/png;base64," + base64.b64encode(_png(mode="RGB")).decode()
    assert t.from_json(data_url).mode == "L"
    assert t.decode(_png(mode="RGB", fmt="JPEG"), "image/jpeg").mode == "L"
    body, kind, params = _multipart(("x.png", _png(), "image/png"))
    assert t.decode(body, kind, params).size == (28, 28)
    assert t.decode(t.encode(rgb, "image/png"), "image/png").size == (10, 6)
    assert isinstance(t.example(), Image.Image)


def test_bad_images_are_refused_naming_what_was_expected():
    need("PIL")
    from PIL import Image

    t = infer_data_type(Image.new("RGB", (4, 4)))
    with pytest.raises(SchemaError, match="cannot decode the image"):
        t.decode(b"GIF89a but truncated", "image/png")
    with pytest.raises(SchemaError, match="not base64"):
        t.from_json("%%%")
    body, kind, params = _multipart(("a.png", _png(), "image/png"),
                                    ("b.png", _png(), "image/png"))
    with pytest.raises(HTTPProblem, match="send one") as many:
        t.decode(body, kind, params)
    assert many.value.status == 400


# --- raw files ------------------------------------------------------------------------------

def test_bytes_travel_as_base64_raw_and_uploaded_and_keep_their_media_type():
    from tests.helpers import dlmodels

    wav = dlmodels.wav_bytes()
    t = infer_data_type(wav)
    assert (t.type, t.kind, t.media_type) == ("binary", "bytes", "audio/wav")
    assert t.media_types() == ("application/json", "application/octet-stream",
                               "multipart/form-data", "audio/wav")
    assert t.from_json(t.to_json(wav)) == wav
    assert t.decode(wav, "audio/wav") == wav == t.decode(wav, "application/octet-stream")
    body, kind, params = _multipart(("clip.wav", wav, "audio/wav"))
    assert t.decode(body, kind, params) == wav
    assert t.encode(wav, "application/octet-stream") == wav
    assert t.body_schema("multipart/form-data")["properties"]["file"]["format"] == "binary"


def test_file_objects_are_a_schema_of_their_own():
    t = infer_data_type(io.BytesIO(b"%PDF-1.7 hello"))
    assert (t.kind, t.media_type, t.describe()) == ("file", "application/pdf",
                                                    "file[application/pdf]")
    got = t.decode(b"%PDF-1.4 other", "application/pdf")
    assert isinstance(got, io.BytesIO) and got.read() == b"%PDF-1.4 other"


def test_empty_files_and_files_of_another_kind_are_refused():
    from tests.helpers import dlmodels

    t = infer_data_type(dlmodels.wav_bytes())
    for body, kind in ((b"", "audio/wav"), (b"", "application/octet-stream")):
        with pytest.raises(SchemaError, match="empty file: expected audio/wav bytes"):
            t.decode(body, kind)
    with pytest.raises(SchemaError, match="expected audio/wav bytes, got bytes of no known"):
        t.decode(b"just some text", "audio/wav")
    assert t.decode(b"fLaC and more", "application/octet-stream") == b"fLaC and more"  # audio
    with pytest.raises(SchemaError, match="got image/png"):
        t.decode(_png(), "application/octet-stream")
    body, kind, params = _multipart(("empty.wav", b"", "audio/wav"))
    with pytest.raises(SchemaError, match="empty file"):
        t.decode(body, kind, params)
    with pytest.raises(HTTPProblem, match="boundary"):
        t.decode(b"--x\r\n", "multipart/form-data", {})
    anything = infer_data_type(b"\x00\x01")
    assert anything.media_type is None and anything.decode(b"text", "application/octet-stream")


def test_examples_are_valid_files_of_the_recorded_kind():
    import wave

    from tests.helpers import dlmodels

    example = infer_data_type(dlmodels.wav_bytes()).example()
    with wave.open(io.BytesIO(example)) as w:
        assert w.getnframes() > 0
    assert infer_data_type(_png()).example()[:4] == b"\x89PNG"


# --- files as rows ----------------------------------------------------------------------------

def test_a_glob_a_folder_or_a_file_is_read_one_row_per_file_with_its_name(tmp_path,
                                                                          monkeypatch):
    from mlem_lib.data.filesource import FilesSource

    (tmp_path / "clips").mkdir()
    for name in ("b.wav", "a.wav", ".hidden"):
        (tmp_path / "clips" / name).write_bytes(name.encode())
    monkeypatch.chdir(tmp_path)
    labels = [c.labels for c in FilesSource("clips/*.wav", lambda b, n: b).chunks(10)]
    assert labels == [["clips/a.wav"], ["clips/b.wav"]]
    stacked = list(FilesSource("clips", lambda b, n: b, stack=list).chunks(10))
    assert [(c.labels, c.value) for c in stacked] == [(["clips/a.wav", "clips/b.wav"],
                                                       [b"a.wav", b"b.wav"])]
    one = list(FilesSource(str(tmp_path / "clips" / "a.wav"), lambda b, n: b).chunks(1))
    assert one[0].labels == [str(tmp_path / "clips" / "a.wav")]
    with pytest.raises(ObjectNotFoundError, match="no files match"):
        FilesSource("clips/*.mp3", lambda b, n: b)


def test_a_bad_file_in_a_folder_is_named_in_the_error(tmp_path):
    t = infer_data_type(_torch().zeros(1, 1, 28, 28)).batch_free()
    (tmp_path / "ok.png").write_bytes(_png())
    (tmp_path / "broken.png").write_bytes(b"nope")
    source = t.open_source(str(tmp_path / "*.png"))
    with pytest.raises(SchemaError, match=r"broken\.png.*cannot decode"):
        list(source.chunks(10))
    assert t.open_source(str(tmp_path / "x.npy")) is None  # arrays: the generic readers
