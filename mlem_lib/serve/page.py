"""The model page at ``GET /``: try a served model in a browser, offline.

One small HTML page generated from the metadata: the description and labels, the
model's hash and requirements, and per method its schemas and a form. A table argument
(a DataFrame) gets one input per column and a row per sample row; an argument that
travels as a file (images, bytes: its data type speaks ``image/*`` or
``application/octet-stream``) gets a file picker; anything else a JSON box. The form
is pre-filled with the sample kept in the ``.mlem`` file when there is one, else with
an example built from the schema. The answer is shown as a table.

Everything is inline (CSS and a little vanilla JavaScript): no framework, no CDN, no
request to anything but the model server itself. The page is rendered once, when the
app is made.

Example:
    >>> from mlem_lib.runner import LoadedModel
    >>> lm = LoadedModel.from_object(lambda xs: [2 * x for x in xs], sample_data=[1.0, 2.0])
    >>> html = render_page(lm, {"predict": "__call__"}, auth=False, metrics=True).decode()
    >>> '<form class="call" data-method="predict" data-arg="data" data-kind="json">' in html
    True
    >>> "<script src" in html or "http://" in html or "https://" in html
    False
"""

from __future__ import annotations

import html
import json
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlem_lib.data.base import DataType
    from mlem_lib.meta import Argument, Signature
    from mlem_lib.runner import LoadedModel

#: rows of the sample shown in a table form
FORM_ROWS = 5
#: stands for the server's URL in the rendered page; the route fills it in per request
ORIGIN = "__MLEM_ORIGIN__"
FILE_MEDIA_PREFIXES = ("image/", "application/octet-stream", "audio/", "video/")
NUMERIC = ("int", "uint", "float")


def _e(text: object) -> str:
    return html.escape(str(text), quote=True)


def _sample_payload(arg: Argument) -> Any:
    """The JSON of the sample kept at save for ``arg``, else of the schema's example."""
    if arg.example is not None:  # the first sample row, kept at save
        return arg.example
    try:
        return arg.type_.to_json(arg.type_.example())
    except Exception:  # a schema without an example (unspecified): an empty box
        return None


def _columns(data_type: DataType) -> list[tuple[str, str]] | None:
    """``(column, dtype)`` of a table argument, else ``None``."""
    columns = data_type.input_columns()
    dtypes = getattr(data_type, "dtypes", None)
    if not columns or not dtypes or len(dtypes) != len(columns):
        return None
    return [(str(c), str(d)) for c, d in zip(columns, dtypes, strict=True)]


def _rows(payload: Any, columns: list[str]) -> list[dict[str, Any]]:
    """Row objects from a table's JSON (row objects, ``{"values": ...}`` or split)."""
    if isinstance(payload, dict) and "values" in payload:
        payload = payload["values"]
    if isinstance(payload, dict) and "data" in payload and "columns" in payload:
        payload = [dict(zip(payload["columns"], row, strict=False)) for row in payload["data"]]
    if isinstance(payload, list) and all(isinstance(r, dict) for r in payload):
        return [dict(r) for r in payload[:FORM_ROWS]]
    return [dict.fromkeys(columns)]


def _file_types(data_type: DataType) -> list[str]:
    try:
        kinds = data_type.media_types()
    except Exception:
        return []
    return [k for k in kinds if k.startswith(FILE_MEDIA_PREFIXES)]


def _input_kind(dtype: str) -> str:
    if dtype.startswith("bool"):
        return "bool"
    if dtype.startswith(NUMERIC):
        return "int" if dtype.startswith(("int", "uint")) else "float"
    return "str"


def _cell(column: str, dtype: str, value: Any) -> str:
    kind = _input_kind(dtype)
    label = f'aria-label="{_e(column)}" data-column="{_e(column)}" data-kind="{kind}"'
    if kind == "bool":
        checked = " checked" if value else ""
        return f'<td><input type="checkbox" {label}{checked}></td>'
    shown = "" if value is None else value
    if kind in ("int", "float"):
        step = "1" if kind == "int" else "any"
        return f'<td><input type="number" step="{step}" {label} value="{_e(shown)}"></td>'
    return f'<td><input type="text" {label} value="{_e(shown)}"></td>'


