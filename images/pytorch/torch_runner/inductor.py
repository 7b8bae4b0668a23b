"""torch.compile (Inductor, freezing): PyTorch's server deployment path, for the fp32
model and for the converted PT2E q/dq graph (what X86InductorQuantizer feeds Inductor).

One compile serves every batch size: the batch dimension of every input is marked
*unbacked*, so dynamo neither specializes batch 1 (its 0/1 rule) nor splits the batch
range where a conv's backend choice asks ``batch < 16`` (both recompiled a plain
``dynamic=True`` model twice). Calls run under the ``fail_on_recompile`` stance: a
recompile inside predict or a timed call is an error, never hidden compile time.
"""

from __future__ import annotations

import atexit
import copy
import functools
import os
import shutil
import sysconfig
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from harness_contract.framework import Lowered, RungUnavailable

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


@dataclass
class CompiledModel:
    """A torch.compile'd module and the eager module it was compiled from (saved as an
    exported program: what torch.compile starts from)."""

    compiled: Any
    source: nn.Module
    precision: str
    max_batch: int

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        torch._dynamo.decorators.mark_unbacked(x, 0)
        with torch.compiler.set_stance("fail_on_recompile"):
            return self.compiled(x)

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


def _compile(source: nn.Module, precision: str, max_batch: int) -> Lowered:
    """Compile and run it once at batch 2 and at batch 1 (both must reuse one graph);
    compile_s covers the whole first call, the only one that compiles."""
    require_compiler()
    setup_s = setup_seconds()
    compiled = torch.compile(source, dynamic=False)
    model = CompiledModel(compiled, source, precision, max_batch)
    graphs = torch._dynamo.utils.counters["stats"]["unique_graphs"]
    t0 = time.perf_counter()
    # Freezing (weights as constants, folded and prepacked) is read at compile time; the
    # patch is scoped to the one compile, and no recompile may follow (see __call__).
    with torch._inductor.config.patch(freezing=True), torch.no_grad():
        x = torch.randn(EXAMPLE_BATCH, 3, 32, 32)
        torch._dynamo.decorators.mark_unbacked(x, 0)
        compiled(x)
    compile_s = time.perf_counter() - t0
    with torch.no_grad():
        model(torch.randn(1, 3, 32, 32))  # fails here if batch 1 would need its own graph
    graphs = torch._dynamo.utils.counters["stats"]["unique_graphs"] - graphs
    note = (
        f"torch.compile with freezing, batch dimension unbacked: one compile "
        f"({graphs} dynamo graph(s)) serves batch 1..{max_batch}, checked at batch 1 and "
        f"{EXAMPLE_BATCH}; a cold Inductor cache private to this run (${CACHE_ENV})"
    )
    setup = (
        f"compile time excludes Inductor's one-time setup in this process (vector-ISA "
        f"probe, precompiled header): {setup_s:.1f} s, paid before the first rung"
    )
    return Lowered(model, compile_s=compile_s, notes=[note, setup])


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
