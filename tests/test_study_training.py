"""The training unit on its own: the shared stream per phase and the epoch loop."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import pytest

from harness_contract import events
from harness_contract.study.training import EpochDone, cycle, train, train_stream

from .numpy_framework import NumpyFramework
from .study_units import tiny_data, tiny_spec


@pytest.fixture
def fw() -> NumpyFramework:
    fw = NumpyFramework()
    fw.setup(tiny_spec(), threads=1)
    return fw


def _events(capsys: pytest.CaptureFixture[str], kind: str) -> list[dict]:
    parsed = (events.parse(line) for line in capsys.readouterr().out.splitlines())
    return [e for e in parsed if e and e["event"] == kind]


def test_the_loop_trains_every_epoch_and_reports_each_one(
    fw: NumpyFramework, capsys: pytest.CaptureFixture[str]
) -> None:
    spec, data = tiny_spec(), tiny_data()
    stream = train_stream(data, spec.train, spec.seed, spec.data.augment, "baseline")
    seen: list[EpochDone] = []
    model, stats = train(
        fw,
        fw.build(None),
        spec.train,
        stream,
        purpose="baseline",
        device="cpu",
        threads=1,
        after_epoch=seen.append,
    )
    assert stats.epochs == 3 and len(stats.loss) == 3 and stats.loss[-1] < stats.loss[0]
    assert stats.images == 3 * 4 * 50 and stats.device == "cpu"
    assert [d.epoch for d in seen] == [1, 2, 3]
    assert [d.seconds for d in seen] == stats.epoch_s  # the hook runs outside each epoch's clock
    reported = _events(capsys, "epoch")
    assert [(e["phase"], e["epoch"], e["epochs"]) for e in reported] == [
        ("baseline", 1, 3),
        ("baseline", 2, 3),
        ("baseline", 3, 3),
    ]
    assert np.abs(model.w).sum() > 0  # the model itself was trained


def test_a_non_finite_loss_stops_training_with_advice(fw: NumpyFramework) -> None:
    spec, data = tiny_spec(), tiny_data()
    trainer_of = fw.trainer

    def diverging(model, optim):
        inner = trainer_of(model, optim)
        inner.end_epoch = lambda: (float("inf"), 0.0)
        return inner

    fw.trainer = diverging
    stream = train_stream(data, spec.train, spec.seed, spec.data.augment, "qat")
    with pytest.raises(FloatingPointError, match="qat training diverged .* lower the learning"):
        train(fw, fw.build(None), spec.train, stream, purpose="qat", device="cpu", threads=1)


def test_a_batch_larger_than_the_training_split_is_refused(fw: NumpyFramework) -> None:
    spec, data = tiny_spec("train.batch_size=500"), tiny_data()
    stream = train_stream(data, spec.train, spec.seed, spec.data.augment, "baseline")
    with pytest.raises(ValueError, match="batch_size 500 exceeds the training images"):
        train(fw, fw.build(None), spec.train, stream, purpose="baseline", device="cpu", threads=1)


def test_the_part_wraps_the_whole_loop(fw: NumpyFramework) -> None:
    spec, data = tiny_spec("train.epochs=1"), tiny_data()
    log: list[str] = []
    trainer_of = fw.trainer

    def logged(model, optim):
        log.append("trainer")
        return trainer_of(model, optim)

    @contextlib.contextmanager
    def part() -> Iterator[None]:
        log.append("enter")
        yield
        log.append("exit")

    fw.trainer = logged
    stream = train_stream(data, spec.train, spec.seed, spec.data.augment, "baseline")
    train(fw, fw.build(None), spec.train, stream, purpose="baseline", device="cpu", threads=1,
          part=part)  # fmt: skip
    assert log == ["enter", "trainer", "exit"]


def test_each_phase_has_its_own_seeded_order_and_cycle_runs_into_the_next_epoch() -> None:
    spec, data = tiny_spec(), tiny_data()
    base = train_stream(data, spec.train, spec.seed, spec.data.augment, "baseline")
    again = train_stream(data, spec.train, spec.seed, spec.data.augment, "baseline")
    qat = train_stream(data, spec.qat, spec.seed, spec.data.augment, "qat")
    first = [b.labels for b in base.epoch(0)]
    assert all(np.array_equal(a, b.labels) for a, b in zip(first, again.epoch(0), strict=True))
    assert not np.array_equal(first[0], next(iter(qat.epoch(0))).labels)
    batches = cycle(base)
    taken = [next(batches).labels for _ in range(len(base) + 1)]
    assert np.array_equal(taken[-1], next(iter(base.epoch(1))).labels)
