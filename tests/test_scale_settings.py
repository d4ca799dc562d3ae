"""Scale-out settings: which shards a gateway runs, and the Ray Serve placement, each refused
with one line when wrong."""

from __future__ import annotations

import pytest

from cadenza.cli import build_parser, settings_from
from cadenza.config import Settings, parse_shard_ids
from cadenza.errors import UserError


@pytest.mark.parametrize(("raw", "ids"), [
    ("0-3", (0, 1, 2, 3)), ("4", (4,)), ("0-1,6", (0, 1, 6)), (" 5, 2 ", (2, 5)),
])
def test_shard_ids_are_ranges_and_lists(raw: str, ids: tuple[int, ...]) -> None:
    assert parse_shard_ids(raw) == ids


@pytest.mark.parametrize(("raw", "says"), [
    ("a-b", "like 0-3"), ("3-1", "runs backwards"), ("1,1", "twice"), ("-2", "like 0-3"),
])
def test_bad_shard_ids_say_what_is_wrong(raw: str, says: str) -> None:
    with pytest.raises(UserError, match=says):
        parse_shard_ids(raw)


def test_run_takes_its_shards_from_flags_or_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    args = build_parser().parse_args(["run", "--shard-ids", "0-3", "--shard-count", "8"])
    settings = settings_from(args)
    assert settings.shard_ids == (0, 1, 2, 3) and settings.shard_count == 8
    env = Settings.from_env({"CADENZA_SHARD_IDS": "4-7", "CADENZA_SHARD_COUNT": "8",
                             "CADENZA_SERVE": "10.0.0.5:6379"})
    assert env.shard_ids == (4, 5, 6, 7) and env.shard_count == 8
    assert env.serve == "10.0.0.5:6379"
    plain = Settings.from_env({})
    assert plain.shard_ids is None and plain.shard_count is None and plain.serve is None


def test_shards_need_a_count_that_covers_them() -> None:
    with pytest.raises(UserError, match="needs --shard-count"):
        Settings.from_env({"CADENZA_SHARD_IDS": "0-1"})
    with pytest.raises(UserError, match="shard 8 does not exist"):
        Settings.from_env({"CADENZA_SHARD_IDS": "4-8", "CADENZA_SHARD_COUNT": "8"})
    with pytest.raises(UserError, match="CADENZA_SHARD_COUNT"):
        Settings.from_env({"CADENZA_SHARD_COUNT": "zero"})


def test_serve_placement_from_environment() -> None:
    pytest.importorskip("ray.serve")
    from cadenza.serve_workers import placement_from_env

    models = ["gan", "lstm", "vae"]
    default = placement_from_env(models, {})
    assert default.models == tuple(models) and default.render_replicas == 2
    custom = placement_from_env(models, {
        "CADENZA_SERVE_MODELS": "lstm,vae", "CADENZA_SERVE_RENDER_REPLICAS": "4",
        "CADENZA_SERVE_REPLICA_CPUS": "0.5", "CADENZA_SERVE_MAX_QUEUED": "10"})
    assert custom.models == ("lstm", "vae") and custom.render_replicas == 4
    assert custom.replica_cpus == 0.5 and custom.max_queued == 10
    with pytest.raises(UserError, match="not installed: gpt"):
        placement_from_env(models, {"CADENZA_SERVE_MODELS": "gpt"})
    with pytest.raises(UserError, match="CADENZA_SERVE_RENDER_REPLICAS"):
        placement_from_env(models, {"CADENZA_SERVE_RENDER_REPLICAS": "0"})
    with pytest.raises(UserError, match="CADENZA_SERVE_REPLICA_CPUS"):
        placement_from_env(models, {"CADENZA_SERVE_REPLICA_CPUS": "lots"})


@pytest.mark.parametrize(("render", "models", "cpus"), [(2, 1, 2), (2, 3, 2), (5, 2, 3), (2, 1, 1)])
def test_a_local_cluster_shares_its_cpus_so_every_replica_fits(
        render: int, models: int, cpus: int) -> None:
    pytest.importorskip("ray.serve")
    from cadenza.serve_app import Placement
    from cadenza.serve_workers import fit_local

    asked = Placement(models=tuple(f"m{i}" for i in range(models)), render_replicas=render)
    fitted = fit_local(asked, cpus)
    replicas = render + models
    assert fitted.replica_cpus * replicas <= cpus  # Serve would wait for ever otherwise
    assert fitted.replica_cpus >= cpus / replicas - 0.001
    assert fit_local(Placement(models=("lstm",), replica_cpus=0.5), 2).replica_cpus == 0.5
