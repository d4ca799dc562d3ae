"""`cadenza export ratings` and `cadenza export arena`: every vote with its clip's parameters (or
its arena pair's models and prompt), as CSV or JSON, via the CLI."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import mido
import pytest

from cadenza.store import Store
from cadenza.store_rows import NewClip

T0 = datetime(2024, 6, 1, 9, 30, tzinfo=UTC)


def midi_bytes() -> bytes:
    track = mido.MidiTrack([mido.Message("note_on", note=64, velocity=80, time=0),
                            mido.Message("note_off", note=64, velocity=0, time=240)])
    song = mido.MidiFile(ticks_per_beat=480)
    song.tracks.append(track)
    buffer = io.BytesIO()
    song.save(file=buffer)
    return buffer.getvalue()


@pytest.fixture
async def db(tmp_path: Path) -> Path:
    """Two clips, three votes (one on the voter's own clip)."""
    path = tmp_path / "ratings.db"
    now = [T0]
    async with await Store.open(path, clock=lambda: now[0]) as store:
        await store.ensure_user(1, "alice")
        first = await store.add_clip(NewClip(
            style="blues", bars=12, tempo=96.0, key="E", meter="4/4", temperature=0.8, seed=7,
            model="lstm", midi=midi_bytes(), duration_s=30.0, user_id=1, checkpoint_sha="abc",
            params={"style": "blues", "bars": 12, "key_given": True, "model_style": "jazz"}))
        second = await store.add_clip(NewClip(
            style="celtic", bars=4, tempo=140.0, key="Dm", meter="6/8", temperature=1.0,
            seed=9, model="gru", midi=midi_bytes(), duration_s=8.5, user_id=1,
            params={"style": "celtic", "bars": 4, "note": "comma, \"quotes\" and ünïcode"}))
        now[0] = T0 + timedelta(minutes=5)
        await store.set_rating(first, 2, 4, "bob")
        await store.set_rating(first, 1, 5, "alice")
        await store.set_rating(second, 2, 3, "bob")
    return path


def cadenza(*args: str, db: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CADENZA_DB": str(db)}
    env.pop("CADENZA_TOKEN", None)
    return subprocess.run([sys.executable, "-m", "cadenza", *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=120)


def test_csv_export_has_one_row_per_vote_with_clip_parameters(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "exports" / "ratings.csv"
    done = cadenza("export", "ratings", "--format", "csv", "-o", str(out), db=db, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == f"wrote 3 rating(s) to {out}"
    table = list(csv.DictReader(out.open(encoding="utf-8", newline="")))
    assert list(table[0]) == [
        "clip_id", "user_id", "user_name", "stars", "rated_at", "updated_at", "self_vote",
        "style", "bars", "tempo", "key", "meter", "temperature", "seed", "model",
        "checkpoint_sha", "duration_s", "author_id", "clip_created_at", "params"]
    assert [(r["clip_id"], r["user_name"], r["stars"], r["self_vote"]) for r in table] == [
        ("1", "alice", "5", "1"), ("1", "bob", "4", "0"), ("2", "bob", "3", "0")]
    first = table[1]
    assert (first["style"], first["bars"], first["tempo"], first["key"], first["meter"]) == (
        "blues", "12", "96.0", "E", "4/4")
    assert (first["temperature"], first["seed"], first["model"], first["checkpoint_sha"]) == (
        "0.8", "7", "lstm", "abc")
    assert first["rated_at"] == "2024-06-01T09:35:00.000000Z"
    assert first["clip_created_at"] == "2024-06-01T09:30:00.000000Z"
    assert json.loads(first["params"]) == {"style": "blues", "bars": 12, "key_given": True,
                                           "model_style": "jazz"}
    assert json.loads(table[2]["params"])["note"] == "comma, \"quotes\" and ünïcode"
    assert table[2]["checkpoint_sha"] == ""


def test_json_export_to_stdout_keeps_types(db: Path, tmp_path: Path) -> None:
    done = cadenza("export", "ratings", "--format", "json", db=db, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    records = json.loads(done.stdout)
    assert [(r["clip_id"], r["user_id"], r["stars"], r["self_vote"]) for r in records] == [
        (1, 1, 5, True), (1, 2, 4, False), (2, 2, 3, False)]
    assert records[2]["params"] == {"style": "celtic", "bars": 4,
                                    "note": "comma, \"quotes\" and ünïcode"}
    assert (records[2]["meter"], records[2]["duration_s"], records[2]["checkpoint_sha"]) == (
        "6/8", 8.5, None)


def test_bad_export_requests_fail_clearly_and_write_nothing(tmp_path: Path) -> None:
    missing = cadenza("export", "ratings", db=tmp_path / "none.db", cwd=tmp_path)
    assert missing.returncode == 2
    assert missing.stderr == f"error: no database at {tmp_path / 'none.db'} (set CADENZA_DB or " \
                             "--db)\n"
    assert not (tmp_path / "none.db").exists()
    wrong = cadenza("export", "ratings", "--format", "xlsx", db=tmp_path / "none.db",
                    cwd=tmp_path)
    assert wrong.returncode == 2 and "invalid choice: 'xlsx'" in wrong.stderr


def test_unwritable_target_fails_cleanly(db: Path, tmp_path: Path) -> None:
    # A folder where the file should go: the export is refused and nothing is left behind.
    target = tmp_path / "ratings.json"
    target.mkdir()
    (target / "keep.txt").write_text("unrelated")
    done = cadenza("export", "ratings", "--format", "json", "-o", str(target), db=db,
                   cwd=tmp_path)
    assert done.returncode == 2 and done.stderr.startswith(f"error: cannot write {target}: ")
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr
    assert (target / "keep.txt").read_text() == "unrelated"
    assert not list(tmp_path.glob("*.tmp"))


# ---------------------------------------------------------------------------------------------
# export arena


@pytest.fixture
async def arena_db(tmp_path: Path) -> Path:
    """The literal arena vote set of test_arena_store, one vote revealed."""
    from test_arena_store import literal_votes

    path = tmp_path / "arena.db"
    async with await Store.open(path) as store:
        await literal_votes(store)
        await store.reveal_arena(2, 11)
    return path


def test_arena_export_has_one_row_per_vote_with_pair_models_and_prompt(
        arena_db: Path, tmp_path: Path) -> None:
    out = tmp_path / "arena.csv"
    done = cadenza("export", "arena", "--format", "csv", "-o", str(out), db=arena_db,
                   cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr.strip() == f"wrote 16 arena vote(s) to {out}"
    table = list(csv.DictReader(out.open(encoding="utf-8", newline="")))
    assert list(table[0]) == [
        "pair_id", "user_id", "user_name", "choice", "winner", "voted_at", "updated_at",
        "revealed_at", "model_a", "model_b", "clip_a", "clip_b", "style", "bars", "tempo", "key",
        "meter", "seed", "requested_by", "pair_created_at"]
    assert [(r["pair_id"], r["user_id"], r["choice"], r["winner"]) for r in table[:6]] == [
        ("1", "10", "a", "lstm"), ("1", "11", "a", "lstm"), ("1", "12", "tie", ""),
        ("1", "13", "bad", ""), ("1", "15", "a", "lstm"), ("2", "10", "a", "gru")]
    revealed = table[6]
    assert (revealed["pair_id"], revealed["user_name"], revealed["winner"]) == ("2", "user11",
                                                                                "vae")
    assert revealed["revealed_at"].endswith("Z") and table[5]["revealed_at"] == ""
    assert (revealed["model_a"], revealed["model_b"], revealed["clip_a"], revealed["clip_b"],
            revealed["style"], revealed["bars"], revealed["key"], revealed["meter"]) == (
        "gru", "vae", "3", "4", "jazz", "2", "F", "4/4")


def test_arena_json_export_keeps_types_and_ratings_export_is_unchanged(
        arena_db: Path, tmp_path: Path) -> None:
    done = cadenza("export", "arena", "--format", "json", db=arena_db, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    records = json.loads(done.stdout)
    assert len(records) == 16
    assert records[0] == {**records[0], "pair_id": 1, "user_id": 10, "choice": "a",
                          "winner": "lstm", "tempo": 132.0, "seed": 77, "revealed_at": None}
    assert [r["winner"] for r in records if r["pair_id"] == 5] == [None]  # both bad
    ratings = cadenza("export", "ratings", "--format", "json", db=arena_db, cwd=tmp_path)
    assert ratings.returncode == 0 and json.loads(ratings.stdout) == []
