"""The Ray executor: each point is a Ray task asking for the point's CPUs (its threads),
GPUs and, where nodes advertise one, a ``harness_<framework>`` resource (the node holds
that framework's image). The task runs ``harness run`` on its node with the sweep's
backend (the Docker backend gets exactly the GPUs Ray assigned), then ships the run
directory back; model files and traces stay on the node unless --fetch-all, and the
index says where. Ray is imported only here, and only when asked for.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import socket
import tempfile
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

from harness.sweep.code_digest import code_digest
from harness.sweep.executors import Hooks
from harness.sweep.index import SweepDir, SweepSettings
from harness.sweep.point import (
    LOG_TAIL_CHARS,
    STOP_GRACE_S,
    PointJob,
    PointOutcome,
    pack,
    run_point,
    unpack,
)
from harness_contract.errors import HarnessError
from harness_contract.exit_codes import ExitCode

INSTALL_HINT = "pip install 'quant-compare-harness[ray]' (or bash scripts/setup.sh --dev)"
UNREACHABLE_FIX = (
    "start one with `ray start --head` and pass its HOST:PORT (or auto), "
    "or drop --address to run a Ray instance on this machine for the sweep"
)
CONNECT_TIMEOUT_S = 5
FEASIBILITY_EVERY_S = 5.0  # how often queued points are checked against the nodes still alive
NODE_ID_LABEL = "ray.io/node-id"  # every Ray node's own label, its id
IMAGE_RESOURCE = "harness_{framework}"  # a node advertising it holds that framework's image


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise HarnessError(
            "--executor ray needs Ray, which is not installed", f"install it: {INSTALL_HINT}"
        ) from None
    return ray


CLIENT_FIX = (
    "run the sweep on a node of the cluster with --address auto, or pass the head's GCS "
    "HOST:PORT (6379 by default) from a machine that reaches it"
)


def check_reachable(address: str) -> None:
    """Ray's own connect retries for minutes; a closed port is said in seconds instead.
    A Ray Client address (ray://) is refused: points write to the sweep directory on the
    driver, which a client-side driver does not share with the cluster."""
    if address.startswith("ray://"):
        raise HarnessError(f"--address {address} is a Ray Client address", CLIENT_FIX)
    if address == "auto":
        return  # Ray finds the head this machine started, or says there is none
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise HarnessError(
            f"--address '{address}' is not HOST:PORT or auto", "e.g. --address 10.0.0.5:6379"
        )
    try:
        with socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S):
            pass
    except OSError as exc:
        raise HarnessError(
            f"Ray cluster at {address} is unreachable ({exc.strerror or exc})", UNREACHABLE_FIX
        ) from None


class RayExecutor:
    name = "ray"

    def __init__(self, settings: SweepSettings) -> None:
        self.settings = settings
        self.ray: Any = None
        self.started_here = False
        self.image_keys: set[str] = set()
        self.sweep: SweepDir | None = None

    # ------------------------------------------------------------ lifetime

    def __enter__(self) -> RayExecutor:
        address = self.settings.address
        if address:
            check_reachable(address)
        else:
            # A throwaway single-machine instance stays on loopback (read at import; Ray
            # otherwise binds the machine's public address).
            os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        ray = self.ray = import_ray()
        if address:
            try:
                ray.init(address=address, logging_level="ERROR", log_to_driver=False)
            except (ConnectionError, RuntimeError, ValueError) as exc:
                raise HarnessError(
                    f"cannot join the Ray cluster at {address} ({_first_line(exc)})",
                    UNREACHABLE_FIX,
                ) from None
        else:
            from harness_contract.system import usable_cpus

            ray.init(
                # "local": a new instance even where $RAY_ADDRESS or a running `ray start`
                # would make a bare ray.init() join that cluster instead
                address="local",
                num_cpus=usable_cpus(),
                include_dashboard=False,
                logging_level="ERROR",
                log_to_driver=False,
            )
            self.started_here = True
        self.image_keys = {
            key for node in self._alive() for key in node["Resources"] if key.startswith("harness_")
        }
        return self

    def __exit__(self, *exc: object) -> None:
        if self.ray is not None:
            self.ray.shutdown()  # a cluster we joined keeps running; one we started stops

    def threads_for(self, threads: int, given: bool) -> int:
        """--threads, else the CPUs of the smallest node with any (every node can take a
        point); refused when no alive node has that many CPUs."""
        cpus = [int(n["Resources"].get("CPU", 0)) for n in self._alive()]
        cpus = [c for c in cpus if c > 0]
        if not cpus:
            raise HarnessError(
                "the Ray cluster has no node with CPUs", "add a worker node with CPUs"
            )
        chosen = threads if given else min(cpus)
        if chosen > max(cpus):
            raise HarnessError(
                f"no Ray node has {chosen} CPUs for a point's threads "
                f"(the largest has {max(cpus)})",
                f"pass --threads {max(cpus)} or fewer",
            )
        return chosen

    def describe(self) -> str:
        nodes = self._alive()
        cpus = sum(n["Resources"].get("CPU", 0) for n in nodes)
        gpus = sum(n["Resources"].get("GPU", 0) for n in nodes)
        where = self.settings.address or "a Ray instance started for this sweep"
        size = f"{len(nodes)} nodes, {cpus:g} CPUs, {gpus:g} GPUs"
        return f"ray at {where} ({size}, {self.settings.threads} thread(s) a point)"

    def bind(self, sweep: SweepDir) -> RayExecutor:
        self.sweep = sweep
        return self

    # ------------------------------------------------------------ scheduling

    def _alive(self) -> list[dict[str, Any]]:
        return [n for n in self.ray.nodes() if n.get("Alive")]

    def _needs(self, job: PointJob) -> dict[str, float]:
        needs = {"CPU": float(job.threads)}
        if self.settings.gpus_per_point:
            needs["GPU"] = float(self.settings.gpus_per_point)
        # Once nodes are marked with the image they hold, a point goes only to its own
        # framework's: none alive (a worker down as the sweep starts) fails it, saying so.
        if self.image_keys:
            key = IMAGE_RESOURCE.format(framework=job.point.framework)
            needs[key] = 0.01  # a share: the resource marks the node, it does not limit points
        return needs

    def _able(self, job: PointJob) -> list[str]:
        """The ids of the alive nodes that offer what the point needs."""
        needs = self._needs(job)
        return [
            node["NodeID"]
            for node in self._alive()
            if all(node["Resources"].get(k, 0) >= v for k, v in needs.items())
        ]

    def _placement(self, job: PointJob, failed_on: set[str]) -> dict[str, Any]:
        """A retry goes to another node able to run it, where there is one (a node-local
        fault, a full disk or a broken install, would fail it again); else anywhere."""
        if not failed_on or not (set(self._able(job)) - failed_on):
            return {}
        return {"label_selector": {NODE_ID_LABEL: f"!in({', '.join(sorted(failed_on))})"}}

    def _infeasible(self, job: PointJob) -> str | None:
        if self._able(job):
            return None
        wanted = ", ".join(f"{k} {v:g}" for k, v in self._needs(job).items())
        return f"no alive Ray node offers what the point needs ({wanted})"

    def run(self, jobs: Iterable[PointJob], hooks: Hooks) -> None:
        assert self.sweep is not None, "bind() the sweep directory first"
        ray = self.ray
        task = ray.remote(point_task)
        queue: deque[PointJob] = deque(jobs)
        pending: dict[Any, PointJob] = {}
        cancelled: dict[Any, str] = {}  # ref -> why we cancelled it (no node can run it)
        failed_on: dict[str, set[str]] = {}  # point -> the nodes its failed attempts ran on
        checked = time.monotonic()
        try:
            while queue or pending:
                while queue:
                    job = queue.popleft()
                    reason = self._infeasible(job)
                    if reason:  # an attempt all the same: the index counts it with its reason
                        hooks.started(job, "ray (no node can run it)")
                        retry = hooks.finished(job, PointOutcome(None, reason, 0.0, "ray"))
                        if retry is not None:
                            queue.append(retry)
                        continue
                    needs = self._needs(job)
                    options = {
                        "num_cpus": needs.pop("CPU"),
                        "num_gpus": needs.pop("GPU", 0),
                        "resources": needs,
                        "max_retries": 0,  # retries are the sweep's: counted and recorded
                        **self._placement(job, failed_on.get(job.name, set())),
                    }
                    ref = task.options(**options).remote(
                        job, scratch_name(self.sweep), self.settings.fetch_all
                    )
                    pending[ref] = job
                    hooks.started(job, "ray (queued)")
                if not pending:
                    continue
                ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
                for ref in ready:
                    job = pending.pop(ref)
                    outcome = self._collect(ref, job, cancelled.pop(ref, None))
                    if not outcome.ok and outcome.node_id:
                        failed_on.setdefault(job.name, set()).add(outcome.node_id)
                    retry = hooks.finished(job, outcome)
                    if retry is not None:
                        queue.append(retry)
                if (
                    time.monotonic() - checked > FEASIBILITY_EVERY_S
                ):  # a node lost: queued points may wait forever
                    checked = time.monotonic()
                    for ref, job in pending.items():
                        reason = self._infeasible(job)
                        if reason and ref not in cancelled:
                            cancelled[ref] = reason
                            ray.cancel(ref)
        except KeyboardInterrupt:
            for ref in pending:
                with contextlib.suppress(Exception):
                    ray.cancel(ref)  # a running point gets KeyboardInterrupt and stops its process
            done: list[Any] = []
            with contextlib.suppress(Exception):
                done, _ = ray.wait(
                    list(pending), num_returns=len(pending), timeout=STOP_GRACE_S + 10
                )
            for ref in done:  # a point that finished before the interrupt keeps its result
                job = pending.pop(ref)
                with contextlib.suppress(Exception):
                    hooks.finished(job, self._collect(ref, job, None))
            raise

    def _collect(self, ref: Any, job: PointJob, cancelled_because: str | None) -> PointOutcome:
        ray = self.ray
        try:
            result = ray.get(ref)
        except ray.exceptions.TaskCancelledError:
            if cancelled_because:
                return PointOutcome(None, cancelled_because, 0.0, "ray")
            return PointOutcome(ExitCode.INTERRUPTED, "cancelled", 0.0, "ray")
        except ray.exceptions.RayError as exc:  # the worker or its node died under the point
            return PointOutcome(
                None,
                f"lost its Ray worker or node ({type(exc).__name__}: {_first_line(exc)})",
                0.0,
                "ray",
            )
        assert self.sweep is not None
        with self.sweep.log_path(job.name).open("a", encoding="utf-8") as log:
            log.write(result["log"])
        if result["archive"] is not None:
            self.sweep.set_aside(job.name)
            unpack(result["archive"], self.sweep.point_dir(job.name))
        return result["outcome"]


def scratch_name(sweep: SweepDir) -> str:
    """The sweep's folder name on a node: its id plus a digest of where it lives, so two
    sweeps of the same id (in other results folders) never share a node's scratch."""
    where = hashlib.sha256(str(sweep.path.resolve()).encode()).hexdigest()[:8]
    return f"{sweep.path.name}-{where}"


def _first_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0][:300] if lines else type(exc).__name__


