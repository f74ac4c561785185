"""A data type owns its formats: a new one is one module, and nothing else names types.

``WordsType`` below stands for a third-party data type: it is defined here, registered
through :func:`mlem_lib.plugins.register` (not by editing mlem_lib), and then saved as a
model's argument and result, applied to a file of its own kind, and served by a real
uvicorn server in its own media type (``text/plain``, one text per line).
"""

from __future__ import annotations

import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest

import mlem_lib.api as mlem
from mlem_lib import plugins
from mlem_lib.data import media
from mlem_lib.data.base import DataType
from mlem_lib.errors import SchemaError
from mlem_lib.formats import Partition, Source
from tests.conftest import REPO_ROOT

TEXT = "text/plain"


# --- the data type: one module's worth of code ------------------------------------------

class Words(Sequence[str]):
    """A batch of texts (what the model takes and returns)."""

    def __init__(self, items: Any) -> None:
        self.items = list(items)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: Any) -> Any:
        return self.items[i]

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Words) and other.items == self.items

    def __repr__(self) -> str:
        return f"Words({self.items!r})"


class LinesSource(Source):
    """A ``.txt`` file read as one text per line."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.label = path

    def chunks(self, batch_size: int, part: Partition | None = None) -> Iterator[Any]:
        lines = Path(self.path).read_text().splitlines()
        for start in range(0, len(lines), batch_size):
            yield lines[start:start + batch_size]

    def partitions(self, n: int) -> list[Partition]:
        return [Partition(index=0, start=0, stop=1, unit="rows")]


class WordsType(DataType):
    """Texts; JSON as a list of strings, ``text/plain`` as one text per line."""

    type: str = "test_words"

    @classmethod
    def infer(cls, obj: Any) -> DataType | None:
        return cls() if isinstance(obj, Words) else None

    def validate_value(self, obj: Any, field: str | None = None) -> Any:
        if not isinstance(obj, Words | list) or not all(isinstance(w, str) for w in obj):
            raise SchemaError(f"expected a list of texts, got {type(obj).__name__}",
                              field=field, expected="list of str", got=type(obj).__name__)
        return Words(obj)

    def from_json(self, payload: Any, field: str | None = None) -> Any:
        return self.validate_value(payload, field)

    def to_json(self, obj: Any) -> Any:
        return list(obj)

    def example(self) -> Any:
        return Words(["hello"])

    def json_schema(self) -> dict[str, Any]:
        return {"type": "array", "items": {"type": "string"}}

    def media_types(self) -> tuple[str, ...]:
        return (media.JSON, TEXT)

    def decode(self, body: bytes, media_type: str, params: Any = None) -> Any:
        if media_type == TEXT:
            media.require_body(body, "one text per line")
            return Words(body.decode(params.get("charset", "utf-8")).splitlines())
        return super().decode(body, media_type, params)

    def encode(self, value: Any, media_type: str) -> bytes:
        if media_type == TEXT:
            return "".join(f"{w}\n" for w in value).encode()
        return super().encode(value, media_type)

    def rows(self, value: Any) -> int | None:
        return len(value)

    def is_empty(self, value: Any) -> bool:
        return len(value) == 0

    def from_chunk(self, chunk: Any) -> Any:
        return self.validate_value(list(chunk))

    def concat(self, parts: list[Any]) -> Any:
        return Words(w for part in parts for w in part)

    def open_source(self, url: str) -> Source | None:
        return LinesSource(url) if url.endswith(".txt") else None


def shout(words: Words) -> Words:
    return Words(w.upper() for w in words)


# --- the tests ----------------------------------------------------------------------------

@pytest.fixture
def words_type() -> Iterator[type[WordsType]]:
    plugins.register("data", "test_words", WordsType, claims=["tests"])
    yield WordsType
    plugins.unregister("data", "test_words")


@pytest.fixture
def saved_shout(words_type, tmp_path) -> str:
    path = str(tmp_path / "shout")
    meta = mlem.save(shout, path, sample_data=Words(["hi there"]))
    sig = meta.model_type.methods["__call__"]
    assert type(sig.args[0].type_) is WordsType and type(sig.returns) is WordsType
    return path


@pytest.fixture
def uvicorn_server(saved_shout) -> Iterator[str]:
    """``saved_shout`` served by a real uvicorn server on 127.0.0.1 (port from the OS), in
    this process so that the test's data type is registered there too."""
    import uvicorn

    from mlem_lib.runner import LoadedModel
    from mlem_lib.serve.app import create_app
    from mlem_lib.serve.settings import ServerSettings

    app = create_app(LoadedModel.load(saved_shout), ServerSettings())
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=30)


