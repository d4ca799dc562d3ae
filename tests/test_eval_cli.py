"""`cadenza eval` from the command line: --models, --styles, --clips, --bars, --data and
--no-corpus on tiny models and a style-corpus fixture; bad arguments refused with one line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_style_corpus import make_fixture


def test_eval_runs_the_asked_models_styles_and_clips(tiny_models: Path, tmp_path: Path) -> None:
    corpus = make_fixture(tmp_path / "style-corpus")
    out = tmp_path / "report"
    env = dict(os.environ, CADENZA_MODELS=str(tiny_models), CADENZA_CACHE=str(tmp_path / "c"),
               OMP_NUM_THREADS="1")
    res = subprocess.run(
        [sys.executable, "-m", "cadenza", "eval", "--out", str(out), "--models", "gru,lstm",
         "--styles", "jazz,ragtime", "--clips", "2", "--bars", "2", "--data", str(corpus),
         "--no-corpus"], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == str(out / "report.md")
    assert "loading the offline corpus" not in res.stderr  # --no-corpus
    results = json.loads((out / "results.json").read_text())
    st = results["settings"]
    assert st["models"] == ["gru", "lstm", "untrained"] and st["styles"] == ["jazz", "ragtime"]
    assert (st["clips"], st["bars"], st["baseline"]) == (2, 2, "untrained")
    # the report names the command line that made it
    assert st["command"].startswith("cadenza eval --out ") and "--clips 2" in st["command"]
    assert f"Made by `{st['command']}`." in (out / "report.md").read_text()
    for m in st["models"]:
        assert set(results["generated"][m]) == {"jazz", "ragtime"}
        assert all(g["clips"] == 2 for g in results["generated"][m].values())
    # the fixture's NC rag is an evaluation-only reference; one of its WJD solos is held out
    assert results["real"]["ragtime"]["sources"] == {"joplin-nc": 1}
    assert results["real"]["jazz"]["per_piece"] == {"wjd:Tester_Rhythm": 2}
    listen = (out / "listen.md").read_text()
    assert "cadenza compose --style ragtime --bars 2 --seed" in listen


@pytest.mark.parametrize(("args", "message"), [
    (["--styles", "polka"], "unknown style 'polka'"),
    (["--models", "nope"], "unknown model 'nope'"),
    (["--clips", "1"], "clips must be 2-"),
    (["--data", "{tmp}/nowhere"], "is not the style corpus"),
])
def test_eval_refuses_bad_arguments_in_one_line(
        args: list[str], message: str, tiny_models: Path, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from cadenza.cli import main

    monkeypatch.setenv("CADENZA_MODELS", str(tiny_models))
    out = tmp_path / "never"
    code = main(["eval", "--out", str(out), *(a.format(tmp=tmp_path) for a in args)])
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and message in err
    assert len(err.strip().splitlines()) == 1 and not out.exists()
