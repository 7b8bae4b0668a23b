"""`harness traces`: every profiler pass of a run, with the command that opens it or why not."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.cli.main import main
from harness.report import write_report
from harness.results.traces import list_traces, render_text, trace_entries, viewer_command
from harness_contract.data.cifar import load_cifar10, write_synthetic
from harness_contract.metrics import VariantMetrics
from harness_contract.spec import build_spec
from harness_contract.study.pipeline import Study
from tests.numpy_framework import NumpyFramework
from tests.test_report import _baseline, _profile, _ptq, _qat, _unavailable, make_metrics, write_run

TFLITE_REASON = "TFLite int8 has no per-op profiler in Python"


@pytest.fixture(autouse=True)
def _restore_signal_handlers() -> Iterator[None]:
    """harness.cli.main.main installs SIGINT/SIGTERM handlers; give pytest its own back."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def _tensorflow_like() -> list[VariantMetrics]:
    """TensorBoard log dirs for the Keras passes; LiteRT int8 inference has no profiler."""
    base = _baseline().model_copy(
        update={
            "profiles": [
                _profile("baseline", "train", framework="tensorflow"),
                _profile("baseline", "inference", framework="tensorflow"),
            ]
        }
    )
    ptq = _ptq().model_copy(update={"profiles": [_unavailable("inference", TFLITE_REASON)]})
    qat = _qat().model_copy(
        update={
            "profiles": [
                _profile("qat", "train", framework="tensorflow"),
                _unavailable("inference", TFLITE_REASON),
            ]
        }
    )
    return [base, ptq, qat]


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """Both frameworks; every trace on disk except PyTorch's QAT inference trace."""
    run = write_run(
        tmp_path / "run",
        make_metrics("pytorch"),
        make_metrics("tensorflow", variants=_tensorflow_like()),
    )
    (run / "spec.json").write_text("{}")
    torch_traces = run / "pytorch" / "traces"
    torch_traces.mkdir()
    for name in ("baseline-train", "baseline-inference", "ptq-inference", "qat-train"):
        (torch_traces / f"{name}.pt.trace.json").write_text('{"traceEvents": []}' + " " * 100)
    for name in ("baseline-train", "baseline-inference", "qat-train"):
        plugin = run / "tensorflow" / "traces" / name / "plugins" / "profile" / "2026_11_01"
        plugin.mkdir(parents=True)
        (plugin / "host.xplane.pb").write_bytes(b"x" * 1000)
        (plugin / "host.trace.json.gz").write_bytes(b"y" * 24)
    return run


def _entry(entries, framework: str, variant: str, kind: str | None):
    (match,) = [
        e for e in entries if (e.framework, e.variant, e.kind) == (framework, variant, kind)
    ]
    return match


# ---------------------------------------------------------------- the listing


def test_every_pass_of_every_framework_is_listed_in_order(run_dir: Path) -> None:
    listing = list_traces(run_dir)

    assert [(e.framework, e.variant, e.kind, e.status) for e in listing.entries] == [
        ("pytorch", "baseline", "train", "ok"),
        ("pytorch", "baseline", "inference", "ok"),
        ("pytorch", "ptq", "inference", "ok"),
        ("pytorch", "qat", "train", "ok"),
        ("pytorch", "qat", "inference", "missing"),
        ("tensorflow", "baseline", "train", "ok"),
        ("tensorflow", "baseline", "inference", "ok"),
        ("tensorflow", "ptq", "inference", "unavailable"),
        ("tensorflow", "qat", "train", "ok"),
        ("tensorflow", "qat", "inference", "unavailable"),
    ]
    assert listing.problems == []


