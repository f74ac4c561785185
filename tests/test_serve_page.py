"""The model page at ``GET /``: what it shows, that it needs nothing from the internet,
and, in a real headless Chromium against a real server, that its pre-filled form calls
the model and shows the answer as a table (a screenshot is kept as a test artifact)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from mlem_lib.runner import LoadedModel
from mlem_lib.serve.app import create_app
from mlem_lib.serve.docs_auth import protect_docs
from mlem_lib.serve.settings import ServerSettings
from tests.conftest import REPO_ROOT, skip_or_fail
from tests.helpers.browser import Browser, chromium_binary

#: where the page's screenshot is kept (CI collects this folder)
ARTIFACTS = Path(os.environ.get("MLEM_TEST_ARTIFACTS", REPO_ROOT / "test-artifacts"))


@pytest.fixture(scope="module")
def loaded_lr(saved_lr) -> LoadedModel:
    return LoadedModel.load(saved_lr)


def _page(loaded: LoadedModel, **settings: object) -> str:
    config = ServerSettings(**settings)  # type: ignore[arg-type]
    client = TestClient(protect_docs(create_app(loaded, config), config))
    answer = client.get("/")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "text/html; charset=utf-8"
    return answer.text


def test_the_page_shows_the_model_its_methods_and_a_prefilled_form(loaded_lr, iris):
    page = _page(loaded_lr)
    meta = loaded_lr.meta
    assert "<title>lr &middot; mlem_lib</title>" in page  # named after what was served
    assert "iris logistic regression" in page
    assert meta.model_hash in page
    for method in ("predict", "predict_proba", "decision_function"):
        assert f"<code>POST /{method}</code>" in page
        assert f'<form class="call" data-method="{method}" data-arg="data" ' \
               'data-kind="columns">' in page
    for link in ("/docs", "/interface.json", "/health", "/metrics"):
        assert f'<a href="{link}">' in page
    # one input per column, pre-filled with the first sample row
    first = iris[0].iloc[0]
    for column in iris[0].columns:
        inputs = re.findall(rf'<input type="number" step="any" aria-label="{column}" '
                            rf'data-column="{column}" data-kind="float" value="([^"]*)">',
                            page)
        assert inputs and float(inputs[0]) == first[column]
    # an example request that works as written, on this server's URL
    assert "curl -X POST http://testserver/predict_proba" in page
    assert "&quot;sepal_length&quot;: 5.1" in page
    # the answer table is headed by the model's own column names
    assert 'data-columns="[&quot;proba_0&quot;, &quot;proba_1&quot;, &quot;proba_2&quot;]"' \
        in page


def test_the_page_works_offline_and_escapes_what_the_user_wrote(tmp_path):
    import pandas as pd

    import mlem_lib.api as mlem

    sample = pd.DataFrame({"<b>x</b>": [1.0, 2.0]})
    path = str(tmp_path / "evil")
    mlem.save(lambda df: df.sum(axis=1), path, sample_data=sample,
              description="<script>alert(1)</script>", labels=["<img src=x>"])
    page = _page(LoadedModel.load(path))
    assert "<script>alert(1)</script>" not in page and "&lt;script&gt;alert(1)" in page
    assert "<img src=x>" not in page and "<b>x</b>" not in page
    # everything inline: no script, style or font from elsewhere
    assert not re.search(r'<(script|link|img|iframe)[^>]+(src|href)=', page)
    assert "https://" not in page and "//cdn" not in page
    assert page.count("<script>") == 1


def test_a_json_box_for_other_arguments_and_no_metrics_link_when_they_are_off():
    loaded = LoadedModel.from_object(lambda xs: [2 * x for x in xs], sample_data=[1.5, 2.5])
    page = _page(loaded, metrics=False)
    assert '<form class="call" data-method="predict" data-arg="data" data-kind="json">' in page
    assert re.search(r'<textarea name="json"[^>]*>\[\s*1.5\s*\]</textarea>', page), page
    assert '<a href="/metrics">' not in page
    assert "<title>callable model &middot; mlem_lib</title>" in page


def test_with_a_token_the_page_asks_for_it_and_auth_docs_guards_the_page(loaded_lr):
    page = _page(loaded_lr, auth_token="s3cret")
    assert 'id="token"' in page and "Authorization: Bearer $TOKEN" in page
    settings = ServerSettings(auth_token="s3cret", auth_docs=True)
    client = TestClient(protect_docs(create_app(loaded_lr, settings), settings))
    assert client.get("/").status_code == 401
    assert client.get("/", headers={"Authorization": "Bearer s3cret"}).status_code == 200


def test_in_chromium_the_prefilled_form_calls_the_model_and_shows_a_table(
        start_server, saved_lr, iris, iris_lr):
    if chromium_binary() is None:
        skip_or_fail("chromium is not installed (apt-get install chromium)")
    server = start_server(saved_lr)
    with Browser() as browser:
        browser.open(f"{server.url}/")
        assert browser.evaluate("document.title") == "lr · mlem_lib"
        browser.evaluate("document.querySelector('form[data-method=predict_proba] "
                         "button[type=submit]').click()")
        status = browser.wait_for(
            "document.querySelector('form[data-method=predict_proba]').dataset.answered")
        assert status == "200", browser.evaluate(
            "document.querySelector('.answer[data-method=predict_proba]').innerText")
        table = browser.evaluate(
            "Array.from(document.querySelectorAll('.answer[data-method=predict_proba] tr'))"
            ".map(tr => Array.from(tr.children).map(td => td.textContent))")
        # a second row added in the form is sent too
        browser.evaluate("document.querySelector('form[data-method=predict] .add-row').click()")
        browser.evaluate("document.querySelector('form[data-method=predict] button"
                         "[type=submit]').click()")
        browser.wait_for("document.querySelector('form[data-method=predict]').dataset.answered")
        predicted = browser.evaluate(
            "Array.from(document.querySelectorAll('.answer[data-method=predict] tbody tr'))"
            ".map(tr => tr.lastChild.textContent)")
        shot = browser.screenshot(ARTIFACTS / "model-page.png")
    assert table[0] == ["#", "proba_0", "proba_1", "proba_2"]
    assert len(table) == 2
    expected = iris_lr.predict_proba(iris[0].head(1))[0]
    assert [float(v) for v in table[1][1:]] == pytest.approx(list(expected))
    label = str(iris_lr.predict(iris[0].head(1))[0])
    assert predicted == [label, label]
    assert shot.stat().st_size > 10_000
    print(f"screenshot: {shot}")


def _byte_count(data: bytes) -> int:
    return len(data)


def test_in_chromium_a_file_picker_uploads_bytes(start_server, tmp_path):
    if chromium_binary() is None:
        skip_or_fail("chromium is not installed (apt-get install chromium)")
    import mlem_lib.api as mlem

    path = str(tmp_path / "count")
    mlem.save(_byte_count, path, sample_data=b"hello")
    page = _page(LoadedModel.load(path))
    assert 'data-kind="file"' in page and 'type="file" name="file" data-types=' in page
    assert "accept=" not in page  # raw bytes: any file
    upload = tmp_path / "sound.wav"
    upload.write_bytes(b"RIFF" + bytes(range(256)) * 4)
    server = start_server(path)
    with Browser() as browser:
        browser.open(f"{server.url}/")
        browser.set_files("form[data-method=predict] input[type=file]", upload)
        browser.evaluate("document.querySelector('form[data-method=predict] "
                         "button[type=submit]').click()")
        status = browser.wait_for(
            "document.querySelector('form[data-method=predict]').dataset.answered")
        shown = browser.evaluate(
            "document.querySelector('.answer[data-method=predict]').innerText")
    assert status == "200", shown
    assert str(upload.stat().st_size) in shown
