"""How a body's Content-Type is read (mlem_lib.serve.codecs): parameters, other names of the
same type, untyped bodies taken for JSON, and 415 for the rest. Written after mutation
testing showed that each of these rules could be broken without a test noticing."""

from __future__ import annotations

import pytest

from mlem_lib.serve import codecs
from mlem_lib.serve.codecs import CSV, JSON, NPY, PARQUET, HTTPProblem, body_media_type


def test_parameters_are_read_case_insensitively_with_values_unquoted():
    kind, params = body_media_type('Text/CSV; Header="absent"; charset=UTF-8; a=b=c; ;x')
    assert kind == CSV
    assert params == {"header": "absent", "charset": "UTF-8", "a": "b=c", "x": ""}


def test_other_names_and_untyped_bodies():
    assert body_media_type("application/vnd.apache.parquet")[0] == PARQUET
    assert body_media_type("application/npy")[0] == NPY
    assert body_media_type("text/plain")[0] == JSON  # what curl sends without -H
    assert body_media_type(None) == (JSON, {})
    # a data type that speaks text/plain itself gets it
    assert body_media_type("text/plain", ("text/plain", JSON))[0] == "text/plain"


def test_a_type_nobody_reads_is_415_naming_the_header():
    with pytest.raises(HTTPProblem) as err:
        body_media_type("application/xml; charset=utf-8")
    assert err.value.status == 415
    assert "application/xml" in str(err.value.body) and "Content-Type" in str(err.value.body)
    with pytest.raises(HTTPProblem):
        body_media_type(PARQUET, (JSON, CSV))  # known, but not spoken by this data type
    assert codecs.media_type("application/vnd.apache.parquet; x=1") == PARQUET
