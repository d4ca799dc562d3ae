"""`cadenza models` lists installed checkpoints with their figures; `train` refuses bad input."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


def _run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "cadenza", *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=120)


def test_models_lists_every_installed_checkpoint(tiny_models: Path, tmp_path: Path) -> None:
    env = dict(os.environ, CADENZA_MODELS=str(tiny_models))
    res = _run(["models"], env, tmp_path)
    assert res.returncode == 0, res.stderr
    names = [line.split()[0] for line in res.stdout.splitlines() if not line.startswith(" ")]
    assert {"lstm", "gru", "rnn", "vae", "gan"} <= set(names)
    assert "params" in res.stdout and "MB" in res.stdout


def test_train_refuses_a_missing_data_folder(tmp_path: Path) -> None:
    res = _run(["train", "--model", "gru", "--data", str(tmp_path / "nope"), "--out",
                str(tmp_path)], dict(os.environ), tmp_path)
    assert res.returncode == 2
    assert res.stderr.startswith("error: --data folder not found")


def test_train_refuses_to_overwrite_a_checkpoint_without_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from cadenza.cli import main

    existing = tmp_path / "lstm" / "model.pt"
    existing.parent.mkdir()
    existing.write_bytes(b"shipped")
    missing = str(tmp_path / "nope")
    assert main(["train", "--model", "lstm", "--out", str(tmp_path), "--data", missing]) == 2
    err = capsys.readouterr().err
    assert err == (f"error: {existing} already exists: train under another --name or --out, "
                   "or pass --force to overwrite it\n")
    assert existing.read_bytes() == b"shipped"
    # A new name, or --force, gets past the check (and stops at the missing data folder).
    for extra in (["--name", "lstm2"], ["--force"]):
        assert main(["train", "--model", "lstm", "--out", str(tmp_path), "--data", missing,
                     *extra]) == 2
        assert capsys.readouterr().err.startswith("error: --data folder not found")


@pytest.mark.parametrize(("flags", "choruses", "spelled"), [
    ([], True, True),
    (["--no-form-choruses"], False, True),
    (["--no-spelled-returns"], True, False),
])
def test_train_flags_leave_the_derived_sequences_out(tmp_path: Path, flags: list[str],
                                                     choruses: bool, spelled: bool) -> None:
    from cadenza.cli import build_parser
    from cadenza.cli_models import _train_options

    args = build_parser().parse_args(["train", "--model", "gru", *flags])
    opts = _train_options(args, tmp_path / "m.pt")
    assert (opts.cell, opts.form_choruses, opts.spelled_returns) == ("gru", choruses, spelled)
