"""`harness sweep` with the local executor, end to end through the CLI, every point a
real `harness run` process served by the fake runner: points are ordinary run
directories, the index tells the truth, failures are retried then recorded, --resume
finishes only what is unfinished, and every bad input is one line before anything runs."""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.cli.main import main
from harness.sweep.point import PointJob
from harness_contract.exit_codes import ExitCode
from harness_contract.system import usable_cpus
from tests.cli_output import one_error_line
from tests.fake_runner import CLI_DRIVER

pytest_plugins = ("tests.run_fixtures",)

ROOT = Path(__file__).resolve().parent.parent
# The sweep CLI with every point's process served by the fake runner (for a real process
# to send Ctrl-C to, and for Ray workers, which get the variables it forwards).
SWEEP_DRIVER = (
    "import sys\n"
    "from tests.fake_runner import CLI_DRIVER\n"
    "import harness.sweep.point as point\n"
    "import harness.sweep.driver as driver\n"
    "point.DEFAULT_LAUNCHER = (sys.executable, '-c', CLI_DRIVER)\n"
    "driver.FORWARD_ENV_PREFIXES = ('HARNESS_', 'FAKE_RUNNER', 'PYTHONPATH', 'XDG_CACHE_HOME')\n"
    "from harness.cli.main import main\n"
    "sys.exit(main(sys.argv[1:]))\n"
)


