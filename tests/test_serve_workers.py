"""Ray Serve workers (cadenza.serve_app, cadenza.serve_workers) on a real local Ray cluster
(2 CPUs): the same clip as in-process serving, stages reported, requests batched, both render
replicas used, deadlines kept, and backpressure turned into the member's "busy" message."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("ray.serve")

from cadenza.app import STAGES, Cadenza
from cadenza.backends import BUSY, WorkersBusy
from cadenza.deadlines import Deadlines, StageTimeout
from cadenza.errors import ResourceError
from cadenza.jobs import Done, Failed
from cadenza.members import UserRef
from cadenza.service import ComposeRequest
from cadenza.store import Store
from cadenza.synth import find_soundfont
from cadenza.wiring import job_queue

USER = UserRef(7, "member")
QUEUED = 3  # per caller: with 2 render replicas busy, a fourth waits and the rest are refused


@pytest.fixture(scope="module")
def serve_workers(tiny_models: Path) -> Iterator[object]:
    from cadenza.serve_app import Placement, WorkerConfig, deploy
    from cadenza.serve_workers import ServeWorkers, connect_cluster, disconnect

    cluster = connect_cluster("local", cpus=2)
    try:
        deploy(WorkerConfig(models=str(tiny_models), soundfont=str(find_soundfont(None))),
               Placement(models=("lstm", "vae"), render_replicas=2, replica_cpus=0.5,
                         max_queued=QUEUED))
        yield ServeWorkers(cluster, Deadlines())
    finally:
        disconnect(cluster)


@pytest.fixture
async def serve_app(tmp_path: Path, composer, serve_workers) -> Cadenza:  # type: ignore[no-untyped-def]
    store = await Store.open(tmp_path / "cadenza.db")
    app = Cadenza(composer, store, output_dir=tmp_path / "out", clip_pool=serve_workers,
                  generator=serve_workers)
    yield app
    await app.close()
    await store.close()


async def test_a_clip_through_serve_is_the_clip_made_in_process(
        serve_app: Cadenza, app: Cadenza) -> None:
    stages: list[str] = []
    req = ComposeRequest(style="jazz", bars=2, seed=11, model="lstm")
    served = await serve_app.compose(req, USER, progress=stages.append)
    local = await app.compose(req, USER)
    assert stages == list(STAGES)  # render, encode and pianoroll stream back from the replica
    assert served.files.mid.read_bytes() == local.files.mid.read_bytes()
    mp3 = served.files.mp3.read_bytes()
    assert mp3[:3] in (b"ID3", b"\xff\xfb", b"\xff\xf3") and len(mp3) == served.files.mp3_bytes
    assert served.files.png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert served.files.mp3.parent == serve_app.output_dir  # written where the gateway keeps clips
    stored = await serve_app.store.get_clip(served.clip_id)
    assert stored is not None and stored.midi == served.files.mid.read_bytes()
    assert {"render", "encode", "pianoroll", "generate"} <= set(served.timings)


async def test_concurrent_requests_are_batched(
        serve_workers) -> None:  # type: ignore[no-untyped-def]
    from ray import serve

    from cadenza.origin import PLAIN
    from cadenza.seeds import Sources
    from cadenza.service import resolve

    handle = serve.get_app_handle("cadenza-gen-lstm")
    before = (await handle.stats.remote())["batches"]
    requests = [resolve(ComposeRequest(style="blues", bars=2, seed=s, model="lstm"))
                for s in range(6)]
    comps = await asyncio.gather(*(serve_workers.generate(r, PLAIN, Sources()) for r in requests))
    stats = await handle.stats.remote()
    new = stats["batches"][len(before):]
    assert sum(new) == 6 and max(new) > 1, new  # @serve.batch gathered them
    assert max(stats["steps"]) > 1  # and their melodies shared sampling steps
    assert len({c.midi for c, _ in comps}) == 6


async def test_a_model_that_is_not_served_is_a_resource_error(serve_workers) -> None:  # type: ignore[no-untyped-def]
    from cadenza.origin import PLAIN
    from cadenza.seeds import Sources
    from cadenza.service import resolve

    with pytest.raises(ResourceError, match="gru model is not served"):
        await serve_workers.generate(resolve(ComposeRequest(model="gru", bars=1)), PLAIN,
                                     Sources())


async def test_a_render_past_its_deadline_is_stopped_and_the_replica_serves_on(
        serve_workers, composer, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from cadenza.serve_workers import ServeWorkers

    comp = composer.compose(composer.resolve(ComposeRequest(bars=2, seed=3)))
    hasty = ServeWorkers.__new__(ServeWorkers)
    hasty.__dict__.update(serve_workers.__dict__, deadlines=Deadlines(render=0.01))
    with pytest.raises(StageTimeout, match=r"rendering the audio took longer than 0\.01 s"):
        await hasty.make_files(comp.score, comp.midi, tmp_path, "late")
    assert not list(tmp_path.glob("late.*"))
    files = await serve_workers.make_files(comp.score, comp.midi, tmp_path, "next")
    assert files.mp3.stat().st_size > 0


async def test_backpressure_is_busy_try_again_for_the_member(
        serve_app: Cadenza, composer, serve_workers) -> None:  # type: ignore[no-untyped-def]
    comp = composer.compose(composer.resolve(ComposeRequest(bars=8, seed=5)))
    out = serve_app.output_dir
    # 2 replicas render one clip each, QUEUED wait: the rest are turned away at once
    attempts = await asyncio.gather(
        *(serve_workers.make_files(comp.score, comp.midi, out, f"c{n}") for n in range(10)),
        return_exceptions=True)
    busy = [a for a in attempts if isinstance(a, WorkersBusy)]
    done = [a for a in attempts if not isinstance(a, BaseException)]
    assert busy and len(done) >= 2, attempts
    assert len(busy) + len(done) == len(attempts), attempts
    assert len(set(serve_workers.render_pids)) == 2  # both render replicas took clips
    assert all(str(b) == BUSY for b in busy)
    assert "try again in a minute" in BUSY

    # through the job queue a member hears exactly that, as their job's one failure
    jobs = job_queue(serve_app, capacity=16, per_member=1, workers=8)
    await jobs.start()
    try:
        resolve = serve_app.composer.resolve_installed
        submitted = [await jobs.submit(resolve(ComposeRequest(bars=8, seed=n)),
                                       UserRef(100 + n, f"m{n}")) for n in range(10)]
        ends = []
        for job in submitted:
            async for event in job.events():
                last = event
            ends.append(last)
    finally:
        await jobs.close()
    assert {type(e) for e in ends} <= {Done, Failed}
    failures = [e for e in ends if isinstance(e, Failed)]
    assert any(isinstance(e, Done) for e in ends)
    assert failures and all(f.message == BUSY for f in failures), ends


def test_a_render_replica_sweeps_the_folders_of_replicas_that_died_mid_render(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess
    import sys

    from cadenza.serve_app import WORK_PREFIX, _sweep_work_dirs

    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)
    dead = tmp_path / f"{WORK_PREFIX}{gone.stdout.strip()}-abc123"
    live = tmp_path / f"{WORK_PREFIX}{os.getpid()}-def456"
    other = tmp_path / "cadenza-bench-xyz"
    for folder in (dead, live, other):
        (folder / "clip.wav").parent.mkdir()
        (folder / "clip.wav").write_bytes(b"RIFF")
    _sweep_work_dirs()
    assert not dead.exists()  # its replica is gone: nothing will ever finish that render
    assert (live / "clip.wav").exists() and (other / "clip.wav").exists()
