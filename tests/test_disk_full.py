"""A disk that fills up mid-run (or is full from the start) ends in one line naming the path,
never a traceback; no partial file is left looking like an artifact; metrics.json never
stays "running"; and the run, moved to a bigger disk, finishes with --resume.

The real-disk tests mount a small tmpfs (root only; skipped elsewhere, saying why)."""

from __future__ import annotations

import errno
import io
import shutil
from pathlib import Path

import pytest

from harness.cli.main import main
from harness.launch.base import RunnerOutput
from harness.run.rundir import RunDir
from harness_contract import events
from harness_contract.fs.atomic import write_bytes_atomic
from harness_contract.metrics import read_metrics
from tests.cli_output import one_error_line
from tests.numpy_runner import QUICK, use_numpy_runners
from tests.small_disk import fill, small_disk

pytest_plugins = ("tests.run_fixtures",)

MIB = 2**20


def _sets(*extra: str) -> list[str]:
    return [arg for s in [*QUICK, *extra] for arg in ("--set", s)]


def _leftovers(folder: Path) -> list[str]:
    """Temporary or partial files: anything a reader could take for an artifact by mistake."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.name.startswith("."))


# ---------------------------------------------------------------- pieces


def test_an_atomic_write_on_a_full_disk_names_the_file_and_leaves_nothing(
    tmp_path: Path,
) -> None:
    with small_disk(tmp_path / "disk", "256k") as disk:
        target = disk / "model.bin"
        with pytest.raises(OSError) as caught:
            write_bytes_atomic(target, b"x" * MIB)
        assert caught.value.errno == errno.ENOSPC
        assert caught.value.filename == str(target)  # the OS names no file for a write()
        assert list(disk.iterdir()) == []


def test_a_runner_log_that_cannot_be_written_does_not_stop_the_pump() -> None:
    class FullLog(io.StringIO):
        def write(self, text: str) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

    seen: list[dict] = []
    output = RunnerOutput(FullLog(), seen.append)

    output.feed(f'{events.MARKER}{{"event": "phase", "phase": "ptq", "state": "start"}}\n')
    output.feed("plain line\n")

    assert [e["event"] for e in seen] == ["phase"]  # events still reach the display
    assert output.last == ["plain line"]
    assert output.log_error is not None and output.log_error.errno == errno.ENOSPC


def test_latency_samples_on_a_full_disk_leave_no_partial_npy(tmp_path: Path) -> None:
    from harness_contract.data.cifar import load_cifar10, write_synthetic
    from harness_contract.layout import FrameworkDir
    from harness_contract.spec import build_spec
    from harness_contract.study.measurement import Measurement
    from tests.numpy_framework import NumpyFramework

    data = load_cifar10(write_synthetic(tmp_path / "d", train_per_batch=50, test_count=100))
    spec = build_spec("smoke", None, QUICK)
    fw = NumpyFramework()
    fw.setup(spec, 1)
    model = fw.build(None)
    with small_disk(tmp_path / "disk", "64k") as disk:
        out = FrameworkDir(disk / "pytorch")
        measurement = Measurement(fw, data, spec.measure, out, 1)
        out.artifacts.mkdir(parents=True)
        fill(disk)
        with pytest.raises(OSError) as caught:
            measurement.latency(model, "baseline", 1, 1)
        assert caught.value.errno == errno.ENOSPC
        assert list(out.artifacts.iterdir()) == []


def test_a_torch_model_saved_on_a_full_disk_leaves_no_partial_file(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("torchao")
    from harness_contract.spec import build_spec
    from torch_runner.runner import TorchFramework

    spec = build_spec("smoke", overrides=["device=cpu"])
    fw = TorchFramework()
    fw.setup(spec, threads=1)
    model = fw.build(None)
    with small_disk(tmp_path / "disk", "1m") as disk:  # the smoke model is 2.7 MiB
        with pytest.raises(OSError) as caught:
            fw.save(model, disk, "baseline")
        assert caught.value.errno == errno.ENOSPC
        assert caught.value.filename == str(disk / "baseline.pt")
        assert list(disk.iterdir()) == []
        del caught  # the test's own hold on the error; the space is back without it
        assert shutil.disk_usage(disk).used < 64 << 10  # the partial file is closed too


def test_a_keras_model_saved_on_a_full_disk_leaves_no_partial_file(tmp_path: Path) -> None:
    pytest.importorskip("tensorflow")
    from harness_contract.spec import build_spec
    from tf_runner.runner import TFFramework

    spec = build_spec("smoke", overrides=["device=cpu", "tensorflow.runtimes=[]"])
    fw = TFFramework()
    fw.setup(spec, threads=1)
    model = fw.build(None)
    with small_disk(tmp_path / "disk", "1m") as disk:
        with pytest.raises(OSError) as caught:
            fw.save(model, disk, "baseline")
        assert caught.value.errno == errno.ENOSPC
        assert list(disk.iterdir()) == []
        del caught
        assert shutil.disk_usage(disk).used < 64 << 10


# ---------------------------------------------------------------- whole runs


def test_a_disk_that_fills_mid_run_ends_in_one_line_and_resume_elsewhere_finishes_it(
    tmp_path: Path,
    tiny_data: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    use_numpy_runners(monkeypatch)
    monkeypatch.setenv("NUMPY_RUNNER_PAD", str(2 * MIB))  # the first model file cannot fit
    with small_disk(tmp_path / "disk", "1m") as disk:
        code = main(["run", "pytorch", "--data", str(tiny_data), "--results", str(disk),
                     "--run-id", "r", *_sets()])  # fmt: skip

        captured = capsys.readouterr()
        line = one_error_line(captured.err)
        assert "Exception in thread" not in captured.err
        assert code == 2, captured.err
        model = disk / "r" / "pytorch" / "artifacts" / "baseline.npz"
        assert f"{model}: no space left on the device" in line
        assert "free space there" in line and "--resume" in line
        assert "study complete" not in captured.out
        assert _leftovers(disk / "r") == []
        assert not model.exists()
        metrics = read_metrics(disk / "r" / "pytorch" / "metrics.json")
        assert metrics.status == "failed" and "no space left" in (metrics.error or "").lower()
        bigger = tmp_path / "bigger"
        shutil.copytree(disk / "r", bigger / "r")

    monkeypatch.setenv("NUMPY_RUNNER_PAD", "0")
    code = main(["run", "pytorch", "--resume", str(bigger / "r")])

    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert read_metrics(RunDir(bigger / "r").framework("pytorch").metrics).outcome == "complete"


def test_a_disk_full_from_the_start_ends_in_one_line_naming_the_path(
    tmp_path: Path,
    tiny_data: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    use_numpy_runners(monkeypatch)
    with small_disk(tmp_path / "disk", "256k") as disk:
        (disk / "results").mkdir()
        fill(disk)

        code = main(["run", "pytorch", "--data", str(tiny_data),
                     "--results", str(disk / "results"), *_sets()])  # fmt: skip

        line = one_error_line(capsys.readouterr().err)
        assert code == 2
        assert f"{disk / 'results'}/" in line and "no space left on the device" in line
        assert "free space there" in line
        assert list((disk / "results").iterdir()) == []  # no half-made run directory


def test_a_runner_that_left_metrics_running_is_recorded_failed_even_on_a_full_disk(
    tmp_path: Path, tiny_data: Path, fake_runners, capsys: pytest.CaptureFixture[str]
) -> None:
    """The runner died (here: crash) leaving 'running'; the disk is then too full for the
    host to rewrite metrics.json: the stale file is moved aside, never left 'running'."""
    fake_runners.setenv("FAKE_RUNNER", "crash")

    def full(path, data):  # noqa: ANN001, ANN202
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    fake_runners.setattr("harness_contract.metrics.write_json_atomic", full)
    results = tmp_path / "results"
    code = main(["run", "pytorch", "--data", str(tiny_data), "--results", str(results),
                 "--run-id", "r"])  # fmt: skip

    err = capsys.readouterr().err
    assert code == 1, err
    fw = RunDir(results / "r").framework("pytorch")
    assert not fw.metrics.exists()
    (stale,) = fw.path.glob("metrics*.json")
    assert read_metrics(stale).status == "running"  # kept, as evidence, under another name
    assert "no space left" in err and str(fw.metrics) in err
