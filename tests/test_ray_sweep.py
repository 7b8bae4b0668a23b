"""`harness sweep --executor ray` on a real Ray cluster on this machine: a head with no
CPUs and two 1-CPU worker nodes that hold different framework "images" (custom
resources). Tiny real points complete and land in the sweep directory, large files stay
on their node, and the statistics equal a recomputation from the points' metrics.json;
a worker node removed mid-sweep fails only its own points and --resume finishes them."""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import t

from harness.sweep.index import SweepDir
from harness.sweep.ray_executor import scratch_name
from harness_contract.metrics import read_metrics
from tests.test_sweep_cli import SWEEP_DRIVER

ray = pytest.importorskip(
    "ray", reason="the ray extra is not installed (setup.sh --dev installs it)"
)
from ray.cluster_utils import Cluster  # noqa: E402

pytestmark = [pytest.mark.ray, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
SWEEP_TIMEOUT_S = 400
# As small as a point gets while every phase trains, converts, measures and saves.
TINY = [
    "device=cpu", "model.width_multiplier=0.0625", "data.train_limit=256", "data.test_limit=64",
    "train.epochs=1", "train.batch_size=64", "train.warmup_epochs=0", "qat.epochs=1",
    "qat.batch_size=64", "ptq.calibration_samples=32", "measure.eval_batch_size=64",
    "measure.latency.batch_sizes=[1]", "measure.latency.thread_sweep=false",
    "measure.latency.warmup_count=1", "measure.latency.warmup_seconds=0",
    "measure.latency.min_count=20", "measure.latency.min_seconds=0",
    "measure.profile.enabled=false", "pytorch.runtimes=[]", "tensorflow.runtimes=[]",
    "support.enabled=false",
]  # fmt: skip


@pytest.fixture
def cluster(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Cluster, object, object]]:
    # Nodes on loopback; their workers import this checkout's tests (the fake runner).
    monkeypatch.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False}
    )
    torch_node = cluster.add_node(num_cpus=1, resources={"harness_pytorch": 1})
    tf_node = cluster.add_node(num_cpus=1, resources={"harness_tensorflow": 1})
    cluster.wait_for_nodes()
    yield cluster, torch_node, tf_node
    cluster.shutdown()