def test_a_new_data_type_is_saved_loaded_and_applied_to_its_own_files(saved_shout, tmp_path):
    assert "test_words" in Path(saved_shout + ".mlem").read_text()
    assert mlem.load(saved_shout)(Words(["a"])) == Words(["A"])
    texts = tmp_path / "texts.txt"
    texts.write_text("good morning\nhow are you\nfine\n")
    assert mlem.apply(saved_shout, str(texts), batch_size=2) == Words(
        ["GOOD MORNING", "HOW ARE YOU", "FINE"])
    out = tmp_path / "shouted.csv"
    summary = mlem.apply(saved_shout, str(texts), output=str(out), batch_size=2)
    assert summary.rows == 3 and summary.batches == 2
    assert out.read_text().splitlines() == ["prediction", "GOOD MORNING", "HOW ARE YOU", "FINE"]
    with pytest.raises(SchemaError, match="list of texts"):
        mlem.apply(saved_shout, [1, 2])


def test_a_new_data_type_is_served_in_its_own_media_type(uvicorn_server):
    url = uvicorn_server
    r = httpx.post(f"{url}/predict", content=b"hi there\nbye\n",
                   headers={"Content-Type": "text/plain; charset=utf-8", "Accept": TEXT})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith(TEXT) and r.text == "HI THERE\nBYE\n"
    assert httpx.post(f"{url}/predict", json={"data": ["x", "y"]}).json() == ["X", "Y"]
    r = httpx.post(f"{url}/predict", json={"data": [1]})
    assert r.status_code == 400 and r.json()["expected"] == "list of str"
    r = httpx.post(f"{url}/predict", content=b"a,b\n", headers={"Content-Type": "text/csv"})
    assert r.status_code == 415 and TEXT in r.json()["expected"]
    r = httpx.post(f"{url}/predict", json={"data": []})
    assert r.status_code == 400 and r.json()["got"] == "0 rows"
    r = httpx.post(f"{url}/predict", json={"data": ["x"]}, headers={"Accept": "text/csv"})
    assert r.status_code == 406 and r.json()["field"] == "Accept"
    post = httpx.get(f"{url}/openapi.json").json()["paths"]["/predict"]["post"]
    assert set(post["requestBody"]["content"]) == {"application/json", TEXT}
    assert set(post["responses"]["200"]["content"]) == {"application/json", TEXT}
    assert post["requestBody"]["content"]["application/json"]["schema"]["properties"][
        "data"]["items"] == {"type": "string"}


def test_the_client_speaks_a_new_data_type(uvicorn_server):
    from mlem_lib.client import HTTPClient

    with HTTPClient(uvicorn_server) as client:
        assert client.predict(Words(["quiet"])) == Words(["QUIET"])


README_CHECK = re.compile(r"^\.venv/bin/python -c \"(.*no switches on data-type names.*)\"$",
                          re.M)


def _run_readme_check(cwd: Path) -> subprocess.CompletedProcess[str]:
    match = README_CHECK.search((REPO_ROOT / "README.md").read_text())
    assert match, "the README's Development section lost its data-type check"
    code = match.group(1).replace('\\"', '"')
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True,
                          text=True, timeout=120)


def test_nothing_outside_mlem_lib_data_switches_on_data_type_names():
    out = _run_readme_check(REPO_ROOT)
    assert out.returncode == 0, out.stdout + out.stderr


def test_the_check_finds_a_switch(tmp_path):
    # a tree holding only one offending module; mlem_lib itself is still importable
    bad = tmp_path / "mlem_lib" / "serve" / "bad.py"
    bad.parent.mkdir(parents=True)
    bad.write_text('def f(t):\n    return t.type == "dataframe" or kind in ("x", "series")\n')
    out = _run_readme_check(tmp_path)
    assert out.returncode == 1 and "mlem_lib/serve/bad.py:2" in out.stdout