def _form(sig: Signature, public: str) -> str:
    if not sig.args:
        return (f'<form class="call" data-method="{_e(public)}" data-kind="none" '
                f'data-arg="data"><button type="submit">Call {_e(public)}</button></form>')
    arg = sig.args[0]
    head = f'<form class="call" data-method="{_e(public)}" data-arg="{_e(arg.name)}"'
    columns = _columns(arg.type_)
    files = _file_types(arg.type_)
    if columns is not None:
        rows = _rows(_sample_payload(arg), [c for c, _ in columns])
        header = "".join(f'<th scope="col">{_e(c)}<small>{_e(d)}</small></th>'
                         for c, d in columns)
        body = "".join("<tr>" + "".join(_cell(c, d, row.get(c)) for c, d in columns) + "</tr>"
                       for row in rows)
        inputs = (f'<div class="scroll"><table class="rows"><thead><tr>{header}</tr></thead>'
                  f'<tbody>{body}</tbody></table></div>'
                  '<p class="rowtools"><button type="button" class="add-row">+ row</button> '
                  '<button type="button" class="drop-row">&minus; row</button></p>')
        kind = "columns"
    elif files:
        # any file for raw bytes; the picker shows only images for an image argument
        narrow = [k for k in files if k != "application/octet-stream"]
        accept = f' accept="{_e(",".join(narrow))}"' if narrow else ""
        inputs = (f'<label>{_e(arg.name)} <input type="file" name="file"{accept} '
                  f'data-types="{_e(",".join(files))}"></label>')
        kind = "file"
    else:
        sample = _sample_payload(arg)
        text = "" if sample is None else json.dumps(sample, indent=1, default=str)
        inputs = (f'<label>{_e(arg.name)} (JSON)<textarea name="json" rows="6" '
                  f'spellcheck="false">{_e(text)}</textarea></label>')
        kind = "json"
    return (f'{head} data-kind="{kind}">{inputs}'
            f'<p><button type="submit">Call {_e(public)}</button></p></form>')


def _schema_block(title: str, schema: Any) -> str:
    if not schema:
        return ""
    return (f"<details><summary>{_e(title)}</summary>"
            f"<pre>{_e(json.dumps(schema, indent=1, default=str))}</pre></details>")


def _example_request(sig: Signature, public: str, auth: bool) -> str:
    """A ``curl`` call of the method with the saved sample (the origin is filled per request)."""
    body = {sig.args[0].name: _sample_payload(sig.args[0])} if sig.args else {}
    data = json.dumps(body, default=str).replace("'", "'\\''")
    token = ' \\\n  -H "Authorization: Bearer $TOKEN"' if auth else ""
    command = (f"curl -X POST {ORIGIN}/{public} \\\n  -H 'Content-Type: application/json'"
               f"{token} \\\n  -d '{data}'")
    return (f'<details class="example" open><summary>example request</summary>'
            f'<pre>{_e(command)}</pre></details>')


def _method(sig: Signature, public: str, auth: bool) -> str:
    args = ", ".join(f"{a.name}: {a.type_.describe()}" for a in sig.args) or "()"
    try:
        in_schema = sig.args[0].type_.input_json_schema() if sig.args else None
    except Exception:
        in_schema = None
    try:
        out_schema = sig.returns.json_schema()
    except Exception:
        out_schema = None
    columns = _e(json.dumps(sig.output_columns)) if sig.output_columns else ""
    return (f'<section class="method" id="method-{_e(public)}">'
            f'<h2><code>POST /{_e(public)}</code></h2>'
            f'<p class="sig"><code>{_e(args)} &rarr; {_e(sig.returns.describe())}</code></p>'
            f'{_schema_block("input schema", in_schema)}'
            f'{_schema_block("output schema", out_schema)}'
            f'{_example_request(sig, public, auth)}'
            f'{_form(sig, public)}'
            f'<div class="answer" data-method="{_e(public)}" data-columns="{columns}" '
            f'aria-live="polite"></div>'
            f'</section>')


def model_name(source: str | None) -> str | None:
    """The name a person knows the model by: the last part of the path or reference it
    was served from, without ``.mlem``.

    Example:
        >>> model_name("models/iris.mlem"), model_name("iris@v1.2.0"), model_name(None)
        ('iris', 'iris@v1.2.0', None)
    """
    if not source:
        return None
    name = source.rstrip("/").replace("\\", "/").rsplit("/", 1)[-1]
    return name[:-len(".mlem")] if name.endswith(".mlem") else name


