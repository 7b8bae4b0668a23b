"""The container-cluster tier: Ray nodes that share nothing but the network. A head and
two workers, each its own container (`--network host`, non-root, nothing mounted, the
harness in the image, each worker with its own copy of the dataset), started by
scripts/ray-node.sh exactly as docs/cluster.md tells a user to. The driver runs outside
the containers, on this machine's .venv, as a Ray node of its own (a driver needs one).

The tests run in file order on one cluster: the last two stop the PyTorch worker.
Run by scripts/ci-cluster-tier.sh; elsewhere they skip, saying why.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from harness.sweep.code_digest import code_digest
from harness.sweep.index import SweepDir
from harness.sweep.ray_executor import scratch_name
from harness_contract.metrics import read_metrics
from tests.test_ray_sweep import TINY, _free_port

pytestmark = pytest.mark.cluster

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "ray-node.sh"
TIER_ENV = "QH_CLUSTER_TIER"
# Every container and image this run makes is named so (ci-cluster-tier.sh removes them
# even after a crash); the fixtures remove them too.
PREFIX = os.environ.get("QH_CLUSTER_RUN", f"qh-cluster-{os.getpid()}")
NODE_DATA = "/home/harness/cifar10"  # where scripts/ray-node.sh copies a worker's dataset
HEAD_RESULTS = "/home/harness/results"  # a submitted job's sweep, inside the head container
# Each node advertises a loopback address of its own, as separate machines would have
# (Ray replaces 127.0.0.1 itself with the machine's public address).
IPS = {"head": "127.0.0.2", "w-pytorch": "127.0.0.3", "w-tensorflow": "127.0.0.4",
       "w-other": "127.0.0.5", "w-nodata": "127.0.0.6", "driver": "127.0.0.9"}  # fmt: skip
SWEEP_TIMEOUT_S = 420
# One seed: a point per framework, each on its own worker, at the same time (CI's budget;
# more seeds add points of the same kind, which the ray tier's sweeps cover).
PLAN = ["--seeds", "1", "--threads", "1"] + [a for s in TINY for a in ("--set", s)]
# The driver imports this checkout's harness (its code digest is what the nodes must match).
PYTHONPATH = os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))


def _say(line: str) -> None:
    print(f"tier cluster: {line}", flush=True)


def _run(*cmd: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if check and done.returncode != 0:
        raise AssertionError(
            f"{' '.join(cmd[:4])} ... exit {done.returncode}: {done.stderr[-3000:]}"
        )
    return done


def _why_not() -> str | None:
    if os.environ.get(TIER_ENV) != "1":
        return f"cluster tier: runs from bash scripts/ci-cluster-tier.sh ({TIER_ENV}=1)"
    if shutil.which("docker") is None or shutil.which("unshare") is None:
        return "cluster tier: needs the docker CLI and unshare (util-linux)"
    if _run("docker", "info", timeout=30, check=False).returncode != 0:
        return "cluster tier: no Docker engine is reachable"
    from harness_contract import __version__

    for fw in ("pytorch", "tensorflow"):
        image = f"quant-harness/{fw}:{__version__}"
        if _run("docker", "image", "inspect", image, check=False).returncode != 0:
            return f"cluster tier: no image {image} (scripts/ci-docker-tier.sh builds it)"
    return None


@dataclass
class Cluster:
    port: int
    dashboard: int
    images: dict[str, str]
    data: Path
    containers: list[str] = field(default_factory=list)

    @property
    def address(self) -> str:
        return f"{IPS['head']}:{self.port}"

    def name(self, role: str) -> str:
        return f"{PREFIX}-{role}"

    def worker(self, role: str, framework: str, image: str | None = None, data: bool = True) -> str:
        name = self.name(role)
        args = ["--address", self.address, "--framework", framework, "--cpus", "1"]
        args += ["--agent-port", str(_free_port()), "--ip", IPS[role]]
        self.containers.append(name)
        since = _now()
        _run("bash", str(SCRIPT), "worker", name, image or self.images[framework], *args,
             *(["--data", str(self.data)] if data else []))  # fmt: skip
        _wait_started(name, since)
        return name

    def sweep(self, args: list[str]) -> subprocess.Popen:
        """`harness sweep` from this machine, outside the containers."""
        cmd = ["bash", str(SCRIPT), "driver", self.address, "--ip", IPS["driver"], "--"]
        cmd += [sys.executable, "-m", "harness", "sweep", *args]
        return subprocess.Popen(
            cmd, cwd=ROOT, env={**os.environ, "PYTHON": sys.executable, "PYTHONPATH": PYTHONPATH},
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 1))


def _wait_started(name: str, since: str, timeout: float = 180) -> None:
    """Until the node's `ray start` says it runs (a node that joined since ``since``)."""
    deadline = time.monotonic() + timeout
    while True:
        logs = _run("docker", "logs", "--since", since, name, check=False)
        if "Ray runtime started" in logs.stdout + logs.stderr:
            return
        state = _run("docker", "inspect", "-f", "{{.State.Running}}", name, check=False)
        if state.stdout.strip() != "true" or time.monotonic() > deadline:
            raise AssertionError(
                f"node {name} did not start: {(logs.stdout + logs.stderr)[-3000:]}"
            )
        time.sleep(1)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    reason = _why_not()
    if reason:
        pytest.skip(reason)
    from harness_contract.data.cifar import write_synthetic

    data = write_synthetic(tmp_path_factory.mktemp("cifar"), train_per_batch=64, test_count=64)
    from harness_contract import __version__

    prefix = f"{PREFIX}-node"
    images = {fw: f"{prefix}-{fw}:{__version__}" for fw in ("pytorch", "tensorflow")}
    made = Cluster(_free_port(), _free_port(), images, data)
    token = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": os.urandom(16).hex()}
    with pytest.MonkeyPatch.context() as env:
        # Ray 2.60's job server wants a token; every node and the driver get this one.
        for key, value in token.items():
            env.setenv(key, value)
        env.setenv("RAY_DEFAULT_PYTHON_VERSION_MATCH_LEVEL", "minor")  # 3.11.7 here, 3.11.2 there
        env.setenv("PYTHONPATH", PYTHONPATH)  # the images get the driver's harness sources
        env.delenv("RAY_ADDRESS", raising=False)
        try:
            started = time.monotonic()
            _run("bash", str(SCRIPT), "build", "--tag-prefix", prefix, timeout=900)
            _say(f"TIME node-images {time.monotonic() - started:.0f} s")
            started = time.monotonic()
            head = made.name("head")
            made.containers.append(head)
            since = _now()
            _run("bash", str(SCRIPT), "head", head, images["pytorch"], "--port", str(made.port),
                 "--dashboard-port", str(made.dashboard), "--client-port", str(_free_port()),
                 "--agent-port", str(_free_port()), "--ip", IPS["head"])  # fmt: skip
            _wait_started(head, since)
            made.worker("w-pytorch", "pytorch")
            made.worker("w-tensorflow", "tensorflow")
            _say(f"TIME cluster-start {time.monotonic() - started:.0f} s")
            yield made
        finally:
            for name in reversed(made.containers):
                _run("docker", "rm", "-f", name, check=False)
            if os.environ.get("QH_CLUSTER_KEEP_IMAGES") != "1":  # a rerun then builds from cache
                _run("docker", "image", "rm", *images.values(), check=False)


