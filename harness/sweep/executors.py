"""Executors run points; the driver decides what a result means. One small interface:

    with executor:                      # connect / start what it needs, or fail in one line
        executor.run(jobs, hooks)       # every job to its end; hooks.finished may return a
                                        # retry, which is run too. Ctrl-C: outstanding points
                                        # are stopped and KeyboardInterrupt is raised again.

``local`` runs points as processes on this machine, one at a time or ``parallel`` at once
(the driver has already split the cores between them); ``ray`` is in ray_executor.py.
"""

from __future__ import annotations

import socket
import subprocess
import threading
from collections import deque
from collections.abc import Iterable
from typing import Protocol

from harness.sweep.index import SweepDir
from harness.sweep.point import PointJob, PointOutcome, run_point, stop


class Hooks(Protocol):
    def started(self, job: PointJob, node: str) -> None: ...

    def finished(self, job: PointJob, outcome: PointOutcome) -> PointJob | None:
        """Record the outcome (its run directory is in points/ by now); a job to retry."""
        ...


class Executor(Protocol):
    name: str

    def __enter__(self) -> Executor: ...

    def __exit__(self, *exc: object) -> None: ...

    def run(self, jobs: Iterable[PointJob], hooks: Hooks) -> None: ...


class LocalExecutor:
    """Points as processes on this machine, ``parallel`` at a time."""

    name = "local"

    def __init__(self, sweep: SweepDir, parallel: int = 1) -> None:
        self.sweep = sweep
        self.parallel = max(1, parallel)
        self.node = socket.gethostname()

    def __enter__(self) -> LocalExecutor:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def run(self, jobs: Iterable[PointJob], hooks: Hooks) -> None:
        queue: deque[PointJob] = deque(jobs)
        if self.parallel == 1:
            while queue:  # a KeyboardInterrupt stops the running point inside run_point
                job = queue.popleft()
                retry = hooks.finished(job, self._run_one(job, hooks))
                if retry is not None:
                    queue.appendleft(retry)
            return
        _Pool(self, queue, hooks).run()

    def _run_one(self, job: PointJob, hooks: Hooks, on_start=None) -> PointOutcome:  # noqa: ANN001
        hooks.started(job, self.node)
        log = self.sweep.log_path(job.name)
        return run_point(job, self.sweep.points_dir, log, self.node, on_start=on_start)


class _Pool:
    """``parallel`` threads, each driving one point's process at a time. Only the main
    thread sees Ctrl-C; it then stops every running process and waits for the threads."""

    def __init__(self, executor: LocalExecutor, queue: deque[PointJob], hooks: Hooks) -> None:
        self.executor, self.queue, self.hooks = executor, queue, hooks
        self.lock = threading.Lock()
        self.running: dict[str, subprocess.Popen] = {}
        self.stopping = False
        self.errors: list[BaseException] = []

    def run(self) -> None:
        threads = [
            threading.Thread(target=self._work, name=f"sweep-point-{i}", daemon=True)
            for i in range(self.executor.parallel)
        ]
        for thread in threads:
            thread.start()
        try:
            while any(t.is_alive() for t in threads):
                for thread in threads:
                    thread.join(0.2)
        except KeyboardInterrupt:
            with self.lock:
                self.stopping = True
                procs = list(self.running.values())
            for proc in procs:
                stop(proc)
            for thread in threads:
                thread.join()
            raise
        if self.errors:
            raise self.errors[0]

    def _work(self) -> None:
        while True:
            with self.lock:
                if self.stopping or not self.queue:
                    return
                job = self.queue.popleft()
            try:
                outcome = self.executor._run_one(job, self._locked_hooks(), self._register(job))
            except BaseException as exc:  # an OSError writing the log: end the sweep with it
                with self.lock:
                    self.errors.append(exc)
                    self.stopping = True
                return
            with self.lock:
                self.running.pop(job.name, None)
                retry = self.hooks.finished(job, outcome)
                if retry is not None and not self.stopping:
                    self.queue.appendleft(retry)

    def _register(self, job: PointJob):  # noqa: ANN202
        def on_start(proc: subprocess.Popen) -> None:
            with self.lock:
                self.running[job.name] = proc
                late = self.stopping  # started while Ctrl-C was being handled
            if late:
                stop(proc)

        return on_start

    def _locked_hooks(self) -> Hooks:
        pool = self

        class _Locked:
            def started(self, job: PointJob, node: str) -> None:
                with pool.lock:
                    pool.hooks.started(job, node)

            def finished(self, job: PointJob, outcome: PointOutcome) -> PointJob | None:
                raise AssertionError("the pool calls finished itself")

        return _Locked()
