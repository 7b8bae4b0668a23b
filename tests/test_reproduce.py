"""`harness reproduce RUN_DIR` with the fake runner: a reproduced run exits 0, a damaged
original or other bits exit 1 naming what differs (and why, from the recorded context),
every bad input is one line and exit 2, and the original is never modified."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.cli.main import main
from harness.run import owner_lock as lock
from harness.run.rundir import RunDir
from harness_contract.data.cifar import write_synthetic
from tests.cli_output import one_error_line
from tests.fake_runner import CLI_DRIVER

pytest_plugins = ("tests.run_fixtures",)


def snapshot(root: Path) -> dict[str, tuple]:
    """Every file and folder under ``root`` with its mtime (and a file's size and digest)."""
    out: dict[str, tuple] = {".": (root.stat().st_mtime_ns,)}
    for path in sorted(root.rglob("*")):
        stat = path.stat()
        rel = str(path.relative_to(root))
        if path.is_dir():
            out[rel] = (stat.st_mtime_ns,)
        else:
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            out[rel] = (stat.st_mtime_ns, stat.st_size, digest)
    return out


@pytest.fixture
def original(tmp_path: Path, tiny_data: Path, fake_runners, capsys) -> RunDir:
    """A finished compare of both frameworks (deterministic fake artifacts)."""
    results = tmp_path / "results"
    argv = ["compare", "--data", str(tiny_data), "--results", str(results), "--run-id", "r"]
    assert main(argv) == 0, capsys.readouterr().err
    capsys.readouterr()
    return RunDir(results / "r")


def _repro(run: RunDir, n: int = 1) -> RunDir:
    return RunDir(run.path.parent / f"{run.run_id}-repro-{n}")


def _reproduce(run: RunDir | Path, *extra: str) -> int:
    path = run.path if isinstance(run, RunDir) else run
    return main(["reproduce", str(path), *extra])


def _edit_metrics(run: RunDir, framework: str, edit) -> None:  # noqa: ANN001
    path = run.framework(framework).metrics
    raw = json.loads(path.read_text())
    edit(raw)
    path.write_text(json.dumps(raw))


# ---------------------------------------------------------------- verdicts


def test_a_reproduced_run_exits_0_and_writes_the_verdict_beside_it(
    original: RunDir, capsys: pytest.CaptureFixture[str]
) -> None:
    before = snapshot(original.path)

    code = _reproduce(original)

    out, err = capsys.readouterr()
    assert code == 0, err
    rerun = _repro(original)
    verdict = json.loads((rerun.path / "reproduction.json").read_text())
    assert verdict["verdict"] == "reproduced" and verdict["exit_code"] == 0
    artifacts = [a for fw in verdict["frameworks"] for v in fw["variants"] for a in v["artifacts"]]
    assert len(artifacts) == 6 and all(a["identical"] for a in artifacts)
    assert "reproduced: all 6 artifacts bit-identical" in out
    assert "bit-identical" in (rerun.path / "reproduction.md").read_text()
    # The study report's renderer: the same table markup in the browser page.
    assert "<th scope='col'>top-1 %</th>" in (rerun.path / "reproduction.html").read_text()
    assert json.loads(rerun.spec_path.read_text()) == json.loads(original.spec_path.read_text())
    assert snapshot(original.path) == before  # nothing read from it was touched


def test_each_reproduction_gets_its_own_directory(
    original: RunDir, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _reproduce(original) == 0
    assert _reproduce(original) == 0, capsys.readouterr().err
    assert (_repro(original, 2).path / "reproduction.json").is_file()


def test_a_run_named_from_inside_it_is_rerun_beside_it(
    original: RunDir, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(original.path)
    before = snapshot(original.path)
    assert main(["reproduce", "."]) == 0, capsys.readouterr().err
    assert (_repro(original).path / "reproduction.json").is_file()
    assert snapshot(original.path) == before


def test_latency_is_judged_against_the_old_samples_but_never_decides_the_verdict(
    original: RunDir, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _reproduce(original) == 0, capsys.readouterr().err
    verdict = json.loads((_repro(original).path / "reproduction.json").read_text())
    rows = [r for fw in verdict["frameworks"] for v in fw["variants"] for r in v["latency"]]
    assert rows and all(r["interval"][0] <= r["ratio"] <= r["interval"][1] for r in rows)
    assert all(isinstance(r["within_noise"], bool) for r in rows)


def test_the_terminal_sums_up_latency_and_the_markdown_lists_every_row(
    original: RunDir, capsys: pytest.CaptureFixture[str]
) -> None:
    _reproduce(original)

    out = capsys.readouterr().out
    assert re.search(r"\d+/\d+ in noise", out) and re.search(r"widest \d+\.\d\dx", out)
    assert "b1 2t:" not in out  # per-row detail stays out of the 80-column table
    assert "b1 2t:" in (_repro(original).path / "reproduction.md").read_text()


def test_an_altered_recorded_digest_stops_before_the_rerun_naming_the_artifact(
    original: RunDir, fake_runners, capsys: pytest.CaptureFixture[str]
) -> None:
    def alter(raw: dict) -> None:
        raw["variants"]["ptq"]["artifacts"][0]["sha256"] = "0" * 64

    _edit_metrics(original, "pytorch", alter)
    before = snapshot(original.path)
    fake_runners.setenv("FAKE_RUNNER", "crash")  # a rerun would be found out by this

    code = _reproduce(original)

    line = one_error_line(capsys.readouterr().err)
    assert code == 1
    assert "pytorch/artifacts/ptq.bin" in line and "recorded" in line
    assert not _repro(original).path.exists()  # checked first: nothing was rerun
    assert snapshot(original.path) == before


def test_a_missing_original_artifact_stops_before_the_rerun_naming_it(
    original: RunDir, capsys: pytest.CaptureFixture[str]
) -> None:
    (original.framework("tensorflow").artifacts / "qat.bin").unlink()

    code = _reproduce(original)

    line = one_error_line(capsys.readouterr().err)
    assert code == 1 and "tensorflow/artifacts/qat.bin is missing" in line
    assert not _repro(original).path.exists()


def _add_litert_rung(run: RunDir, sha256: str) -> str:
    """Record a LiteRT rung with one model file on the original's TensorFlow baseline (the
    fake runner makes none); the file is written with the given content's digest."""
    artifact = "artifacts/baseline-litert.tflite"
    path = run.framework("tensorflow").path / artifact
    path.write_bytes(b"fake tflite")
    digest = hashlib.sha256(path.read_bytes()).hexdigest() if sha256 == "actual" else sha256

    def add(raw: dict) -> None:
        raw["variants"]["baseline"]["rungs"] = [
            {
                "runtime": "litert",
                "precision": "fp32",
                "status": "ok",
                "artifacts": [{"file": artifact, "sha256": digest, "bytes": 11}],
            }
        ]

    _edit_metrics(run, "tensorflow", add)
    return artifact


def test_a_rung_model_file_the_rerun_does_not_make_is_not_reproduced(
    original: RunDir, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every runtime rung's model file (.pt2, .pte, fp32 .tflite) is checked bit for bit,
    not only each variant's own: this rerun (the fake runner) makes no LiteRT file."""
    artifact = _add_litert_rung(original, "actual")

    code = _reproduce(original)

    err = capsys.readouterr().err
    assert code == 1 and f"tensorflow baseline: differs in {artifact}" in err


def test_a_rung_model_file_changed_since_the_run_is_named(
    original: RunDir, capsys: pytest.CaptureFixture[str]
) -> None:
    artifact = _add_litert_rung(original, "0" * 64)

    code = _reproduce(original)

    line = one_error_line(capsys.readouterr().err)
    assert code == 1 and f"tensorflow/{artifact} has sha256" in line
    assert not _repro(original).path.exists()


def test_bits_that_differ_are_explained_from_the_recorded_context(
    original: RunDir, fake_runners, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_runners.setenv("FAKE_RUNNER_SALT", " built elsewhere")
    fake_runners.setenv("FAKE_RUNNER_CPU", "Other CPU")

    code = _reproduce(original)

    out, err = capsys.readouterr()
    assert code == 1
    assert "pytorch baseline: differs in artifacts/baseline.bin" in err
    assert "cpu_model: cpu -> Other CPU" in out
    assert "the figures still agree within the tolerances" in out
    assert "top-1 is within 0.5 points" in out
    verdict = json.loads((_repro(original).path / "reproduction.json").read_text())
    pytorch = verdict["frameworks"][0]
    assert {"field": "cpu_model", "original": "cpu", "rerun": "Other CPU"} in pytorch[
        "context_differences"
    ]
    assert all(not v["bit_identical"] and v["figures_agree"] for v in pytorch["variants"])


def test_a_run_that_took_the_machines_threads_is_rerun_at_the_recorded_count(
    original: RunDir, capsys
) -> None:
    """The spec left threads to the machine; another machine has another core count, and
    threads decide the bits, so the rerun pins the count the original recorded."""
    assert json.loads(original.spec_path.read_text())["measure"]["threads"] is None
    for name in ("pytorch", "tensorflow"):
        _edit_metrics(original, name, lambda raw: raw["provenance"].update(threads=7))

    _reproduce(original)

    rerun_spec = json.loads(_repro(original).spec_path.read_text())
    assert rerun_spec["measure"]["threads"] == 7
    assert "7 threads" in capsys.readouterr().err


def test_a_rerun_that_fails_is_not_reproduced(
    original: RunDir, fake_runners, capsys: pytest.CaptureFixture[str]
) -> None:
    fake_runners.setenv("FAKE_RUNNER", "tensorflow=crash")

    code = _reproduce(original)

    err = capsys.readouterr().err
    assert code == 1 and "tensorflow: the rerun ended 'failed' (runner crashed" in err


def test_force_data_reruns_on_other_data_with_a_note(
    original: RunDir, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    other = write_synthetic(tmp_path / "other", train_per_batch=400, test_count=500, seed=1)

    code = _reproduce(original, "--data", str(other), "--force-data")

    err = capsys.readouterr().err
    assert code == 0, err  # the fake runner's bits do not depend on the data
    assert "note:" in err and "--force-data" in err


@pytest.mark.parametrize("how", ["raised", "returned"])
def test_an_interrupted_reproduction_marks_its_own_directory_only(
    original: RunDir, monkeypatch: pytest.MonkeyPatch, how: str, capsys
) -> None:
    import harness.run.study

    def interrupted(opts, say=None):  # noqa: ANN001, ANN202
        run = RunDir.reserve(opts.results, original.spec, opts.run_id)
        run.write_spec(original.spec)
        if how == "raised":
            raise KeyboardInterrupt
        return 130

    monkeypatch.setattr(harness.run.study, "run_study", interrupted)
    before = snapshot(original.path)

    code = _reproduce(original)

    assert code == 130
    marker = json.loads((_repro(original).path / "reproduction.json").read_text())
    assert marker["verdict"] == "interrupted"
    assert "Interrupted" in (_repro(original).path / "reproduction.md").read_text()
    assert snapshot(original.path) == before


def test_ctrl_c_during_the_rerun_prints_one_line_and_marks_only_the_rerun(
    original: RunDir, fake_runners, tmp_path: Path
) -> None:
    fake_runners.setenv("FAKE_RUNNER", "sleep")
    before = snapshot(original.path)
    rerun = _repro(original)
    proc = subprocess.Popen(
        [sys.executable, "-c", CLI_DRIVER, "reproduce", str(original.path)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ),
        cwd=tmp_path,
    )  # fmt: skip
    log = rerun.framework("pytorch").log
    deadline = time.monotonic() + 30
    while not (log.is_file() and "READY" in log.read_text()):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.05)

    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)

    assert proc.returncode == 130
    assert "interrupted" in one_error_line(err)
    assert json.loads((rerun.path / "reproduction.json").read_text())["verdict"] == "interrupted"
    assert snapshot(original.path) == before


# ---------------------------------------------------------------- bad input: one line, exit 2


def _refused(run: RunDir | Path, capsys, *extra: str) -> str:  # noqa: ANN001
    path = run.path if isinstance(run, RunDir) else run
    code = main(["reproduce", str(path), *extra])
    line = one_error_line(capsys.readouterr().err)
    assert code == 2, line
    assert not list(path.parent.glob(f"{path.name}-repro-*")), "a refused input left a rerun"
    return line


def test_a_missing_run_directory_is_refused(tmp_path: Path, capsys) -> None:
    line = _refused(tmp_path / "nope", capsys)
    assert "does not exist" in line and "results/<run-id>" in line


def test_a_file_is_refused(tmp_path: Path, capsys) -> None:
    (tmp_path / "f").write_text("x")
    assert "is a file" in _refused(tmp_path / "f", capsys)


def test_a_directory_without_spec_json_is_not_a_run(tmp_path: Path, capsys) -> None:
    (tmp_path / "empty").mkdir()
    assert "not a run directory (no spec.json)" in _refused(tmp_path / "empty", capsys)


@pytest.mark.parametrize(
    ("mode", "outcome"),
    [
        ("crash", "is 'failed'"),
        ("phase_failed", "is 'complete with failures'"),
        ("killed", "left no metrics.json"),
    ],
)
def test_an_unfinished_run_is_refused_with_the_resume_command(
    tmp_path: Path, tiny_data: Path, fake_runners, capsys, mode: str, outcome: str
) -> None:
    fake_runners.setenv("FAKE_RUNNER", f"pytorch={mode}")
    results = tmp_path / "results"
    main(["compare", "--data", str(tiny_data), "--results", str(results), "--run-id", "u"])
    capsys.readouterr()

    line = _refused(results / "u", capsys)

    assert f"unfinished: pytorch {outcome}" in line and "--resume" in line


def test_a_spec_this_version_cannot_load_names_the_field(original: RunDir, capsys) -> None:
    raw = json.loads(original.spec_path.read_text())
    raw["train"]["warp_speed"] = 9
    original.spec_path.write_text(json.dumps(raw))
    line = _refused(original, capsys)
    assert "train.warp_speed" in line and "harness version that made it" in line


def test_schema_1_metrics_cannot_be_checked_bit_for_bit(original: RunDir, capsys) -> None:
    def to_schema_1(raw: dict) -> None:
        raw["schema_version"] = 1
        for variant in raw["variants"].values():
            variant.pop("artifacts")

    _edit_metrics(original, "pytorch", to_schema_1)
    line = _refused(original, capsys)
    assert "schema 1" in line and "bit for bit" in line and "rerun the study with this" in line


def test_a_run_owned_by_a_live_process_is_refused_like_other_commands(
    original: RunDir, capsys
) -> None:
    owner = lock.current_owner("harness compare (still running)")
    original.lock_path.write_text(json.dumps(owner.__dict__))
    line = _refused(original, capsys)
    assert "in use by a live run" in line and f"pid {os.getpid()}" in line
    assert original.lock_path.is_file()  # the owner's lock is left alone


def test_a_dataset_that_is_gone_is_refused_naming_it(
    original: RunDir, tiny_data: Path, capsys
) -> None:
    shutil.rmtree(tiny_data)
    line = _refused(original, capsys)
    assert str(tiny_data.resolve()) in line and "--data" in line


def test_a_dataset_with_another_digest_is_refused_naming_both(
    original: RunDir, tmp_path: Path, capsys
) -> None:
    other = write_synthetic(tmp_path / "other", train_per_batch=400, test_count=500, seed=1)
    recorded = json.loads(original.record_path.read_text())["data_digest"]
    from harness_contract.data.cifar import check_dataset

    line = _refused(original, capsys, "--data", str(other))
    assert recorded[:16] in line and check_dataset(other).digest[:16] in line
    assert "--force-data" in line


@pytest.mark.parametrize(
    ("extra", "expected"),
    [(["--pull"], "--pull only applies with --backend docker"), (["--backend", "ray"], "ray")],
)
def test_options_that_cannot_apply_are_refused(
    original: RunDir, capsys, extra: list[str], expected: str
) -> None:
    assert expected in _refused(original, capsys, *extra)
