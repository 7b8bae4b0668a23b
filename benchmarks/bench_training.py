"""Training throughput through the harness's own loop vs a bare framework loop, on CPU.

    python benchmarks/bench_training.py [--framework pytorch|tensorflow|all] [--width 0.25]
                                        [--images 2048] [--batch 128] [--epochs 2]

The harness row is the study's own training loop, ``harness_contract.study.training.train``
(TrainStream -> trainer.step -> end_epoch, with its events), on random uint8 images and
the shared initial weights; its first epoch is the warm-up (and, for TensorFlow, the
tf.function trace) and is left out. The bare row is the
loop a user would write: pre-normalized float tensors, forward, loss, backward, the same
clipped SGD with momentum and weight decay, the same model, batch and number of steps, one
warm-up epoch; it runs one epoch after each harness epoch, so the two are compared pair by
pair. Both run in one process with the harness's thread count. It also prints the
share of the harness's epoch spent waiting in the stream's ``next()`` (augmentation and
batch assembly) and a per-step breakdown of where a harness/bare gap comes from.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from harness_contract.data.cifar import Cifar10
from harness_contract.data.stream import Batch, TrainStream
from harness_contract.model.weights import initial_weights
from harness_contract.spec import ExperimentSpec, build_spec, effective_threads
from harness_contract.study.training import EpochDone, train, train_stream


def _load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def _framework(name: str, args: argparse.Namespace) -> tuple[Any, ExperimentSpec, Any, int]:
    overrides = [
        "device=cpu",
        f"model.width_multiplier={args.width}",
        f"train.batch_size={args.batch}",
        # One extra epoch: the harness's first epoch is the warm-up and is not counted.
        f"train.epochs={args.epochs + 1}",
    ]
    spec = build_spec("paper", None, overrides)
    if name == "pytorch":
        from torch_runner.runner import TorchFramework as Framework
    else:
        from tf_runner.runner import TFFramework as Framework
    fw, threads = Framework(), effective_threads(spec)
    device = fw.setup(spec, threads)
    return fw, spec, device, threads


def _data(n: int) -> Cifar10:
    # Throughput does not depend on pixel values; random images skip writing/reading files.
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 32, 32, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, n).astype(np.int64)
    return Cifar10(images, labels, images[:1], labels[:1], (), Path("."), "synthetic", "random")


class TimedEpochs:
    """The phase's TrainStream, recording the seconds each epoch spent inside ``next()``."""

    def __init__(self, stream: TrainStream, waits: list[float]) -> None:
        self.stream, self.waits = stream, waits

    def __len__(self) -> int:
        return len(self.stream)

    def epoch(self, epoch: int) -> Iterator[Batch]:
        it, waited = iter(self.stream.epoch(epoch)), 0.0
        while True:
            t0 = time.perf_counter()
            try:
                batch = next(it)
            except StopIteration:
                self.waits.append(waited + time.perf_counter() - t0)
                return
            waited += time.perf_counter() - t0
            yield batch


def paired_epochs(
    fw: Any,
    spec: ExperimentSpec,
    device: Any,
    threads: int,
    data: Cifar10,
    bare_epoch: Callable[[], None],
) -> tuple[list[float], list[float], list[float]]:
    """The harness's training loop (``training.train``, as the baseline phase runs it), with
    one bare epoch after each harness epoch.

    Returns harness epoch seconds, seconds the harness waited on input, bare epoch seconds,
    warm-up epoch dropped. The bare epoch runs from the loop's ``after_epoch`` hook, which
    comes after the harness has stored that epoch's time and emitted its event, and before
    it starts the next clock, so it is outside every harness figure used here; pairing the
    two loops epoch by epoch means load bursts on a shared machine hit both sides alike
    instead of biasing the ratio.
    """
    waits: list[float] = []
    bare: list[float] = []

    def then_bare(done: EpochDone) -> None:
        t0 = time.perf_counter()
        bare_epoch()
        bare.append(time.perf_counter() - t0)

    bare_epoch()  # warm-up (and, for TensorFlow, the trace) before the first pair
    stream = train_stream(data, spec.train, spec.seed, spec.data.augment, "baseline")
    model = fw.build(initial_weights(spec.model, spec.seed))
    with (
        open(os.devnull, "w") as sink,
        contextlib.redirect_stdout(sink),  # events still written and flushed, off the table
    ):
        _, stats = train(
            fw,
            model,
            spec.train,
            TimedEpochs(stream, waits),
            purpose="baseline",
            device=device.train_device,
            threads=threads,
            after_epoch=then_bare,
        )
    return stats.epoch_s[1:], waits[1:], bare[1:]


def _batches(spec: ExperimentSpec, data: Cifar10) -> list[Batch]:
    return list(train_stream(data, spec.train, spec.seed, spec.data.augment, "baseline").epoch(0))


def _torch_bare(fw: Any, spec: ExperimentSpec, batches: list[Batch]) -> Callable[[], None]:
    import torch
    import torch.nn.functional as F

    cpu = torch.device("cpu")
    model = fw.build(initial_weights(spec.model, spec.seed))
    model.train()
    o = spec.train
    opt = torch.optim.SGD(
        model.parameters(), lr=o.lr, momentum=o.momentum, weight_decay=o.weight_decay
    )
    data = [(fw.normalize(b.images, cpu), torch.from_numpy(b.labels)) for b in batches]

    def epoch() -> None:
        for x, y in data:
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if o.grad_clip_norm is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), o.grad_clip_norm)
            opt.step()
        loss.item()

    return epoch