def test_perfetto_traces_open_in_perfetto_with_their_absolute_path(run_dir: Path) -> None:
    e = _entry(list_traces(run_dir).entries, "pytorch", "ptq", "inference")
    path = (run_dir / "pytorch" / "traces" / "ptq-inference.pt.trace.json").resolve()

    assert e.path == path
    assert e.trace == "pytorch/traces/ptq-inference.pt.trace.json"
    assert e.size_bytes == path.stat().st_size  # measured on disk, not the recorded 2,000,000
    assert e.open_command() == (
        f"open https://ui.perfetto.dev and load {path} (or chrome://tracing)"
    )
    assert e.open_command(absolute=False) == (
        "open https://ui.perfetto.dev and load pytorch/traces/ptq-inference.pt.trace.json "
        "(or chrome://tracing)"
    )


def test_tensorboard_dirs_open_in_tensorboard_and_are_sized_over_their_files(
    run_dir: Path,
) -> None:
    e = _entry(list_traces(run_dir).entries, "tensorflow", "qat", "train")
    logdir = (run_dir / "tensorflow" / "traces" / "qat-train").resolve()

    assert e.viewer == "tensorboard"
    assert e.size_bytes == 1024
    assert e.open_command() == (
        f"tensorboard --logdir {logdir} (then the Profile tab; needs tensorboard-plugin-profile)"
    )


def test_viewer_command_quotes_a_logdir_for_the_shell() -> None:
    command = viewer_command("tensorboard", "/runs/my run/traces/x")
    assert command.startswith("tensorboard --logdir '/runs/my run/traces/x' ")


def test_a_recorded_trace_absent_on_disk_is_reported_missing(run_dir: Path) -> None:
    e = _entry(list_traces(run_dir).entries, "pytorch", "qat", "inference")

    assert e.status == "missing"
    assert e.open_command() is None
    assert "not on disk" in e.reason
    assert e.path == (run_dir / "pytorch" / "traces" / "qat-inference.pt.trace.json").resolve()


def test_unavailable_and_failed_passes_carry_their_reason_and_no_command(run_dir: Path) -> None:
    entries = list_traces(run_dir).entries
    tflite = _entry(entries, "tensorflow", "ptq", "inference")

    assert (tflite.status, tflite.reason, tflite.open_command()) == (
        "unavailable",
        TFLITE_REASON,
        None,
    )
    failed = _profile("baseline", "inference").model_copy(
        update={"status": "failed", "reason": "RuntimeError: CUPTI", "trace": None}
    )
    metrics = make_metrics(variants=[_baseline().model_copy(update={"profiles": [failed]})])
    (entry, *_) = trace_entries(metrics)
    assert (entry.status, entry.reason, entry.trace) == ("failed", "RuntimeError: CUPTI", None)


def test_variants_without_a_pass_say_why(run_dir: Path) -> None:
    failed = VariantMetrics(variant="ptq", status="failed", precision="int8", reason="boom")
    unprofiled = _qat().model_copy(update={"profiles": []})
    entries = trace_entries(make_metrics(variants=[_baseline(), failed, unprofiled]))

    assert _entry(entries, "pytorch", "ptq", None).reason == "variant failed: boom"
    assert _entry(entries, "pytorch", "ptq", None).status == "not profiled"
    assert "no profiler pass recorded" in _entry(entries, "pytorch", "qat", None).reason


def test_text_listing_names_each_trace_its_size_and_command(run_dir: Path) -> None:
    text = render_text(list_traces(run_dir))
    logdir = (run_dir / "tensorflow" / "traces" / "baseline-train").resolve()

    assert text.startswith(f"{run_dir.resolve()}: 10 profiler pass(es): 7 ok, 1 missing")
    assert "pytorch / baseline / train: ok, cpu, 4 thread(s), 3 step(s) x batch 128" in text
    assert f"  open:  tensorboard --logdir {logdir} (then the Profile tab" in text
    assert f"  why:   {TFLITE_REASON}" in text
    assert "1.0 KiB" in text  # the TensorBoard dir's 1,024 bytes
    assert "pip install tensorboard tensorboard-plugin-profile" in text


# ---------------------------------------------------------------- the command


def test_traces_command_prints_the_listing(
    run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["traces", str(run_dir)]) == 0
    out = capsys.readouterr().out

    path = (run_dir / "pytorch" / "traces" / "baseline-train.pt.trace.json").resolve()
    assert f"open https://ui.perfetto.dev and load {path}" in out
    assert "pytorch / qat / inference: missing" in out


