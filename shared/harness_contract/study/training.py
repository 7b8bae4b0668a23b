"""Training, identical for every framework: the shared stream, the schedule, the epoch loop.

``train_stream`` gives the batches a phase trains on (same order and augmentation in
every framework); ``train`` runs a framework's trainer over them epoch by epoch, emits an
"epoch" event per epoch, stops on a non-finite loss and returns the TrainingStats.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from harness_contract import events
from harness_contract.data.cifar import Cifar10
from harness_contract.data.stream import Batch, TrainStream
from harness_contract.metrics.figures import TrainingStats
from harness_contract.spec import AugmentSpec, OptimSpec
from harness_contract.study.framework import Framework
from harness_contract.study.schedule import lr_at


class Epochs(Protocol):
    """What the loop trains on: a number of steps per epoch and each epoch's batches
    (a TrainStream, or one that wraps it, e.g. to time its hand-over)."""

    def __len__(self) -> int: ...

    def epoch(self, epoch: int) -> Iterable[Batch]: ...


@dataclass(frozen=True)
class EpochDone:
    """One finished epoch, as the "epoch" event reports it."""

    purpose: str
    epoch: int  # 1-based
    epochs: int
    loss: float
    accuracy: float
    seconds: float


def train_stream(
    data: Cifar10, optim: OptimSpec, seed: int, augment: AugmentSpec, purpose: str
) -> TrainStream:
    """The training batches of one phase ("baseline", "qat"), seeded per purpose."""
    return TrainStream(
        data.train_images,
        data.train_labels,
        batch_size=optim.batch_size,
        seed=seed,
        augment=augment,
        purpose=purpose,
    )


def cycle(stream: Epochs) -> Iterator[Batch]:
    """Batches from epoch 0 on, into the next epochs when a caller outlasts one."""
    epoch = 0
    while True:
        yield from stream.epoch(epoch)
        epoch += 1


def train(
    fw: Framework,
    model: Any,
    optim: OptimSpec,
    stream: Epochs,
    *,
    purpose: str,
    device: str,
    threads: int,
    part: Callable[[], contextlib.AbstractContextManager[None]] = contextlib.nullcontext,
    after_epoch: Callable[[EpochDone], None] | None = None,
) -> tuple[Any, TrainingStats]:
    """Train ``model`` for ``optim.epochs`` epochs of ``stream``; the model and its stats.

    ``part`` wraps the whole loop (the phase's memory accounting for "training");
    ``after_epoch`` runs after each epoch's event, outside that epoch's clock (a benchmark
    runs its own loop there). A non-finite loss stops training with advice.
    """
    steps = len(stream)
    if steps == 0:
        raise ValueError(
            f"{purpose}: batch_size {optim.batch_size} exceeds the training images; "
            f"lower the batch size or use more training images"
        )
    with part():
        return model, _loop(fw, model, optim, stream, purpose, device, threads, after_epoch)


def _loop(
    fw: Framework,
    model: Any,
    optim: OptimSpec,
    stream: Epochs,
    purpose: str,
    device: str,
    threads: int,
    after_epoch: Callable[[EpochDone], None] | None,
) -> TrainingStats:
    steps = len(stream)
    trainer = fw.trainer(model, optim)
    epoch_s, losses, accs = [], [], []
    t_start = time.perf_counter()
    for epoch in range(optim.epochs):
        t0 = time.perf_counter()
        for i, batch in enumerate(stream.epoch(epoch)):
            trainer.step(batch.images, batch.labels, lr_at(optim, epoch, i, steps))
        loss, acc = trainer.end_epoch()
        epoch_s.append(time.perf_counter() - t0)
        losses.append(loss)
        accs.append(acc)
        events.emit(
            "epoch",
            phase=purpose,
            epoch=epoch + 1,
            epochs=optim.epochs,
            loss=loss,
            accuracy=acc,
            images_per_s=steps * optim.batch_size / epoch_s[-1],
        )
        if after_epoch is not None:
            after_epoch(EpochDone(purpose, epoch + 1, optim.epochs, loss, acc, epoch_s[-1]))
        if not np.isfinite(loss):
            raise FloatingPointError(
                f"{purpose} training diverged (loss {loss}) in epoch "
                f"{epoch + 1}; lower the learning rate or add warm-up"
            )
    wall = time.perf_counter() - t_start
    images = steps * optim.batch_size * optim.epochs
    return TrainingStats(
        device=device,
        threads=threads,
        epochs=optim.epochs,
        wall_s=wall,
        epoch_s=epoch_s,
        images=images,
        images_per_s=images / wall if wall > 0 else 0.0,
        loss=losses,
        train_accuracy=accs,
    )