def _sweep(
    args: list[str], env: dict[str, str] | None = None, fake: bool = False
) -> subprocess.Popen:
    launcher = [sys.executable, "-c", SWEEP_DRIVER] if fake else [sys.executable, "-m", "harness"]
    return subprocess.Popen(
        [*launcher, "sweep", *args],
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip


def _index(sweep: Path) -> dict[str, dict]:
    return {p["name"]: p for p in json.loads((sweep / "index.json").read_text())["points"]}


def _scratch(sweep: Path) -> Path:
    """Where the nodes (all on this machine) keep the sweep's points."""
    return Path(tempfile.gettempdir()) / "harness-sweep" / scratch_name(SweepDir(sweep))


def test_a_ray_sweep_of_real_points_lands_whole_and_its_statistics_recompute(
    cluster,
    synthetic_data: Path,
    tmp_path: Path,  # noqa: ANN001
) -> None:
    sweep_id = f"ray-real-{os.getpid()}"
    args = ["--executor", "ray", "--address", cluster[0].address, "--threads", "1", "--seeds", "2"]
    args += ["--data", str(synthetic_data), "--results", str(tmp_path), "--sweep-id", sweep_id]
    for text in TINY:
        args += ["--set", text]
    try:
        out, err = _sweep(args).communicate(timeout=SWEEP_TIMEOUT_S)
        sweep = tmp_path / sweep_id
        assert "sweep complete: 4 points" in out, err[-3000:]
        index = _index(sweep)
        assert {p["status"] for p in index.values()} == {"ok"}
        metrics = {}
        for name, record in index.items():
            fw = record["framework"]
            point = sweep / "points" / name
            metrics[name] = read_metrics(point / fw / "metrics.json")
            assert (point / "report.md").is_file() and (point / fw / "runner.log").is_file()
            # Model files stayed on the node; the index says where and how many.
            assert record["left_files"] >= 3 and record["left_bytes"] > 0
            left = Path(record["left_on_node"])
            assert left.is_dir() and list((left / fw / "artifacts").iterdir())
            saved = {a.file for v in metrics[name].variants.values() for a in v.artifacts}
            assert saved and not any((point / fw / f).exists() for f in saved)
            latency = metrics[name].variants["ptq"].latency[0]
            assert (point / fw / latency.samples_file).is_file()  # raw samples did come back
        _check_statistics(json.loads((sweep / "stats.json").read_text()), metrics)
        assert "Paired differences" in (sweep / "report.md").read_text()
    finally:
        shutil.rmtree(_scratch(tmp_path / sweep_id), ignore_errors=True)


def _check_statistics(stats: dict, metrics: dict) -> None:
    """Every mean, interval and paired difference, recomputed from metrics.json alone."""
    top1: dict[tuple[str, str], dict[int, float]] = {}
    for m in metrics.values():
        for name, variant in m.variants.items():
            top1.setdefault((m.framework, name), {})[m.seed] = variant.accuracy.top1 * 100
    summary = {
        (r["framework"], r["variant"]): r for r in stats["summary"] if r["metric"] == "top1_pct"
    }
    assert set(summary) == set(top1) and len(top1) == 6
    for key, by_seed in top1.items():
        values = np.array([by_seed[s] for s in sorted(by_seed)])
        low, high = t.interval(0.95, 1, loc=values.mean(), scale=values.std(ddof=1) / math.sqrt(2))
        low, high = max(low, 0.0), min(high, 100.0)  # a top-1 interval never leaves [0, 100] %
        row = summary[key]
        assert row["n"] == 2 and row["mean"] == pytest.approx(values.mean())
        if values.std() > 0:
            assert (row["low"], row["high"]) == pytest.approx((low, high))
    diffs = {(r["comparison"], r["within"]): r for r in stats["differences"]}
    expected = {
        ("ptq - baseline", "pytorch"): (("pytorch", "ptq"), ("pytorch", "baseline")),
        ("qat - baseline", "tensorflow"): (("tensorflow", "qat"), ("tensorflow", "baseline")),
        ("pytorch - tensorflow", "baseline"): (("pytorch", "baseline"), ("tensorflow", "baseline")),
    }
    for key, (a, b) in expected.items():
        d = np.array([top1[a][s] - top1[b][s] for s in (0, 1)])
        assert diffs[key]["n"] == 2 and diffs[key]["mean"] == pytest.approx(d.mean())
        assert diffs[key]["sd"] == pytest.approx(d.std(ddof=1))
    assert len(diffs) == 7


def test_a_lost_node_fails_only_its_points_and_resume_finishes_them(
    cluster,
    synthetic_data: Path,
    tmp_path: Path,  # noqa: ANN001
) -> None:
    ray_cluster, _torch_node, tf_node = cluster
    sweep_id = f"ray-loss-{os.getpid()}"
    sweep = tmp_path / sweep_id
    args = ["--executor", "ray", "--address", ray_cluster.address, "--threads", "1", "--seeds", "2"]
    args += ["--data", str(synthetic_data), "--results", str(tmp_path), "--sweep-id", sweep_id]
    # TensorFlow's points (only the second node holds its "image") wait until stopped.
    env = {"FAKE_RUNNER": "tensorflow=sleep", "FAKE_RUNNER_SLEEP_S": "300"}
    proc = _sweep(args, env, fake=True)
    try:
        logs = _scratch(sweep)
        deadline = time.monotonic() + 120
        while not any(
            "READY" in p.read_text()
            for p in logs.glob("tensorflow-*/points/*/tensorflow/runner.log")
        ):
            assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read()[-3000:]
            time.sleep(0.5)
        ray_cluster.remove_node(tf_node)
        out, err = proc.communicate(timeout=SWEEP_TIMEOUT_S)
        assert proc.returncode == 1, err[-3000:]
        index = _index(sweep)
        for seed in (0, 1):
            torch = index[f"pytorch-seed{seed}"]
            assert (torch["status"], torch["attempts"]) == ("ok", 1)
            tf = index[f"tensorflow-seed{seed}"]
            assert tf["status"] == "failed"
            assert (
                "no alive Ray node offers" in tf["reason"] and "harness_tensorflow" in tf["reason"]
            )
        lost = [f for seed in (0, 1) for f in index[f"tensorflow-seed{seed}"]["failures"]]
        assert any("lost its Ray worker or node" in f for f in lost), lost
        kept = {
            s: (sweep / f"points/pytorch-seed{s}/pytorch/metrics.json").stat().st_mtime_ns
            for s in (0, 1)
        }

        ray_cluster.add_node(num_cpus=1, resources={"harness_tensorflow": 1})
        ray_cluster.wait_for_nodes()
        resumed = _sweep(["--resume", str(sweep)], {"FAKE_RUNNER": "complete"}, fake=True)
        out, err = resumed.communicate(timeout=SWEEP_TIMEOUT_S)
        assert resumed.returncode == 0, err[-3000:]
        index = _index(sweep)
        assert {p["status"] for p in index.values()} == {"ok"}
        for s in (0, 1):  # finished points were neither lost nor recomputed
            assert index[f"pytorch-seed{s}"]["attempts"] == 1
            assert (
                sweep / f"points/pytorch-seed{s}/pytorch/metrics.json"
            ).stat().st_mtime_ns == kept[s]
    finally:
        if proc.poll() is None:
            proc.kill()
        shutil.rmtree(_scratch(tmp_path / sweep_id), ignore_errors=True)


@pytest.fixture
def two_equal_nodes(monkeypatch: pytest.MonkeyPatch) -> Iterator[Cluster]:
    """A head with no CPUs and two 1-CPU nodes that offer the same (no image resources)."""
    monkeypatch.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    two = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False})
    for _ in range(2):
        two.add_node(num_cpus=1)
    two.wait_for_nodes()
    yield two
    two.shutdown()


