from __future__ import annotations

from dataclasses import FrozenInstanceError, dataclass

import pytest
import torch

from dgm.profiles import (
    PROFILES,
    ByProfile,
    RunLog,
    check_profile,
    current_profile,
    default_device,
    device_name,
    run_card,
)


@dataclass(frozen=True)
class Settings:
    epochs: int


TABLE = ByProfile(smoke=Settings(1), cpu=Settings(5), gpu=Settings(20))


def test_profile_from_environment():
    for name in PROFILES:
        assert current_profile({"DGM_PROFILE": name}) == name
    assert current_profile({"DGM_PROFILE": " cpu "}) == "cpu"


def test_default_profile_follows_hardware():
    expected = "gpu" if torch.cuda.is_available() else "cpu"
    assert current_profile({}) == expected
    assert current_profile({"DGM_PROFILE": ""}) == expected


def test_unknown_profile_lists_valid_ones():
    with pytest.raises(ValueError) as e:
        current_profile({"DGM_PROFILE": "fast"})
    assert "'fast'" in str(e.value) and "smoke, cpu, gpu" in str(e.value)
    with pytest.raises(ValueError, match="smoke, cpu, gpu"):
        TABLE.get("laptop")


def test_by_profile_picks_values(monkeypatch):
    assert TABLE.get("smoke").epochs == 1 and TABLE.get("gpu").epochs == 20
    monkeypatch.setenv("DGM_PROFILE", "cpu")
    assert TABLE.get() == Settings(5)
    with pytest.raises(FrozenInstanceError):
        TABLE.get().epochs = 3  # type: ignore[misc]


def test_device_helpers():
    assert default_device().type == ("cuda" if torch.cuda.is_available() else "cpu")
    assert device_name("cpu").startswith("cpu (")
    assert check_profile("smoke") == "smoke"


def test_run_log_times_trainings():
    log = RunLog()
    with log.training("multivariate", epochs=3):
        sum(range(100_000))
    log.record("loaded", epochs=0, wall_time_s=0.0)
    assert [t.name for t in log.trainings] == ["multivariate", "loaded"]
    assert log.trainings[0].wall_time_s > 0
    with pytest.raises(ValueError, match="already"):
        log.record("loaded", 1, 1.0)
    with pytest.raises(ValueError):
        log.record("negative", -1, 1.0)


def test_run_log_does_not_record_a_failed_training():
    log = RunLog()
    with pytest.raises(RuntimeError):
        with log.training("broken", epochs=1):
            raise RuntimeError("diverged")
    assert log.trainings == []


def test_run_card_values_and_markdown():
    log = RunLog()
    log.record("a", 2, 1.25)
    log.record("b", 3, 2.5)
    card = run_card("2d Gaussians", log, profile="smoke", device="cpu")
    d = card.as_dict()
    assert d["run_profile"] == "smoke"
    assert d["run_dataset"] == "2d Gaussians"
    assert d["run_torch"] == torch.__version__
    assert d["run_epochs_b"] == 3 and d["run_time_s_a"] == 1.2 or d["run_time_s_a"] == 1.3
    assert d["run_total_time_s"] == pytest.approx(3.8, abs=0.05)
    md = card._repr_markdown_()
    assert "`smoke`" in md and "2d Gaussians" in md and "3 epochs" in md
    with pytest.raises(ValueError, match="data set"):
        run_card("", log)
    with pytest.raises(ValueError, match="valid profiles"):
        run_card("x", log, profile="turbo")
