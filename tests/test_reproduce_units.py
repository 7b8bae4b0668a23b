"""The pieces of `harness reproduce` on their own: the bootstrap latency band, the
context differences that explain other bits, and the figures' tolerances."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from harness.reproduce.compare import TOP1_TOLERANCE_PTS, Figure
from harness.reproduce.explain import context_differences
from harness.reproduce.latency_band import p50_ratio_band
from harness.reproduce.original import Original
from harness.run.rundir import RunDir
from harness_contract.metrics import ImageIdentity
from harness_contract.spec import build_spec
from tests.fake_runner import metrics_for


def _samples(seed: int, n: int = 500, scale: float = 1.0) -> np.ndarray:
    return scale * np.random.default_rng(seed).lognormal(mean=1.0, sigma=0.15, size=n)


def test_the_same_distribution_keeps_1_inside_the_band() -> None:
    band = p50_ratio_band(_samples(1), _samples(2))
    assert band.low is not None and band.high is not None
    assert band.low <= 1.0 <= band.high and band.within_noise is True
    assert "within noise" in band.describe()


def test_twice_as_slow_is_outside_the_band() -> None:
    band = p50_ratio_band(_samples(1), _samples(2, scale=2.0))
    assert band.within_noise is False
    assert 1.9 < band.ratio < 2.1 and band.low is not None and band.low > 1.0


def test_the_band_is_the_same_for_the_same_samples() -> None:
    old, new = _samples(3), _samples(4)
    assert p50_ratio_band(old, new) == p50_ratio_band(old, new)


def test_too_few_samples_give_a_ratio_but_no_judgement() -> None:
    band = p50_ratio_band(np.array([1.0]), np.array([2.0]))
    assert band.ratio == 2.0 and band.within_noise is None
    assert "no samples" in band.describe()


def test_context_differences_name_the_fields_that_decide_bits() -> None:
    old = metrics_for("pytorch", "a").provenance
    new = old.model_copy(deep=True)
    new.cpu_model, new.threads = "AMD EPYC", 4
    old.cpu_flags, new.cpu_flags = ["avx2", "amx"], ["avx2", "avx512_bf16"]
    old.framework_versions, new.framework_versions = {"torch": "2.13.0"}, {"torch": "2.14.0"}
    new.hostname = "elsewhere"  # not a deciding field

    diffs = {d.field: d for d in context_differences(old, new)}

    assert set(diffs) == {"cpu_model", "threads", "cpu_flags", "framework_versions"}
    assert diffs["cpu_flags"].describe() == "cpu_flags: amx -> avx512_bf16"
    versions = diffs["framework_versions"]
    assert (versions.old, versions.new) == ("torch=2.13.0", "torch=2.14.0")


def test_identical_contexts_have_no_differences() -> None:
    old = metrics_for("pytorch", "a").provenance
    assert context_differences(old, old.model_copy(deep=True)) == []


def test_top1_within_the_stated_tolerance_agrees() -> None:
    inside = Figure("top-1", "pts", 50.0, 50.0 + TOP1_TOLERANCE_PTS, TOP1_TOLERANCE_PTS)
    outside = Figure("top-1", "pts", 50.0, 50.0 + 2 * TOP1_TOLERANCE_PTS, TOP1_TOLERANCE_PTS)
    assert inside.within is True and outside.within is False


# ---------------------------------------------------------------- images (no engine needed)


class _Images:
    def __init__(self, ids: dict[str, str]) -> None:
        self.ids = ids

    def get(self, ref: str) -> SimpleNamespace:
        import docker

        if ref not in self.ids:
            raise docker.errors.ImageNotFound(ref)
        return SimpleNamespace(id=self.ids[ref])


def _original_in_images(tmp_path: Path, identities: dict[str, ImageIdentity]) -> Original:
    metrics = {}
    for name, identity in identities.items():
        m = metrics_for(name, "r")
        m.provenance.image = identity
        metrics[name] = m
    return Original(RunDir(tmp_path), build_spec("smoke"), None, metrics)


def test_image_notes_say_where_the_rerun_image_is_not_the_recorded_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("docker")
    import harness.images.build
    from harness.reproduce.image_check import image_notes

    same, other, locked = ("sha256:" + c * 64 for c in "123")
    original = _original_in_images(
        tmp_path,
        {
            "pytorch": ImageIdentity(repository="quant-harness/pytorch", tag="0.1.0", id=same),
            "tensorflow": ImageIdentity(repository="reg/x", digest=f"reg/x@{other}", id=other),
        },
    )
    lock = harness.images.build.load_lock()
    rows = {
        **lock.frameworks,
        "tensorflow": replace(lock.frameworks["tensorflow"], published_digest=locked),
    }
    monkeypatch.setattr(harness.images.build, "load_lock", lambda: replace(lock, frameworks=rows))
    client = SimpleNamespace(images=_Images({harness.images.build.image_ref("pytorch"): same}))
    monkeypatch.setattr(harness.images.build, "docker_client", lambda: client)

    notes = image_notes(original)

    assert len(notes) == 1  # pytorch's local image is the recorded one
    assert f"reg/x@{other}" in notes[0] and locked in notes[0]