def _index(sweep: Path) -> dict[str, dict]:
    return {p["name"]: p for p in json.loads((sweep / "index.json").read_text())["points"]}


def _accuracy(sweep: Path) -> dict[tuple[str, str], tuple]:
    """(point, variant) -> every accuracy figure, from the points' metrics.json."""
    found = {}
    for name, record in _index(sweep).items():
        metrics = read_metrics(sweep / "points" / name / record["framework"] / "metrics.json")
        for variant, figures in metrics.variants.items():
            a = figures.accuracy
            found[name, variant] = (
                a.top1, a.n, a.agreement_with_fp32, a.only_this_correct, a.only_fp32_correct
            )  # fmt: skip
    return found


@pytest.fixture(scope="module")
def local_sweep(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same plan on the local executor: two points at a time, one thread each."""
    results = tmp_path_factory.mktemp("local")
    started = time.monotonic()
    args = [sys.executable, "-m", "harness", "sweep", "--parallel", "2", *PLAN]
    args += ["--data", str(cluster.data), "--results", str(results), "--sweep-id", "local"]
    done = subprocess.run(
        args, cwd=ROOT, env={**os.environ, "PYTHONPATH": PYTHONPATH},
        capture_output=True, text=True, timeout=SWEEP_TIMEOUT_S,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    _say(f"TIME local-sweep {time.monotonic() - started:.0f} s (2 points, 2 at a time)")
    return results / "local"


def test_a_sweep_from_a_driver_outside_the_containers_matches_the_local_executor(
    cluster: Cluster, local_sweep: Path, tmp_path: Path
) -> None:
    started = time.monotonic()
    args = ["--executor", "ray", "--address", cluster.address, *PLAN, "--data", NODE_DATA]
    proc = cluster.sweep([*args, "--results", str(tmp_path), "--sweep-id", "outside"])
    out, err = proc.communicate(timeout=SWEEP_TIMEOUT_S)
    assert proc.returncode == 0 and "sweep complete: 2 points" in out, (out + err)[-4000:]
    sweep = tmp_path / "outside"
    _say(f"TIME outside-driver-sweep {time.monotonic() - started:.0f} s")
    index = _index(sweep)
    for name, point in index.items():  # each framework's points ran on its own worker
        assert f"({IPS['w-' + point['framework']]}, node " in point["node"], (name, point["node"])
    ray_acc, local_acc = _accuracy(sweep), _accuracy(local_sweep)
    assert len(ray_acc) == 6 and ray_acc == local_acc  # bit-identical, per point and variant
    ray_stats = json.loads((sweep / "stats.json").read_text())["summary"]
    local_stats = json.loads((local_sweep / "stats.json").read_text())["summary"]
    top1 = [
        {(r["framework"], r["variant"]): r["mean"] for r in rows if r["metric"] == "top1_pct"}
        for rows in (ray_stats, local_stats)
    ]
    assert top1[0] == top1[1] and len(top1[0]) == 6


def test_the_same_sweep_submitted_as_a_ray_job_completes_on_the_head(
    cluster: Cluster, local_sweep: Path, tmp_path: Path
) -> None:
    """The job's driver runs in the head container, from the head's own install; the
    sweep directory is then on the head, fetched with docker cp (docs/cluster.md)."""
    started = time.monotonic()
    sweep_id = f"job-{os.getpid()}"
    entry = ["python", "-m", "harness", "sweep", "--executor", "ray", "--address", "auto"]
    entry += [*PLAN, "--data", NODE_DATA, "--results", HEAD_RESULTS, "--sweep-id", sweep_id]
    ray_cli = str(Path(sys.executable).with_name("ray"))
    submit = [ray_cli, "job", "submit", "--address", f"http://{IPS['head']}:{cluster.dashboard}"]
    job = _run(*submit, "--", *entry, timeout=SWEEP_TIMEOUT_S, check=False)
    assert "succeeded" in job.stdout, (job.stdout + job.stderr)[-4000:]
    _run("docker", "cp", f"{cluster.name('head')}:{HEAD_RESULTS}/{sweep_id}", str(tmp_path))
    _say(f"TIME ray-job-sweep {time.monotonic() - started:.0f} s (submit to fetched)")
    sweep = tmp_path / sweep_id
    assert {p["status"] for p in _index(sweep).values()} == {"ok"}
    assert (sweep / "report.md").is_file()
    assert _accuracy(sweep) == _accuracy(local_sweep)


def test_a_stopped_worker_fails_only_its_points_and_resume_completes_them(
    cluster: Cluster, tmp_path: Path
) -> None:
    started = time.monotonic()
    args = ["--executor", "ray", "--address", cluster.address, *PLAN, "--data", NODE_DATA]
    proc = cluster.sweep([*args, "--results", str(tmp_path), "--sweep-id", "loss"])
    sweep = tmp_path / "loss"
    tf_node = cluster.name("w-tensorflow")
    # A point's folder on its node; earlier sweeps' folders stay there (with model files).
    running = f"/tmp/harness-sweep/{scratch_name(SweepDir(sweep))}/tensorflow-seed*"
    try:
        deadline = time.monotonic() + 240
        while True:  # until one of this sweep's TensorFlow points runs on its worker
            ls = _run("docker", "exec", tf_node, "sh", "-c", f"ls -d {running}", check=False)
            if ls.returncode == 0:
                break
            assert time.monotonic() < deadline and proc.poll() is None, proc.stderr.read()[-3000:]
            time.sleep(0.5)
        _run("docker", "stop", "--time", "5", tf_node)
        stopped_at = time.monotonic()
        out, err = proc.communicate(timeout=SWEEP_TIMEOUT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 1, (out + err)[-4000:]
    index = _index(sweep)
    _say(
        f"TIME node-loss-sweep {time.monotonic() - started:.0f} s "
        f"(ended {time.monotonic() - stopped_at:.0f} s after the stop)"
    )
    for name, point in sorted(index.items()):
        _say(f"  node loss: {name}: {point['status']} after {point['attempts']} attempt(s); "
             f"{' | '.join(point['failures']) or 'no failures'}")  # fmt: skip
    torch, tf = index["pytorch-seed0"], index["tensorflow-seed0"]
    assert (torch["status"], torch["attempts"]) == ("ok", 1)
    assert tf["status"] == "failed"
    assert "no alive Ray node offers" in tf["reason"] and "harness_tensorflow" in tf["reason"]
    assert tf["attempts"] == len(tf["failures"])
    assert any("lost its Ray worker or node" in f for f in tf["failures"]), tf["failures"]
    kept = (sweep / "points/pytorch-seed0/pytorch/metrics.json").read_bytes()

    started, since = time.monotonic(), _now()
    _run("docker", "start", tf_node)  # the same container: its dataset copy is still there
    _wait_started(tf_node, since)
    proc = cluster.sweep(["--resume", str(sweep)])
    out, err = proc.communicate(timeout=SWEEP_TIMEOUT_S)
    assert proc.returncode == 0, (out + err)[-4000:]
    index = _index(sweep)
    _say(f"TIME resume {time.monotonic() - started:.0f} s (worker restarted, its point rerun)")
    assert {p["status"] for p in index.values()} == {"ok"}
    # What finished was neither lost nor run again.
    assert index["pytorch-seed0"]["attempts"] == 1
    assert (sweep / "points/pytorch-seed0/pytorch/metrics.json").read_bytes() == kept


def _refused_point(cluster: Cluster, tmp_path: Path, sweep_id: str) -> dict:
    """A one-point PyTorch sweep that can only go to the node under test."""
    args = ["--executor", "ray", "--address", cluster.address, *PLAN, "--frameworks", "pytorch"]
    args = [*args, "--data", NODE_DATA, "--results", str(tmp_path)]
    proc = cluster.sweep([*args, "--sweep-id", sweep_id])
    out, err = proc.communicate(timeout=SWEEP_TIMEOUT_S)
    assert proc.returncode == 1, (out + err)[-4000:]
    point = _index(tmp_path / sweep_id)["pytorch-seed0"]
    assert (point["status"], point["attempts"], point["exit_code"]) == ("failed", 1, 2)
    assert point["failures"] == [f"attempt 1 on {point['node']}: {point['reason']}"]
    assert not (tmp_path / sweep_id / "points" / "pytorch-seed0").exists()
    _say(f"  refused: {point['reason']}")
    return point


def test_a_worker_with_other_harness_code_is_refused_before_any_point_runs_there(
    cluster: Cluster, tmp_path: Path
) -> None:
    started = time.monotonic()
    other = f"{PREFIX}-other:latest"
    dockerfile = (
        f"FROM {cluster.images['pytorch']}\nUSER root\n"
        "RUN echo '# another harness version' >> /opt/quant-harness/harness/__init__.py\n"
        "USER 1000:1000\n"
    )
    built = subprocess.run(
        ["docker", "build", "-q", "--network", "none", "-t", other, "-"],
        input=dockerfile, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert built.returncode == 0, built.stderr
    try:
        _run("docker", "stop", "--time", "5", cluster.name("w-pytorch"))
        node = cluster.worker("w-other", "pytorch", image=other)
        point = _refused_point(cluster, tmp_path, "other-code")
        assert "runs other harness code (digest " in point["reason"]
        assert f"than the sweep's driver ({code_digest()})" in point["reason"]
        scratch = _run("docker", "exec", node, "ls", "/tmp/harness-sweep", check=False)
        assert scratch.returncode != 0  # nothing of the point was ever started there
        _run("docker", "rm", "-f", node)
    finally:
        _run("docker", "image", "rm", "-f", other, check=False)
    _say(f"TIME other-code-refused {time.monotonic() - started:.0f} s")


def test_a_worker_without_the_dataset_is_refused_in_one_line_naming_it_and_the_path(
    cluster: Cluster, tmp_path: Path
) -> None:
    started = time.monotonic()
    node = cluster.worker("w-nodata", "pytorch", data=False)  # the PyTorch worker is stopped
    point = _refused_point(cluster, tmp_path, "no-data")
    assert point["reason"].startswith("node ") and "\n" not in point["reason"]
    assert f"has no dataset at {NODE_DATA}: copy it there" in point["reason"]
    _run("docker", "rm", "-f", node)
    _say(f"TIME no-dataset-refused {time.monotonic() - started:.0f} s")
