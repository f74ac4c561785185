"""``mlem deployment run|status|remove`` through the real CLI entry point."""

from __future__ import annotations

import json

from mlem_lib.cli import main
from tests.conftest import free_port


def test_run_status_remove(declare, removed_after, saved_lr, capsys):
    decl = removed_after(declare("cli", type="local", runtime="process", port=free_port()))
    assert main(["deployment", "run", decl, "--model", saved_lr]) == 0
    out = capsys.readouterr().out
    assert out.startswith("cli: model ") and "http://127.0.0.1:" in out

    assert main(["deployment", "status", decl]) == 0
    assert "healthy" in capsys.readouterr().out
    assert main(["deployment", "status", decl, "--json"]) == 0
    st = json.loads(capsys.readouterr().out)
    assert st["healthy"] is True and st["type"] == "local"

    assert main(["deployment", "remove", decl]) == 0
    capsys.readouterr()
    assert main(["deployment", "status", decl]) == 1  # not deployed: non-zero for scripts
    assert "not deployed" in capsys.readouterr().out


def test_errors_are_one_line(declare, saved_lr, capsys, tmp_path):
    bad = declare("bad", type="local", port="eighty")
    assert main(["deployment", "run", bad, "--model", saved_lr]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "field 'port'" in err and len(err.splitlines()) == 1
    assert main(["deployment", "run", str(tmp_path / "missing.yaml"), "-m", saved_lr]) == 1
    assert "no deployment declaration" in capsys.readouterr().err


def test_help_explains(capsys):
    import pytest

    with pytest.raises(SystemExit):
        main(["deployment", "run", "--help"])
    out = capsys.readouterr().out
    assert "--model" in out and "schema" in out