def test_traces_json_is_machine_readable(run_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["traces", str(run_dir), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)

    assert doc["run_dir"] == str(run_dir.resolve())
    assert len(doc["traces"]) == 10
    first = doc["traces"][0]
    assert first["status"] == "ok" and first["viewer"] == "perfetto"
    assert first["open"].endswith("baseline-train.pt.trace.json (or chrome://tracing)")
    assert Path(first["path"]).is_file()
    unavailable = [t for t in doc["traces"] if t["status"] == "unavailable"]
    assert {t["reason"] for t in unavailable} == {TFLITE_REASON}
    assert all(t["open"] is None for t in unavailable)


def _one_error_line(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    code = main(list(argv))
    err = capsys.readouterr().err
    assert code == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


def test_a_missing_run_dir_is_one_line_with_the_fix(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    line = _one_error_line(capsys, "traces", str(tmp_path / "nope"))
    assert str(tmp_path / "nope") in line and "does not exist" in line
    assert "results/<run-id>" in line


def test_a_directory_that_is_not_a_run_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    line = _one_error_line(capsys, "traces", str(tmp_path))
    assert f"{tmp_path} is not a run directory" in line and "harness compare" in line


def test_a_file_is_not_a_run_dir(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    report = tmp_path / "report.md"
    report.write_text("# not a run")
    line = _one_error_line(capsys, "traces", str(report))
    assert f"{report} is not a directory" in line


def test_a_run_without_metrics_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "spec.json").write_text("{}")
    line = _one_error_line(capsys, "traces", str(tmp_path))
    assert f"no results in {tmp_path}" in line and "harness compare" in line


def test_an_unreadable_framework_is_named_and_the_others_listed(
    run_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (run_dir / "jax").mkdir()
    (run_dir / "jax" / "metrics.json").write_text("{oops")

    assert main(["traces", str(run_dir)]) == 0
    out = capsys.readouterr().out
    assert "unreadable jax:" in out and "not valid JSON" in out
    assert "pytorch / baseline / train: ok" in out


# ---------------------------------------------------------------- with a real pipeline


def test_a_numpy_study_lists_each_pass_and_the_report_agrees(tmp_path: Path) -> None:
    """End to end through the shared pipeline: whatever the numpy framework's profiler
    does (trace or 'unavailable'), each pass is listed with a command or a reason, and
    the report's Traces section says the same."""
    data = load_cifar10(write_synthetic(tmp_path / "data", train_per_batch=100, test_count=100))
    spec = build_spec(
        "smoke",
        None,
        [
            "train.epochs=1",
            "train.batch_size=50",
            "qat.epochs=1",
            "qat.batch_size=50",
            "ptq.calibration_samples=50",
            "measure.latency.batch_sizes=[1,8]",
            "measure.latency.min_count=3",
            "measure.latency.min_seconds=0",
            "measure.latency.warmup_count=1",
            "measure.latency.warmup_seconds=0",
            "measure.profile.active=1",
        ],
    )
    run = tmp_path / "run"
    Study(NumpyFramework(), spec, data, run / "numpy", "e2e", "local (test)").run(threads=1)
    (run / "spec.json").write_text(spec.to_json())

    entries = list_traces(run).entries
    report = write_report(run).md.read_text()

    assert {(e.variant, e.kind) for e in entries} == {
        ("baseline", "train"),
        ("baseline", "inference"),
        ("ptq", "inference"),
        ("qat", "train"),
        ("qat", "inference"),
    }
    traces_section = report.split("## Traces")[1].split("## Provenance")[0]
    for e in entries:
        assert e.status in ("ok", "unavailable"), (e.label, e.status, e.reason)
        if e.status == "ok":
            assert e.path is not None and e.path.exists()
            assert str(e.path) in e.open_command()
            assert e.open_command(absolute=False) in traces_section
        else:
            assert e.reason and e.reason in traces_section
