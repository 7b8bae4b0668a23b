"""torch.compile (Inductor, freezing): PyTorch's server deployment path, for the fp32
model and for the converted PT2E q/dq graph (what X86InductorQuantizer feeds Inductor).

Every compile is a static-shape one for one batch size (``CompiledModel.for_batch``,
``dynamic=False``): what a user serving batch B compiles. Latency at batch B is timed on
B's compile, and accuracy runs on the compile for the largest latency batch, a short last
batch padded as such a server pads it, so the accuracy figure belongs to a model that was
timed. A general compile (batch dimension unbacked, one graph for every batch) gives up
the static one's shape-specialized kernels: by hand (issue 17), full width, batch 1,
2 threads, 12.4 ms against 7.0 ms (eager 10.6 ms), within 3% of each other at batch 32;
and it cost one more compile per rung.

Every compile enters through a function with a code object of its own (``_entry``):
dynamo keeps its cache on the code object it enters, so a second compile of the same
module would otherwise find the first one's graph instead of compiling its own. Calls
run under the ``fail_on_recompile`` stance: a recompile inside predict or a timed call is
an error, never hidden compile time.
"""

from __future__ import annotations

import atexit
import copy
import dataclasses
import functools
import os
import shutil
import sysconfig
import tempfile
import time
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from harness_contract.study.framework import Lowered, RungUnavailable

from .quantize import Int8Model

CACHE_ENV = "TORCHINDUCTOR_CACHE_DIR"
EXAMPLE_BATCH = 2
THREADS_REASON = (
    "a torch.compile'd model is built for the thread count it was compiled at (dynamo "
    "guards torch.get_num_threads() and recompiles on a change): another count would need "
    "a second cold compile, which this rung does not pay"
)


_cache: dict[str, str] = {}


def cold_cache() -> str:
    """Give this process an Inductor cache of its own (once), removed at exit, so every
    compile time recorded is a cold one (no kernel or graph reused from an earlier run).
    Any $TORCHINDUCTOR_CACHE_DIR already set (Inductor sets its shared default itself) is
    replaced: that cache outlives runs."""
    if "path" not in _cache:
        _cache["path"] = tempfile.mkdtemp(prefix="inductor-cache-")
        atexit.register(shutil.rmtree, _cache["path"], ignore_errors=True)
    os.environ[CACHE_ENV] = _cache["path"]
    return _cache["path"]


def python_header() -> Path:
    """Where Inductor's C++ wrapper looks for Python.h (cpp_builder reads the same path)."""
    return Path(sysconfig.get_path("include")) / "Python.h"


def require_compiler() -> str:
    """The C++ compiler Inductor will use; RungUnavailable naming what it looked for, or
    naming the missing Python.h the compiler would stop on."""
    from torch._inductor import config, cpp_builder, exc

    try:
        compiler = cpp_builder.get_cpp_compiler()
    except exc.InvalidCxxCompiler as error:
        searched = config.cpp.cxx if isinstance(config.cpp.cxx, tuple) else (config.cpp.cxx,)
        names = ", ".join(str(c) for c in searched if c is not None)
        raise RungUnavailable(
            f"Inductor needs a C++ compiler on CPU and found none ({names} "
            f"from torch._inductor.config.cpp.cxx / $CXX)",
            "install g++ (apt-get install g++) or point $CXX at a C++ compiler",
        ) from error
    header = python_header()
    if not header.is_file():
        raise RungUnavailable(
            f"Inductor's C++ wrapper includes Python.h, which this interpreter lacks ({header})",
            "install the interpreter's headers (Debian: apt-get install python3-dev)",
        )
    return compiler