def test_a_retry_after_a_node_local_failure_runs_on_another_node(
    two_equal_nodes: Cluster, synthetic_data: Path, tmp_path: Path
) -> None:
    """Two equal nodes: the point fails on its first node, and its retry is placed on the
    other (a node-local fault, a full disk or a broken install, would fail it again)."""
    two = two_equal_nodes
    sweep_id = f"ray-retry-{os.getpid()}"
    args = ["--executor", "ray", "--address", two.address, "--threads", "1", "--seeds", "1"]
    args += ["--frameworks", "pytorch", "--data", str(synthetic_data), "--results", str(tmp_path)]
    args += ["--sweep-id", sweep_id]
    env = {"FAKE_RUNNER": "crash_once", "FAKE_RUNNER_MARKER": str(tmp_path / "crashed")}
    try:
        proc = _sweep(args, env, fake=True)
        out, err = proc.communicate(timeout=SWEEP_TIMEOUT_S)
        assert proc.returncode == 0, err[-3000:]
        point = _index(tmp_path / sweep_id)["pytorch-seed0"]
        assert (point["status"], point["attempts"]) == ("ok", 2)
        (failure,) = point["failures"]
        first_node = failure.split(" on ", 1)[1].split(": ", 1)[0]
        assert ", node " in first_node and point["node"] != first_node
    finally:
        shutil.rmtree(_scratch(tmp_path / sweep_id), ignore_errors=True)


def test_a_node_without_the_dataset_refuses_its_point_in_one_line_and_it_is_not_retried(
    two_equal_nodes: Cluster, tmp_path: Path
) -> None:
    """--data names a folder this machine (so every node here) lacks: the driver leaves the
    check to the nodes of a running cluster, and the node refuses the point naming itself
    and the path. Not retried on the other node: the node's setup is the user's to fix."""
    sweep_id = f"ray-nodata-{os.getpid()}"
    missing = tmp_path / "not-copied-here" / "cifar10"
    args = ["--executor", "ray", "--address", two_equal_nodes.address, "--threads", "1"]
    args += ["--seeds", "1", "--frameworks", "pytorch", "--data", str(missing)]
    args += ["--results", str(tmp_path), "--sweep-id", sweep_id]
    try:
        proc = _sweep(args, {"FAKE_RUNNER": "complete"}, fake=True)
        out, err = proc.communicate(timeout=SWEEP_TIMEOUT_S)
        assert proc.returncode == 1, err[-3000:]
        point = _index(tmp_path / sweep_id)["pytorch-seed0"]
        assert (point["status"], point["attempts"], point["exit_code"]) == ("failed", 1, 2)
        reason = point["reason"]
        assert reason.startswith("node ") and ", node " in reason and "\n" not in reason
        assert f"has no dataset at {missing}: copy it there" in reason
        assert point["failures"] == [f"attempt 1 on {point['node']}: {reason}"]
        assert not (tmp_path / sweep_id / "points" / "pytorch-seed0").exists()
    finally:
        shutil.rmtree(_scratch(tmp_path / sweep_id), ignore_errors=True)