def _tf_bare(fw: Any, spec: ExperimentSpec, batches: list[Batch]) -> Callable[[], None]:
    import tensorflow as tf

    model = fw.build(initial_weights(spec.model, spec.seed))
    params, o = model.trainable_variables, spec.train
    bufs = [tf.Variable(tf.zeros_like(p), trainable=False) for p in params]
    lr = tf.constant(o.lr, tf.float32)
    data = [(tf.constant(fw.normalize.numpy(b.images)), tf.constant(b.labels)) for b in batches]

    @tf.function
    def step(x: tf.Tensor, y: tf.Tensor) -> tf.Tensor:
        # The same update as the harness's trainer (torch.optim.SGD semantics), so both
        # loops do the same arithmetic per step.
        with tf.GradientTape() as tape:
            logits = model(x, training=True)
            loss = tf.reduce_mean(
                tf.nn.sparse_softmax_cross_entropy_with_logits(labels=y, logits=logits)
            )
        grads = tape.gradient(loss, params)
        if o.grad_clip_norm is not None:
            grads, _ = tf.clip_by_global_norm(grads, o.grad_clip_norm)
        for p, g, b in zip(params, grads, bufs, strict=True):
            b.assign(o.momentum * b + g + o.weight_decay * p)
            p.assign_sub(lr * b)
        return loss

    def epoch() -> None:
        for x, y in data:
            loss = step(x, y)
        loss.numpy()  # wait for the last step, as the harness's end_epoch does

    return epoch


def _convert_ms(name: str, fw: Any, batches: list[Batch]) -> float:
    """uint8 -> normalized float per batch: work the harness step does and the bare loop skips."""
    if name == "pytorch":
        import torch

        def call(b: Batch) -> object:
            return fw.normalize(b.images, torch.device("cpu"))
    else:
        import tensorflow as tf

        fn = tf.function(fw.normalize)

        def call(b: Batch) -> object:
            return fn(tf.constant(b.images)).numpy()

    call(batches[0])
    t0 = time.perf_counter()
    for b in batches:
        call(b)
    return (time.perf_counter() - t0) / len(batches) * 1e3


def bench(name: str, args: argparse.Namespace) -> dict[str, float]:
    """Prints the table; returns the paired throughput ratio and the input-wait share (%)."""
    fw, spec, device, threads = _framework(name, args)
    data = _data(args.images)
    batches = _batches(spec, data)
    steps = len(batches)
    if steps == 0:
        raise SystemExit(f"--batch {args.batch} exceeds --images {args.images}")
    load_before = _load()
    epoch = (_torch_bare if name == "pytorch" else _tf_bare)(fw, spec, batches)
    h_epochs, h_waits, bare = paired_epochs(fw, spec, device, threads, data, epoch)
    load_after = _load()

    per_epoch = steps * args.batch
    h_rate = per_epoch * len(h_epochs) / sum(h_epochs)
    b_rate = per_epoch * len(bare) / sum(bare)
    h_step = (sum(h_epochs) - sum(h_waits)) / (steps * len(h_epochs)) * 1e3
    b_step = sum(bare) / (steps * len(bare)) * 1e3
    wait_ms = sum(h_waits) / (steps * len(h_waits)) * 1e3
    wait_pct = 100 * sum(h_waits) / sum(h_epochs)
    ratio = h_rate / b_rate
    # Each pair ran back to back; the median pair is what a burst of outside load cannot move.
    paired = float(np.median([b / h for h, b in zip(h_epochs, bare, strict=True)]))

    versions = ", ".join(f"{k} {v}" for k, v in fw.versions().items())
    print(f"\n{name} ({versions})")
    print(
        f"width {args.width}, {args.images} images, batch {args.batch}: {steps} steps x "
        f"{args.epochs} epochs (+1 warm-up), {threads} threads, {device.train_device}; "
        f"load {load_before} -> {load_after}"
    )
    print(f"{'loop':8} {'images/s':>9} {'ms/step':>8}  epochs (s)")
    for label, rate, times in (("harness", h_rate, h_epochs), ("bare", b_rate, bare)):
        cells = " ".join(f"{t:.2f}" for t in times)
        print(f"{label:8} {rate:9.1f} {per_epoch / rate / steps * 1e3:8.1f}  {cells}")
    verdict = "ok" if paired >= 0.97 else "MISSED"
    print(
        f"harness/bare throughput: {paired:.3f} median of epoch pairs, {ratio:.3f} over all "
        f"epochs (target >= 0.97: {verdict})"
    )
    verdict = "ok" if wait_pct < 5 else "MISSED"
    print(
        f"input wait in TrainStream next(): {wait_pct:.2f}% of epoch time, "
        f"{wait_ms:.2f} ms/batch (target < 5%: {verdict})"
    )
    print(
        f"per step: harness step excl. input {h_step:.1f} ms, bare {b_step:.1f} ms, "
        f"gap {h_step - b_step:+.1f} ms; uint8->float convert "
        f"{_convert_ms(name, fw, batches):.2f} ms (harness step only)"
    )
    return {"throughput_ratio": paired, "input_wait_pct": wait_pct}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--framework", choices=("pytorch", "tensorflow", "all"), default="all")
    p.add_argument("--width", type=float, default=0.25)
    p.add_argument("--images", type=int, default=2048)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--epochs", type=int, default=2, help="measured epochs, after a warm-up")
    args = p.parse_args()
    for name in ("pytorch", "tensorflow") if args.framework == "all" else (args.framework,):
        bench(name, args)


if __name__ == "__main__":
    main()
