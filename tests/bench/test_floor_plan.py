"""The floor stages of bench/scenarios/plan.py: pygrpc-native's bare floor runs
beside grpc.aio's with the same drivers where it is installed, and is skipped
with a note where it is not."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bench.runner import RunSettings
from bench.scenarios import plan


def settings(workdir: Path) -> RunSettings:
    return RunSettings(
        quick=True, duration_s=1.0, warmup_s=0.5, concurrency=(1, 16, 64),
        rate_fractions=(0.5,), workdir=workdir, fanout_subscribers=10,
        fanout_trades_per_s=20.0, batch_size=20, batch_concurrency=2, open_warmup_s=1.0,
        costs_rounds=1, costs_duration_s=0.5,
    )  # fmt: skip


def test_pygrpc_native_gets_a_floor_stage_when_installed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(plan, "native_version", lambda: "0.5.0")
    stages = plan.build(settings(tmp_path), ["floor"], tmp_path / "certs")
    assert [s.name for s in stages] == ["floor grpc", "floor grpc (pygrpc-native)", "floor rest"]
    variants = [s.make().variant for s in stages]  # made, not started
    assert variants == ["bare grpc.aio", "bare pygrpc-native", "bare aiohttp+orjson"]
    # The same steps on each: the C generator at 1, 16, 64 and the Python client at 16.
    assert {len(s.steps) for s in stages} == {4}


def test_without_pygrpc_native_its_floor_is_skipped_with_a_note(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(plan, "native_version", lambda: None)
    with caplog.at_level(logging.WARNING, logger=plan.__name__):
        stages = plan.build(settings(tmp_path), ["floor"], tmp_path / "certs")
    assert [s.name for s in stages] == ["floor grpc", "floor rest"]
    assert caplog.messages == [plan.NATIVE_SKIPPED]
    assert "pip install -e '.[native]'" in plan.NATIVE_SKIPPED