def render_page(loaded: LoadedModel, routes: dict[str, str], *, auth: bool,
                metrics: bool) -> bytes:
    """The page's HTML (UTF-8); :data:`ORIGIN` stands where the server's URL goes.

    Args:
        loaded: the served model.
        routes: route name -> model method (``predict`` -> ``__call__`` for a callable).
        auth: the model endpoints need a bearer token (the page asks for it).
        metrics: link ``/metrics``.
    """
    from mlem_lib import __version__
    from mlem_lib.requirements import pip_lines

    meta = loaded.meta
    sections = [_method(loaded.signature(name), public, auth)
                for public, name in routes.items()]
    labels = "".join(f"<li>{_e(label)}</li>" for label in meta.labels)
    reqs = _e(", ".join(pip_lines(meta.requirements)) or "none")
    framework = meta.model_type.type
    name = model_name(loaded.source)
    title = name or f"{framework} model"
    description = (f'<p class="description">{_e(meta.description)}</p>'
                   if meta.description else "")
    token = ('<p class="token"><label>Bearer token <input type="password" id="token" '
             'autocomplete="off"></label></p>' if auth else "")
    links = ['<a href="/docs">API docs</a>', '<a href="/interface.json">interface.json</a>',
             '<a href="/health">health</a>']
    if metrics:
        links.append('<a href="/metrics">metrics</a>')
    methods = ", ".join(f'<a href="#method-{_e(p)}">{_e(p)}</a>' for p in routes)
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(title)} &middot; mlem_lib</title>
<style>{_CSS}</style></head>
<body><header><h1>{_e(title)}</h1>{description}
<ul class="labels">{labels}</ul>
<dl><dt>framework</dt><dd>{_e(framework)}</dd>
<dt>methods</dt><dd>{methods or "none"}</dd>
<dt>model hash</dt><dd><code class="hash">{_e(meta.model_hash or "-")}</code></dd>
<dt>requirements</dt><dd>{reqs}</dd>
<dt>served by</dt><dd>mlem_lib {_e(__version__)}</dd></dl>
<nav>{" &middot; ".join(links)}</nav>{token}</header>
<main>{"".join(sections)}</main>
<script>{_JS}</script></body></html>
"""
    return page.encode()


_CSS = """
body{font:15px/1.45 system-ui,-apple-system,'Segoe UI',sans-serif;margin:0;color:#1d2430;
background:#f6f7f9}
header,main{max-width:1100px;margin:0 auto;padding:1rem 1.5rem}
header{background:#fff;border-bottom:1px solid #dde1e6;max-width:none}
h1{margin:.2rem 0;font-size:1.6rem}h2{font-size:1.15rem;margin:.2rem 0}
.description{margin:.3rem 0 .6rem;color:#3c4656}
.labels{list-style:none;padding:0;margin:.3rem 0;display:flex;gap:.4rem;flex-wrap:wrap}
.labels li{background:#e7eefc;color:#1f4fa3;border-radius:1rem;padding:.05rem .6rem;
font-size:.85rem}
dl{display:grid;grid-template-columns:max-content 1fr;gap:.1rem 1rem;margin:.5rem 0;
font-size:.9rem}dt{color:#5d6776}dd{margin:0}
nav a{color:#1f4fa3}
.method{background:#fff;border:1px solid #dde1e6;border-radius:8px;padding:1rem 1.2rem;
margin:1rem 0}
.sig code{font-size:.9rem;color:#3c4656}
details{margin:.3rem 0;font-size:.9rem}pre{background:#f3f4f6;padding:.6rem;
overflow:auto;max-height:16rem}
.scroll{overflow-x:auto}
table{border-collapse:collapse;font-size:.9rem}
th,td{border:1px solid #dde1e6;padding:.25rem .45rem;text-align:left}
th small{display:block;color:#6b7382;font-weight:normal}
td input[type=number],td input[type=text]{width:7.5rem;border:1px solid #c5cbd3;
padding:.2rem;font:inherit}
textarea{display:block;width:100%;font:13px ui-monospace,monospace;margin-top:.3rem}
button{font:inherit;padding:.35rem .9rem;border-radius:6px;border:1px solid #1f4fa3;
background:#1f4fa3;color:#fff;cursor:pointer}
button[type=button]{background:#fff;color:#1f4fa3;padding:.15rem .6rem}
.answer table{margin-top:.5rem}.answer th{background:#f3f4f6}
.answer .error{color:#a32020}.answer .meta{color:#5d6776;font-size:.85rem}
"""

_JS = r"""
(function () {
  "use strict";
  function parse(input) {
    var kind = input.dataset.kind;
    if (kind === "bool") { return input.checked; }
    if (input.value === "") { return null; }
    if (kind === "int") { return parseInt(input.value, 10); }
    if (kind === "float") { return parseFloat(input.value); }
    return input.value;
  }
  function rows(form) {
    var out = [];
    form.querySelectorAll("tbody tr").forEach(function (tr) {
      var row = {};
      tr.querySelectorAll("input").forEach(function (i) { row[i.dataset.column] = parse(i); });
      out.push(row);
    });
    return out;
  }
  function el(tag, text, cls) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) { node.textContent = text; }
    if (cls) { node.className = cls; }
    return node;
  }
  function show(value) {
    if (value === null || value === undefined) { return ""; }
    return typeof value === "object" ? JSON.stringify(value) : String(value);
  }
  // the answer's JSON as [header, rows]
  function tabulate(value) {
    if (value && !Array.isArray(value) && typeof value === "object") {
      if (Array.isArray(value.values)) { value = value.values; }
      else if (Array.isArray(value.columns) && Array.isArray(value.data)) {
        return [value.columns, value.data];
      } else {
        return [["key", "value"], Object.keys(value).map(function (k) {
          return [k, value[k]]; })];
      }
    }
    if (!Array.isArray(value)) { return [["answer"], [[value]]]; }
    if (value.length && value.every(function (r) {
          return r && typeof r === "object" && !Array.isArray(r); })) {
      var keys = [];
      value.forEach(function (r) { Object.keys(r).forEach(function (k) {
        if (keys.indexOf(k) < 0) { keys.push(k); } }); });
      return [["#"].concat(keys), value.map(function (r, i) {
        return [i].concat(keys.map(function (k) { return r[k]; })); })];
    }
    if (value.length && value.every(Array.isArray)) {
      var width = Math.max.apply(null, value.map(function (r) { return r.length; }));
      var head = ["#"];
      for (var c = 0; c < width; c++) { head.push(String(c)); }
      return [head, value.map(function (r, i) { return [i].concat(r); })];
    }
    return [["#", "answer"], value.map(function (v, i) { return [i, v]; })];
  }
  // the answer's columns as the model names them (proba_<class> ...), when it has them
  function named(parts, columns) {
    if (!columns || !columns.length || parts[0][0] !== "#"
        || parts[0].length !== columns.length + 1) { return parts; }
    return [["#"].concat(columns), parts[1]];
  }
  function render(box, status, body, ms) {
    box.textContent = "";
    box.appendChild(el("p", "HTTP " + status + " in " + ms.toFixed(0) + " ms", "meta"));
    if (status >= 400) {
      var message = body && body.error ? body.error : show(body);
      if (body && body.field) { message += " (field: " + body.field + ")"; }
      box.appendChild(el("p", message, "error"));
      return;
    }
    var columns = box.dataset.columns ? JSON.parse(box.dataset.columns) : null;
    var parts = named(tabulate(body), columns);
    var table = el("table"), thead = el("thead"), tr = el("tr");
    parts[0].forEach(function (h) { var th = el("th", show(h)); th.scope = "col";
      tr.appendChild(th); });
    thead.appendChild(tr);
    table.appendChild(thead);
    var tbody = el("tbody");
    parts[1].forEach(function (r) {
      var row = el("tr");
      r.forEach(function (v) { row.appendChild(el("td", show(v))); });
      tbody.appendChild(row);
    });
    table.appendChild(tbody);
    box.appendChild(table);
  }
  function request(form) {
    var kind = form.dataset.kind, arg = form.dataset.arg, body = {};
    var headers = {"Accept": "application/json"};
    var token = document.getElementById("token");
    if (token && token.value) { headers["Authorization"] = "Bearer " + token.value; }
    if (kind === "file") {
      var input = form.querySelector("input[type=file]"), file = input.files[0];
      if (!file) { throw new Error("choose a file first"); }
      // the file's own type when the argument speaks it, else raw bytes
      var types = input.dataset.types.split(",");
      headers["Content-Type"] = types.indexOf(file.type) >= 0 ? file.type
        : "application/octet-stream";
      return {headers: headers, body: file};
    }
    headers["Content-Type"] = "application/json";
    if (kind === "columns") { body[arg] = {values: rows(form)}; }
    else if (kind === "json") {
      var text = form.querySelector("textarea").value.trim();
      try { body[arg] = text ? JSON.parse(text) : null; }
      catch (e) { throw new Error("the JSON box does not hold JSON: " + e.message); }
    }
    return {headers: headers, body: JSON.stringify(body)};
  }
  document.querySelectorAll("form.call").forEach(function (form) {
    var box = document.querySelector('.answer[data-method="' + form.dataset.method + '"]');
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      var started = performance.now(), req;
      try { req = request(form); }
      catch (e) { box.textContent = ""; box.appendChild(el("p", e.message, "error")); return; }
      box.textContent = "calling...";
      fetch("/" + form.dataset.method, {method: "POST", headers: req.headers, body: req.body})
        .then(function (res) {
          return res.text().then(function (text) {
            var parsed;
            try { parsed = JSON.parse(text); } catch (e) { parsed = text; }
            render(box, res.status, parsed, performance.now() - started);
            form.dataset.answered = String(res.status);
          });
        })
        .catch(function (e) { box.textContent = "";
          box.appendChild(el("p", "request failed: " + e.message, "error")); });
    });
    var add = form.querySelector(".add-row"), drop = form.querySelector(".drop-row");
    if (add) {
      add.addEventListener("click", function () {
        var body = form.querySelector("tbody"), last = body.lastElementChild;
        body.appendChild(last.cloneNode(true));
      });
      drop.addEventListener("click", function () {
        var body = form.querySelector("tbody");
        if (body.children.length > 1) { body.removeChild(body.lastElementChild); }
      });
    }
  });
})();
"""