def test_once_nodes_are_marked_with_images_a_framework_with_no_node_of_its_own_fails_saying_so(
    synthetic_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A PyTorch node and an unmarked one: TensorFlow's points do not land on either (an
    image of the other framework would refuse them as "not installed", exit 2); they fail
    naming the resource no alive node offers, as when the TensorFlow worker is down."""
    monkeypatch.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    mixed = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False}
    )
    mixed.add_node(num_cpus=1, resources={"harness_pytorch": 1})
    mixed.add_node(num_cpus=1)
    mixed.wait_for_nodes()
    sweep_id = f"ray-marked-{os.getpid()}"
    args = ["--executor", "ray", "--address", mixed.address, "--threads", "1", "--seeds", "1"]
    args += ["--data", str(synthetic_data), "--results", str(tmp_path), "--sweep-id", sweep_id]
    try:
        proc = _sweep(args, {"FAKE_RUNNER": "complete"}, fake=True)
        out, err = proc.communicate(timeout=SWEEP_TIMEOUT_S)
        assert proc.returncode == 1, err[-3000:]
        index = _index(tmp_path / sweep_id)
        assert index["pytorch-seed0"]["status"] == "ok"
        tf = index["tensorflow-seed0"]
        assert (
            tf["status"] == "failed" and not (tmp_path / sweep_id / "points" / tf["name"]).exists()
        )
        assert tf["reason"] == (
            "no alive Ray node offers what the point needs (CPU 1, harness_tensorflow 0.01)"
        )
        assert tf["attempts"] == len(tf["failures"]) == 2  # each refusal is an attempt
    finally:
        mixed.shutdown()
        shutil.rmtree(_scratch(tmp_path / sweep_id), ignore_errors=True)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_sweep_submitted_as_a_ray_job_completes_on_the_head(
    synthetic_data: Path, tmp_path: Path
) -> None:
    """The documented recipe (docs/sweep.md): `ray start --head`, then `ray job submit
    -- <the head's interpreter> -m harness sweep --executor ray --address auto --results
    <absolute path on the head>`; the sweep directory lands there."""
    ray_bin = Path(sys.executable).with_name("ray")
    port, dashboard = _free_port(), _free_port()
    env = {**os.environ, "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "PYTHONPATH": str(ROOT)}
    env.pop("RAY_ADDRESS", None)
    # Ray 2.60's job server authenticates: a token of the test's own, for head and client.
    env |= {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": os.urandom(16).hex()}
    start = [str(ray_bin), "start", "--head", "--port", str(port), "--num-cpus", "2"]
    start += ["--node-ip-address", "127.0.0.1", "--dashboard-host", "127.0.0.1"]
    start += ["--dashboard-port", str(dashboard), "--include-dashboard", "true"]
    temp = Path(tempfile.mkdtemp(prefix="rj"))  # short: Ray's socket paths cap at 107 bytes
    start += ["--temp-dir", str(temp), "--disable-usage-stats"]
    started = subprocess.run(start, env=env, capture_output=True, text=True, timeout=120)
    assert started.returncode == 0, started.stderr[-3000:]
    try:
        driver = tmp_path / "driver.py"  # the sweep CLI with the fake runners (as a file: a
        driver.write_text(SWEEP_DRIVER)  # job's entrypoint is one shell line)
        sweep_id = f"ray-job-{os.getpid()}"
        entry = [sys.executable, str(driver), "sweep", "--executor", "ray", "--address", "auto"]
        entry += ["--threads", "1", "--seeds", "1", "--frameworks", "pytorch"]
        entry += ["--data", str(synthetic_data), "--results", str(tmp_path / "results")]
        entry += ["--sweep-id", sweep_id]
        submit = [str(ray_bin), "job", "submit", "--address", f"http://127.0.0.1:{dashboard}"]
        submit += ["--", "env", f"PYTHONPATH={ROOT}", "FAKE_RUNNER=complete", *entry]
        job = subprocess.run(submit, env=env, capture_output=True, text=True, timeout=600)
        assert "succeeded" in job.stdout, (job.stdout + job.stderr)[-4000:]
        index = _index(tmp_path / "results" / sweep_id)
        assert index["pytorch-seed0"]["status"] == "ok"
        assert (tmp_path / "results" / sweep_id / "report.md").is_file()
    finally:
        subprocess.run([str(ray_bin), "stop", "--force"], env=env, capture_output=True, timeout=120)
        shutil.rmtree(temp, ignore_errors=True)
