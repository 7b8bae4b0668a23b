"""The entrypoint contract every runner shares: ``--spec FILE --data DIR --out DIR``
(and ``--run-id``, ``--runtime``, ``--image`` as the host knows them, and
``--allow-untested-versions`` when the user asked for it).

Exit codes (harness_contract.exit_codes): OK, the study complete (individual phases may
still have failed: see metrics.json), USER_ERROR, a problem the user can fix (one line on
stderr), INTERRUPTED (completed phases kept). Progress events go to stdout, logs to
stderr; the host keeps both in runner.log.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from harness_contract import events
from harness_contract.errors import HarnessError
from harness_contract.exit_codes import ExitCode
from harness_contract.fs.atomic import full_disk_errno
from harness_contract.fs.oserrors import os_error
from harness_contract.layout import ARTIFACTS_DIR, METRICS_FILE
from harness_contract.versions import ALLOW_FLAG, allowing_untested

if TYPE_CHECKING:
    from harness_contract.metrics import ImageIdentity
    from harness_contract.study.framework import Framework

# The way on after an OS error while writing results (os_error adds "free space there").
FULL_FIX = "move the run directory to a bigger disk, then finish it with --resume"
OS_FIX = "make the run directory writable, then finish it with --resume"


def parse_args(argv: list[str] | None, prog: str) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog=prog, description="Run the quantization study for one framework."
    )
    p.add_argument("--spec", type=Path, required=True, help="resolved experiment spec (JSON/TOML)")
    p.add_argument("--data", type=Path, required=True, help="CIFAR-10 python-format directory")
    p.add_argument("--out", type=Path, required=True, help="this framework's output directory")
    p.add_argument("--run-id", default=None, help="defaults to the name of --out's parent")
    p.add_argument("--runtime", default=None, help="where this runs, recorded as provenance")
    p.add_argument(
        "--image",
        type=_image_identity,
        default=None,
        help="the container image this runs in, as JSON (repository, tag, digest, id); "
        "recorded as provenance",
    )
    p.add_argument(
        ALLOW_FLAG,
        action="store_true",
        help="run on framework versions other than the tested ones (another major.minor); "
        "recorded as untested in metrics.json and the report",
    )
    return p.parse_args(argv)


def _image_identity(text: str) -> ImageIdentity:
    from pydantic import ValidationError

    from harness_contract.metrics import ImageIdentity

    try:
        return ImageIdentity.model_validate_json(text)
    except ValidationError as exc:  # argparse turns this into one line and exit 2
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "value"
        raise argparse.ArgumentTypeError(
            f"not an image identity ({where}: {first['msg']}): {text!r}"
        ) from None


def runner_command(
    spec: Path,
    data: Path,
    out: Path,
    run_id: str,
    runtime: str,
    image: ImageIdentity | None = None,
    allow_untested_versions: bool = False,
) -> list[str]:
    """The arguments ``parse_args`` reads, in the order it documents: the one place a
    backend gets a runner's command line from (paths as the runner will see them). Each
    is ``--option=value``, so no value (a run id "-x", a path "--data") reads as an option."""
    image_args = [] if image is None else [f"--image={image.model_dump_json()}"]
    return [
        f"--spec={spec}",
        f"--data={data}",
        f"--out={out}",
        f"--run-id={run_id}",
        f"--runtime={runtime}",
        *image_args,
        *([ALLOW_FLAG] if allow_untested_versions else []),
    ]


def _terminate_as_interrupt(signum: int, frame: object) -> None:
    # `docker stop` and the host's cancel send SIGTERM: treat it like Ctrl-C so
    # completed phases are saved and the run is marked interrupted.
    raise KeyboardInterrupt


def _refuse_completed(out_dir: Path) -> None:
    from harness_contract.metrics import read_metrics

    metrics = out_dir / METRICS_FILE
    if metrics.exists() and read_metrics(metrics).status == "complete":
        raise HarnessError(
            f"{out_dir} already holds completed results",
            "choose a new output directory; completed results are never overwritten",
        )


def _ensure_writable(out_dir: Path) -> None:
    try:
        (out_dir / ARTIFACTS_DIR).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise HarnessError(
            f"cannot write to {out_dir} ({exc.strerror})", "choose a writable results directory"
        ) from None


def main(
    make_framework: Callable[[], Framework], argv: list[str] | None = None, prog: str = "runner"
) -> int:
    args = parse_args(argv, prog)
    logging.basicConfig(
        level=logging.INFO,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    signal.signal(signal.SIGTERM, _terminate_as_interrupt)
    # For the runner's whole life: its version check, then the provenance, read it.
    with allowing_untested(args.allow_untested_versions):
        return _run(make_framework, args)


def _run(make_framework: Callable[[], Framework], args: argparse.Namespace) -> int:
    # The study's modules load here, not at import: the host builds runner command lines
    # with this module and must not pay for the pipeline.
    from harness_contract.data.cifar import load_cifar10
    from harness_contract.spec import effective_threads, load_resolved_spec
    from harness_contract.study.pipeline import Study

    try:
        spec = load_resolved_spec(args.spec)
        out_dir = args.out.resolve()
        _refuse_completed(out_dir)
        _ensure_writable(out_dir)
        data = load_cifar10(args.data, spec.data.train_limit, spec.data.test_limit)
        fw = make_framework()
        runtime = args.runtime or f"local ({sys.executable})"
        run_id = args.run_id or out_dir.parent.name
        study = Study(fw, spec, data, out_dir, run_id, runtime, image=args.image)
        study.run(effective_threads(spec))
        return ExitCode.OK
    except HarnessError as exc:
        print(f"error: {exc.one_line()}", file=sys.stderr)
        events.emit("error", message=exc.one_line())
        return ExitCode.USER_ERROR
    except OSError as exc:  # a full or read-only results disk: finished phases are saved
        fix = FULL_FIX if full_disk_errno(exc) is not None else OS_FIX
        line = os_error(exc, args.out, fix).one_line()
        print(f"error: {line}", file=sys.stderr)
        events.emit("error", message=line)
        return ExitCode.USER_ERROR
    except KeyboardInterrupt:
        print("interrupted: completed phases are kept in metrics.json", file=sys.stderr)
        events.emit("error", message="interrupted")
        return ExitCode.INTERRUPTED
