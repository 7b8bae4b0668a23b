"""The runtime ladder: every deployable runtime a framework's models are measured on (the
ladders themselves are in the framework table, harness_contract.frameworks).

Each variant has one *primary* runtime, where its own figures (accuracy, size, latency)
are taken, and may have *rungs*: the same variant run on another runtime, measured the
same way. Speed-ups are only ever computed between two rows of one runtime (int8 on
LiteRT over fp32 on LiteRT, PT2E int8 through Inductor over fp32 through Inductor);
a change of runtime is never presented as a quantization speed-up.
"""

from __future__ import annotations

from harness_contract.frameworks import FRAMEWORKS, Runtime


def primary(framework: str, variant: str) -> str | None:
    """Where ``variant``'s own figures are taken (None: a framework not in the table)."""
    entry = FRAMEWORKS.get(framework)
    return None if entry is None else entry.primary.get(variant)


def rungs(framework: str, variant: str) -> tuple[str, ...]:
    """The runtimes beyond the primary one ``variant`` may be measured on, in ladder order."""
    entry = FRAMEWORKS.get(framework)
    return () if entry is None else entry.rungs.get(variant, ())


def ladder_order() -> dict[tuple[str, str], int]:
    """(framework, slug) -> its place in that framework's ladder."""
    return {
        (r.framework, r.slug): i for fw in FRAMEWORKS.values() for i, r in enumerate(fw.runtimes)
    }


def runtime(framework: str, slug: str) -> Runtime:
    """The runtime named ``slug``; an unknown one (a newer metrics file) gets a plain label."""
    for r in FRAMEWORKS[framework].runtimes if framework in FRAMEWORKS else ():
        if r.slug == slug:
            return r
    return Runtime(slug, framework, slug)


def optional_runtimes(framework: str) -> tuple[str, ...]:
    """The runtimes a spec may switch on or off for ``framework`` (every rung slug)."""
    entry = FRAMEWORKS.get(framework)
    every = entry.rungs.values() if entry is not None else ()
    seen = dict.fromkeys(slug for slugs in every for slug in slugs)
    return tuple(seen)


def label(framework: str, slug: str | None) -> str:
    return "—" if slug is None else runtime(framework, slug).label