def _entry(module: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """``module``'s forward behind a code object made for this one compile (see the module
    docstring): dynamo's cache and its recompile limit then belong to this compile alone."""

    def forward(x: torch.Tensor) -> torch.Tensor:
        return module(x)

    code = forward.__code__.replace()  # a new code object, equal to the old
    return types.FunctionType(code, forward.__globals__, "forward", None, forward.__closure__)


def _first_call(compiled: Callable[[torch.Tensor], Any], x: torch.Tensor) -> float:
    """Seconds of the first call, the one that compiles, with freezing on (weights as
    constants, folded and prepacked; read at compile time, so patched for this call only).
    Raises unless it compiled a graph of its own: dynamo falls back to eager without one
    (e.g. past its recompile limit), and eager must never be timed as Inductor."""
    graphs = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    t0 = time.perf_counter()
    with torch._inductor.config.patch(freezing=True), torch.no_grad():
        compiled(x)
    seconds = time.perf_counter() - t0
    if torch._dynamo.utils.counters["stats"]["unique_graphs"] == graphs:
        raise RuntimeError(f"torch.compile made no graph for a batch of {len(x)}")
    return seconds


@dataclass
class CompiledModel:
    """A static-shape torch.compile of ``source`` for ``batch`` images, and the eager module
    it was compiled from (saved as an exported program: what torch.compile starts from).
    Another number of images runs in chunks of ``batch``, the last padded with zeros: in
    eval mode no image sees another, so padding changes no logit. ``batch`` None (and
    nothing compiled): the rung's template, which ``for_batch`` compiles and which cannot
    run itself."""

    compiled: Any
    source: nn.Module
    precision: str
    max_batch: int
    batch: int | None = None

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        if self.batch is None:
            raise RuntimeError(
                "an Inductor rung runs on the compile made for a batch size (for_batch), "
                "not on its template"
            )
        if len(x) != self.batch:
            return torch.cat([self(_padded(c, self.batch))[: len(c)] for c in x.split(self.batch)])
        with torch.compiler.set_stance("fail_on_recompile"):
            return self.compiled(x)

    def for_batch(self, batch: int) -> tuple[CompiledModel, float]:
        """A static-shape compile of the source for ``batch`` (dynamic=False, freezing), and
        its compile seconds (cold but for kernels of identical source an earlier compile of
        this run built): the model a user serving that batch builds."""
        compiled = torch.compile(_entry(self.source), dynamic=False)
        seconds = _first_call(compiled, torch.randn(batch, 3, 32, 32))
        return dataclasses.replace(self, compiled=compiled, batch=batch), seconds

    def export(self) -> torch.export.ExportedProgram:
        batch = torch.export.Dim("batch", min=1, max=max(self.max_batch, EXAMPLE_BATCH))
        with torch.no_grad():
            return torch.export.export(
                self.source, (torch.randn(EXAMPLE_BATCH, 3, 32, 32),), dynamic_shapes=({0: batch},)
            )


@functools.cache
def setup_seconds() -> float:
    """Inductor's one-time setup in this process, paid before the first rung compiles:
    its vector-ISA probe (a test program compiled per ISA, about 8 s on 2 cores) and the
    precompiled torch header its kernels include. A throwaway function pays it, so each
    rung's compile_s is its own model's compile: otherwise whichever rung compiles first
    (fp32) carries it and looks several times dearer than the int8 compile after it."""
    t0 = time.perf_counter()
    with torch.no_grad():
        torch.compile(lambda x: (x * 2.0).relu(), dynamic=False)(torch.ones(64))
    return time.perf_counter() - t0


def _padded(x: torch.Tensor, batch: int) -> torch.Tensor:
    missing = batch - len(x)
    return torch.cat([x, x.new_zeros(missing, *x.shape[1:])]) if missing else x


def _compile(source: nn.Module, precision: str, max_batch: int) -> Lowered:
    """The rung's template: nothing is compiled until the ladder asks ``for_batch`` for each
    latency batch size (compile_s is then the largest batch's, the one accuracy ran on)."""
    require_compiler()
    setup_s = setup_seconds()
    model = CompiledModel(None, source, precision, max_batch)
    note = (
        "torch.compile with freezing, static shapes: one compile per latency batch size "
        "(dynamic=False), as a user serving that batch builds it, each compile's seconds in "
        "compile_s_by_batch; accuracy on the largest batch's compile (compile_s), a short "
        f"last batch padded; a cold Inductor cache private to this run (${CACHE_ENV})"
    )
    setup = (
        f"compile time excludes Inductor's one-time setup in this process (vector-ISA "
        f"probe, precompiled header): {setup_s:.1f} s, paid before the first rung"
    )
    return Lowered(model, notes=[note, setup], for_batch=model.for_batch)


def compile_fp32(model: nn.Module, max_batch: int) -> Lowered:
    return _compile(copy.deepcopy(model).cpu().eval(), "fp32", max_batch)


def compile_int8(model: Int8Model, max_batch: int) -> Lowered:
    if model.flow.startswith("fx"):
        raise RungUnavailable(
            f"Inductor int8 needs the PT2E flow; this variant was quantized with {model.flow}",
            "set pytorch.quant_flow=pt2e",
        )
    lowered = _compile(model.serializable, "int8", max_batch)
    lowered.notes.append(
        "the converted PT2E q/dq graph (X86InductorQuantizer) compiled by Inductor, which "
        "fuses it onto oneDNN int8 kernels: the same int8 model as the variant"
    )
    return lowered