# ---------------------------------------------------------------- on the node


def _refusal(job: PointJob, where: str) -> PointOutcome | None:
    """Why this node cannot run the point, before anything starts: other harness code or
    no dataset. Neither is retried: both are the node's setup, which a user must fix."""
    mine = code_digest()
    if job.code_digest and job.code_digest != mine:
        reason = (
            f"node {where} runs other harness code (digest {mine}) than the sweep's driver "
            f"({job.code_digest}): install the driver's harness on it"
        )
        return PointOutcome(ExitCode.USER_ERROR, reason, 0.0, where)
    if job.data and not Path(job.data).exists():
        reason = (
            f"node {where} has no dataset at {job.data}: copy it there (every node needs "
            "the sweep's --data at that path)"
        )
        return PointOutcome(ExitCode.USER_ERROR, reason, 0.0, where)
    return None


def point_task(job: PointJob, sweep_name: str, fetch_all: bool) -> dict[str, Any]:
    """Runs inside a Ray worker: the point as a process, its run directory packed."""
    import ray

    node_id = ray.get_runtime_context().get_node_id()
    # The short node id tells apart nodes that share a host (containers on one machine).
    where = f"{socket.gethostname()} ({ray.util.get_node_ip_address()}, node {node_id[:8]})"
    refused = _refusal(job, where)
    if refused is not None:
        refused = replace(refused, node_id=node_id)
        return {"outcome": refused, "archive": None, "log": f"{refused.reason}\n"}
    gpu_ids = ray.get_gpu_ids()
    if gpu_ids and job.backend == "docker":  # the container sees exactly Ray's GPUs
        job = job.with_gpus(",".join(str(g) for g in gpu_ids))
    scratch = (
        Path(tempfile.gettempdir()) / "harness-sweep" / sweep_name / f"{job.name}.{job.attempt}"
    )
    shutil.rmtree(scratch, ignore_errors=True)
    log = scratch / "point.log"
    outcome = run_point(job, scratch / "points", log, where, die_on_parent_exit=True)
    outcome = replace(outcome, node_id=node_id)
    run_dir = scratch / "points" / job.name
    archive, left_files, left_bytes = (None, 0, 0)
    if run_dir.is_dir():
        archive, left_files, left_bytes = pack(run_dir, fetch_all)
    text = log.read_text(encoding="utf-8", errors="replace")[-LOG_TAIL_CHARS:]
    if left_files:
        outcome = replace(
            outcome, left_on_node=str(run_dir), left_files=left_files, left_bytes=left_bytes
        )
    else:
        shutil.rmtree(scratch, ignore_errors=True)
    return {"outcome": outcome, "archive": archive, "log": text}
