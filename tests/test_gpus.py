"""`--gpus` text -> the SDK's DeviceRequest objects and the NVIDIA environment."""

from __future__ import annotations

import sys

import pytest

from harness.launch.gpus import NO_GPUS, GpuRequest, parse_gpus
from harness_contract.errors import HarnessError

docker_types = pytest.importorskip("docker.types", reason="docker SDK not installed")


def _plain(requests: list) -> list[dict]:
    # DeviceRequest is a dict subclass: compare what goes to the engine's API.
    return [dict(r) for r in requests]


def test_all_is_every_gpu_like_docker_run() -> None:
    req = parse_gpus("all")
    expected = docker_types.DeviceRequest(count=-1, capabilities=[["gpu"]])
    assert _plain(req.device_requests()) == [dict(expected)]
    assert all(isinstance(r, docker_types.DeviceRequest) for r in req.device_requests())
    assert req.environment() == {
        "NVIDIA_VISIBLE_DEVICES": "all",
        "NVIDIA_DRIVER_CAPABILITIES": "compute,utility",
    }
    assert req.wants_gpu and req.spec_device() == "cuda"


def test_count_asks_for_n_gpus() -> None:
    req = parse_gpus("2")
    assert req == GpuRequest("count", count=2)
    expected = docker_types.DeviceRequest(count=2, capabilities=[["gpu"]])
    assert _plain(req.device_requests()) == [dict(expected)]
    assert req.device_requests()[0].count == 2
    assert req.environment()["NVIDIA_VISIBLE_DEVICES"] == "0,1"


@pytest.mark.parametrize("text", ["0,1", "device=0,1", " 0 , 1 ", "0,1,1"])
def test_ids_name_devices(text: str) -> None:
    req = parse_gpus(text)
    assert req.device_ids == ("0", "1")
    [request] = req.device_requests()
    assert request.device_ids == ["0", "1"]
    assert request.count == 0 and request.capabilities == [["gpu"]]
    assert req.environment()["NVIDIA_VISIBLE_DEVICES"] == "0,1"


def test_single_device_and_uuid_forms() -> None:
    assert parse_gpus("device=1").device_ids == ("1",)
    uuid = "GPU-9a1b2c3d-0000-1111-2222-333344445555"
    assert parse_gpus(uuid).device_requests()[0].device_ids == [uuid]
    assert parse_gpus("1") == GpuRequest("count", count=1)  # like docker: a bare number counts


@pytest.mark.parametrize("text", ["none", "NONE", "", None, "0"])
def test_none_requests_nothing_and_hides_gpus(text: str | None) -> None:
    req = parse_gpus(text)
    assert req == NO_GPUS
    assert req.device_requests() == []
    assert req.environment()["NVIDIA_VISIBLE_DEVICES"] == "void"
    assert not req.wants_gpu and req.spec_device() == "cpu"


@pytest.mark.parametrize("text", ["some", "-1", "1.5", "0,,1", "all,0", "device=", "gpu:0"])
def test_invalid_text_is_one_clear_line(text: str) -> None:
    with pytest.raises(HarnessError) as info:
        parse_gpus(text)
    line = info.value.one_line()
    assert f"'{text}'" in line and "all, none" in line and "0,1" in line
    assert "\n" not in line


def test_parsing_does_not_import_docker(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m == "docker" or m.startswith("docker.")]:
        monkeypatch.delitem(sys.modules, name)
    parse_gpus("all").environment()
    assert "docker" not in sys.modules