@pytest.fixture
def fake_points(fake_runners: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """Every point's `harness run` process served by the fake runner."""
    fake_runners.setattr("harness.sweep.point.DEFAULT_LAUNCHER", (sys.executable, "-c", CLI_DRIVER))
    return fake_runners


def _index(sweep: Path) -> dict[str, dict]:
    return {p["name"]: p for p in json.loads((sweep / "index.json").read_text())["points"]}


def _sweep(*args: str) -> int:
    return main(["sweep", *args])


@pytest.mark.slow  # whole sweeps of real runs
def test_every_point_is_an_ordinary_run_directory_and_the_sweep_reports_them(
    fake_points: pytest.MonkeyPatch,
    tiny_data: Path,
    tmp_path: Path,
    capsys,
) -> None:
    code = _sweep(
        "--seeds", "2", "--data", str(tiny_data), "--results", str(tmp_path), "--sweep-id", "s"
    )
    out, err = capsys.readouterr()
    assert code == 0, err
    sweep = tmp_path / "s"
    index = _index(sweep)
    assert sorted(index) == [
        "pytorch-seed0",
        "pytorch-seed1",
        "tensorflow-seed0",
        "tensorflow-seed1",
    ]
    assert {p["status"] for p in index.values()} == {"ok"}
    assert {p["attempts"] for p in index.values()} == {1}
    for name, record in index.items():
        point = sweep / "points" / name
        spec = json.loads((point / "spec.json").read_text())
        assert spec["seed"] == record["seed"] and spec["measure"]["threads"] == usable_cpus()
        assert main(["report", str(point)]) == 0  # `harness report` reads a point alone
    stats = json.loads((sweep / "stats.json").read_text())
    top1 = [r for r in stats["summary"] if r["metric"] == "top1_pct"]
    assert len(top1) == 6 and {r["n"] for r in top1} == {2}
    assert (sweep / "report.md").is_file() and (sweep / "report.html").is_file()
    assert (sweep / "stats.csv").is_file() and list((sweep / "figures").glob("*.svg"))
    assert "sweep complete: 4 points" in out
    assert json.loads((sweep / "sweep.json").read_text())["spec"]["seeds"] == [0, 1]


def test_parallel_points_split_the_cores_and_record_their_threads(
    fake_points: pytest.MonkeyPatch,
    tiny_data: Path,
    tmp_path: Path,
) -> None:
    code = _sweep(
        "--frameworks", "pytorch", "--seeds", "2", "--parallel", "2", "--data", str(tiny_data),
        "--results", str(tmp_path), "--sweep-id", "p",
    )  # fmt: skip
    assert code == 0
    for name in _index(tmp_path / "p"):
        spec = json.loads((tmp_path / "p" / "points" / name / "spec.json").read_text())
        assert spec["measure"]["threads"] == max(1, usable_cpus() // 2)
    settings = json.loads((tmp_path / "p" / "sweep.json").read_text())["settings"]
    assert (settings["parallel"], settings["threads"]) == (2, max(1, usable_cpus() // 2))


@pytest.mark.slow  # whole sweeps of real runs
def test_a_failed_point_is_retried_once_then_recorded_and_resume_finishes_only_the_rest(
    fake_points: pytest.MonkeyPatch,
    tiny_data: Path,
    tmp_path: Path,
    capsys,
) -> None:
    fake_points.setenv("FAKE_RUNNER", "tensorflow=crash")
    args = ["--data", str(tiny_data), "--results", str(tmp_path), "--sweep-id", "f"]
    assert _sweep(*args) == 1
    line = one_error_line(capsys.readouterr().err)
    assert "1 of 2 points failed (tensorflow-seed0; reasons in" in line
    assert "harness sweep --resume" in line
    sweep = tmp_path / "f"
    index = _index(sweep)
    tf = index["tensorflow-seed0"]
    assert (tf["status"], tf["attempts"], len(tf["failures"])) == ("failed", 2, 2)
    assert "exit 1" in tf["reason"] and tf["failures"][0].startswith("attempt 1 on ")
    assert index["pytorch-seed0"]["status"] == "ok"
    assert len(list((sweep / "attempts").iterdir())) == 1  # the first attempt, set aside
    kept = {
        "pytorch-seed0": (sweep / "points/pytorch-seed0/pytorch/metrics.json").stat().st_mtime_ns
    }

    fake_points.setenv("FAKE_RUNNER", "complete")
    assert _sweep("--resume", str(sweep)) == 0
    index = _index(sweep)
    assert {p["status"] for p in index.values()} == {"ok"}
    assert index["tensorflow-seed0"]["attempts"] == 3 and index["pytorch-seed0"]["attempts"] == 1
    for name, mtime in kept.items():  # finished points are never recomputed
        assert (sweep / "points" / name / "pytorch/metrics.json").stat().st_mtime_ns == mtime
    assert len(list((sweep / "attempts").iterdir())) == 2


@pytest.mark.slow  # whole sweeps of real runs
def test_ctrl_c_keeps_finished_points_and_resume_finishes_the_rest(
    tiny_data: Path,
    tmp_path: Path,
) -> None:
    # PyTorch's point finishes; TensorFlow's waits until it is told to stop.
    env = {**os.environ, "PYTHONPATH": str(ROOT), "FAKE_RUNNER": "tensorflow=sleep"}
    sweep = tmp_path / "i"
    args = ["sweep", "--data", str(tiny_data), "--results", str(tmp_path), "--sweep-id", "i"]
    proc = subprocess.Popen(
        [sys.executable, "-c", SWEEP_DRIVER, *args],
        env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        index = _index(sweep) if (sweep / "index.json").is_file() else {}
        tf_log = sweep / "points/tensorflow-seed0/tensorflow/runner.log"
        if index.get("pytorch-seed0", {}).get("status") == "ok" and "READY" in _text(tf_log):
            break
        time.sleep(0.2)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=90)
    assert proc.returncode == 130, err
    assert "interrupted; 1 of 2 points finished and kept" in one_error_line(err)
    index = _index(sweep)
    assert index["pytorch-seed0"]["status"] == "ok"
    assert index["tensorflow-seed0"]["status"] == "interrupted"
    kept = (sweep / "points/pytorch-seed0/pytorch/metrics.json").stat().st_mtime_ns

    env["FAKE_RUNNER"] = "complete"
    done = subprocess.run(
        [sys.executable, "-c", SWEEP_DRIVER, "sweep", "--resume", str(sweep)],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert {p["status"] for p in _index(sweep).values()} == {"ok"}
    assert (sweep / "points/pytorch-seed0/pytorch/metrics.json").stat().st_mtime_ns == kept


def _text(path: Path) -> str:
    return path.read_text() if path.is_file() else ""


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--grid", "ptq.calibration_sample=16,32"], "unknown spec key 'ptq.calibration_sample'"),
        (["--grid", "ptq.calibration_samples=16,-1"], "grid value ptq.calibration_samples=-1"),
        (["--seeds", "30"], "the sweep has 60 points, more than 50; pass --yes"),
        (["--seeds", "two"], "seeds 'two' is not a count"),
        (["--executor", "slurm"], "unknown executor 'slurm'"),
        (["--address", "auto"], "--address is for --executor ray"),
        (["--frameworks", "jax"], "unknown framework 'jax'"),
        (["--backend", "k8s"], "unknown backend 'k8s'"),
        (["--gpus-per-point", "1"], "--gpus-per-point is for --executor ray"),
        (["--executor", "ray", "--parallel", "2"], "--parallel is for the local executor"),
    ],
)
def test_bad_input_is_one_line_and_nothing_is_created(
    args: list[str],
    words: str,
    tmp_path: Path,
    capsys,  # noqa: ANN001
) -> None:
    assert _sweep(*args, "--results", str(tmp_path / "r")) == 2
    assert words in one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "r").exists()


def test_ray_not_installed_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys,  # noqa: ANN001
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    assert _sweep("--executor", "ray", "--results", str(tmp_path / "r")) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "needs Ray, which is not installed" in line
    assert "pip install 'quant-compare-harness[ray]'" in line and "setup.sh --dev" in line
    assert not (tmp_path / "r").exists()


def test_resume_refuses_options_that_would_change_the_sweep(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    from harness.sweep.index import SweepDir, SweepSettings
    from harness.sweep.plan import SweepSpec

    sweep = SweepDir.create(tmp_path, "r")
    sweep.write_spec(SweepSpec(), SweepSettings())
    sweep.write_index({})
    assert _sweep("--resume", str(sweep.path), "--seeds", "3") == 2
    assert "--seeds cannot change it" in one_error_line(capsys.readouterr().err)
    assert _sweep("--resume", str(tmp_path)) == 2
    assert "is not a sweep directory" in one_error_line(capsys.readouterr().err)


@pytest.mark.ray
def test_an_unreachable_ray_cluster_is_one_line_in_seconds(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    pytest.importorskip("ray", reason="the ray extra is not installed")
    started = time.monotonic()
    assert (
        _sweep("--executor", "ray", "--address", "127.0.0.1:1", "--results", str(tmp_path / "r"))
        == 2
    )
    line = one_error_line(capsys.readouterr().err)
    assert "Ray cluster at 127.0.0.1:1 is unreachable" in line and "ray start --head" in line
    assert time.monotonic() - started < 30  # Ray's own connect would retry for minutes
    assert not (tmp_path / "r").exists()
    assert _sweep("--executor", "ray", "--address", "head", "--results", str(tmp_path / "r")) == 2
    assert "is not HOST:PORT or auto" in one_error_line(capsys.readouterr().err)


def test_a_ray_client_address_is_refused_saying_what_to_use(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    client = "ray://10.0.0.5:10001"
    assert _sweep("--executor", "ray", "--address", client, "--results", str(tmp_path / "r")) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "ray://10.0.0.5:10001 is a Ray Client address" in line
    assert "--address auto" in line and "HOST:PORT" in line
    assert not (tmp_path / "r").exists()


@pytest.mark.ray
def test_the_sweeps_own_ray_instance_never_joins_another_cluster(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No --address: a throwaway instance, even where $RAY_ADDRESS names a cluster (a bare
    ray.init() would try to join it, here a port nothing listens on)."""
    pytest.importorskip("ray", reason="the ray extra is not installed")
    from harness.sweep.index import SweepSettings
    from harness.sweep.ray_executor import RayExecutor

    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:1")
    with RayExecutor(SweepSettings(executor="ray")) as executor:
        assert executor.started_here and executor.ray.is_initialized()
        assert len(executor._alive()) == 1  # its own node
    assert not executor.ray.is_initialized()


@pytest.mark.ray
def test_a_node_without_the_dataset_fails_its_point_naming_the_node_and_path(
    tmp_path: Path,
) -> None:
    pytest.importorskip("ray", reason="the ray extra is not installed")
    from harness.sweep.plan import Point
    from harness.sweep.point import PointJob
    from harness.sweep.ray_executor import point_task

    job = PointJob(
        Point("pytorch-seed0", "pytorch", 0, ()),
        1,
        "smoke",
        None,
        [],
        1,
        data=str(tmp_path / "gone"),
    )
    result = point_task(job, "s", fetch_all=False)  # what the Ray task does first on its node
    outcome = result["outcome"]
    # Refused, not retried: another node would need the same folder (issue 21, item 2).
    assert outcome.exit_code == ExitCode.USER_ERROR and not outcome.retryable
    assert result["archive"] is None
    assert (
        outcome.reason.startswith("node ")
        and f"has no dataset at {tmp_path / 'gone'}" in outcome.reason
    )


def _job(**given: object) -> PointJob:
    from harness.sweep.plan import Point

    fields = {"point": Point("pytorch-seed0", "pytorch", 0, ()), "attempt": 1, "preset": "smoke"}
    return PointJob(**{**fields, "spec": None, "sets": [], "threads": 1, **given})


def test_a_point_starts_under_the_interpreter_of_the_node_that_runs_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """A job is made on the driver and may run on a node whose environment lives elsewhere:
    the interpreter is looked up where the point runs, not carried from the driver."""
    job = pickle.loads(pickle.dumps(_job()))  # as a Ray task receives it
    monkeypatch.setattr(sys, "executable", "/node/venv/bin/python")
    assert job.argv(tmp_path)[:3] == ["/node/venv/bin/python", "-m", "harness"]


def test_the_spec_file_travels_as_text_and_is_written_where_the_point_runs(
    tmp_path: Path,
) -> None:
    from harness.sweep.point import SpecText, run_point

    driver_spec = tmp_path / "driver" / "mine.toml"
    driver_spec.parent.mkdir()
    driver_spec.write_text(SPEC_TEXT)
    echo = "import sys; a = sys.argv; print(open(a[a.index('--spec') + 1]).read())"
    job = _job(spec=SpecText.read(str(driver_spec)), launcher=(sys.executable, "-c", echo))
    driver_spec.unlink()  # a node never sees the driver's files
    log = tmp_path / "node" / "logs" / "pytorch-seed0.log"
    outcome = run_point(pickle.loads(pickle.dumps(job)), tmp_path / "node" / "points", log, "n1")
    assert outcome.ok, log.read_text()
    written = log.parent / "pytorch-seed0.spec.toml"
    assert f"--spec {written}" in log.read_text()
    assert "epochs = 2" in log.read_text() and written.read_text() == SPEC_TEXT


SPEC_TEXT = 'base = "smoke"\n[train]\nepochs = 2\n'


def test_the_code_digest_changes_with_any_source_file_and_names_absent_packages(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from harness.sweep.code_digest import code_digest

    pkg = tmp_path / "nodepkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    before = code_digest.__wrapped__(("nodepkg",))
    (pkg / "a.py").write_text("X = 2\n")
    assert code_digest.__wrapped__(("nodepkg",)) != before
    assert code_digest.__wrapped__(("no_such_pkg",)) != code_digest.__wrapped__(("nodepkg",))


@pytest.mark.ray
def test_a_node_running_other_harness_code_refuses_the_point_before_running_it(
    tmp_path: Path,
) -> None:
    pytest.importorskip("ray", reason="the ray extra is not installed")
    from harness.sweep.code_digest import code_digest
    from harness.sweep.ray_executor import point_task

    job = _job(code_digest="0" * 16, launcher=(sys.executable, "-c", "raise SystemExit(9)"))
    result = point_task(job, "s", fetch_all=False)
    outcome = result["outcome"]
    assert outcome.exit_code == 2 and not outcome.retryable and result["archive"] is None
    assert outcome.reason.startswith("node ") and "runs other harness code" in outcome.reason
    assert f"(digest {code_digest()})" in outcome.reason and f"({'0' * 16})" in outcome.reason


def test_a_retry_is_placed_away_from_the_nodes_its_point_failed_on() -> None:
    from harness.sweep.index import SweepSettings
    from harness.sweep.ray_executor import RayExecutor

    executor = RayExecutor(SweepSettings(executor="ray"))
    nodes = [{"NodeID": n, "Alive": True, "Resources": {"CPU": 2.0}} for n in ("a1", "b2")]
    executor._alive = lambda: nodes  # type: ignore[method-assign]
    job = _job()
    assert executor._placement(job, set()) == {}
    assert executor._placement(job, {"a1"}) == {"label_selector": {"ray.io/node-id": "!in(a1)"}}
    # Failed everywhere it can run: retried anywhere rather than never.
    assert executor._placement(job, {"a1", "b2"}) == {}


class _FakeRay:
    """What RayExecutor.run calls of Ray, for one point that finishes just as Ctrl-C comes."""

    class exceptions:  # noqa: N801 - mirrors ray.exceptions
        TaskCancelledError = type("TaskCancelledError", (Exception,), {})
        RayError = type("RayError", (Exception,), {})

    def __init__(self, result: dict) -> None:
        self.result, self.waits = result, 0

    def remote(self, fn):  # noqa: ANN001, ANN201
        ray = self

        class Task:
            def options(self, **_: object) -> Task:
                return self

            def remote(self, *_: object) -> str:
                return "ref-1"

        return Task() if fn else ray

    def wait(self, refs, num_returns, timeout):  # noqa: ANN001, ANN201
        self.waits += 1
        if self.waits == 1:
            raise KeyboardInterrupt  # Ctrl-C while the driver waits
        return list(refs), []  # by then the point had finished

    def cancel(self, ref: str) -> None:
        pass

    def get(self, ref: str) -> dict:
        return self.result


def test_ctrl_c_keeps_a_point_that_finished_before_the_interrupt(tmp_path: Path) -> None:
    from harness.sweep.index import SweepDir, SweepSettings
    from harness.sweep.point import PointOutcome
    from harness.sweep.ray_executor import RayExecutor

    executor = RayExecutor(SweepSettings(executor="ray"))
    done = PointOutcome(0, None, 3.0, "node-a (10.0.0.1, node a1)")
    executor.ray = _FakeRay({"outcome": done, "archive": None, "log": "finished\n"})
    executor._alive = lambda: [{"NodeID": "a1", "Alive": True, "Resources": {"CPU": 2.0}}]
    finished: list[tuple[str, PointOutcome]] = []

    class Hooks:
        def started(self, job: PointJob, node: str) -> None:
            pass

        def finished(self, job: PointJob, outcome: PointOutcome) -> None:
            finished.append((job.name, outcome))

    executor.bind(SweepDir.create(tmp_path, "s"))
    with pytest.raises(KeyboardInterrupt):
        executor.run([_job()], Hooks())
    assert finished == [("pytorch-seed0", done)]
