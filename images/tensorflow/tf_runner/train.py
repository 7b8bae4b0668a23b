"""One SGD trainer for the fp32 baseline and for QAT fine-tuning (a QAT model is a Keras model).

The update is PyTorch's ``torch.optim.SGD`` written out, so both frameworks take the same
steps from the same weights: clip the global gradient norm as ``clip_grad_norm_`` does,
add coupled L2 weight decay to every gradient, momentum buffer, plain (non-Nesterov) update.
Keras' own SGD differs (decoupled from the buffer, momentum applied to lr * g).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf
import tf_keras as keras

from harness_contract.spec import OptimSpec
from harness_contract.study.framework import Trainer

from .tensors import Normalizer

_CLIP_EPS = 1e-6  # torch.nn.utils.clip_grad_norm_ divides by (norm + 1e-6)

_STEP_SIGNATURE = (
    tf.TensorSpec([None, 32, 32, 3], tf.uint8),
    tf.TensorSpec([None], tf.int64),
    tf.TensorSpec([], tf.float32),
)


class SGDTrainer(Trainer):
    def __init__(
        self, model: keras.Model, optim: OptimSpec, normalize: Normalizer, device: str
    ) -> None:
        self.model, self.normalize, self.device = model, normalize, device
        self.momentum = float(optim.momentum)
        self.weight_decay = float(optim.weight_decay)
        self.clip = None if optim.grad_clip_norm is None else float(optim.grad_clip_norm)
        self.params = list(model.trainable_variables)
        with tf.device(device):
            # Zero buffers make the first update buf = momentum * 0 + g = g exactly, which is
            # PyTorch's "buffer starts as a copy of the first gradient".
            self.buffers = [tf.Variable(tf.zeros_like(p), trainable=False) for p in self.params]
            # Accumulated on the device so a step never waits for it.
            self._loss_sum = tf.Variable(0.0, dtype=tf.float32, trainable=False)
            self._correct = tf.Variable(0, dtype=tf.int64, trainable=False)
        self._seen = 0
        self._batches = 0
        self._step = tf.function(self._train_step, input_signature=_STEP_SIGNATURE)

    def _train_step(self, images: tf.Tensor, labels: tf.Tensor, lr: tf.Tensor) -> None:
        with tf.device(self.device):  # traced in: the step runs where the model lives
            self._update(images, labels, lr)

    def _update(self, images: tf.Tensor, labels: tf.Tensor, lr: tf.Tensor) -> None:
        x = self.normalize(images)
        with tf.GradientTape() as tape:
            logits = self.model(x, training=True)
            loss = tf.reduce_mean(
                tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits)
            )
        grads = tape.gradient(loss, self.params)
        if self.clip is not None:
            total = tf.linalg.global_norm(grads)  # one fused reduction, not a norm per tensor
            coef = tf.minimum(self.clip / (total + _CLIP_EPS), 1.0)
            grads = [g * coef for g in grads]
        for p, g, buf in zip(self.params, grads, self.buffers, strict=True):
            if self.weight_decay:
                g = g + self.weight_decay * p
            buf.assign(self.momentum * buf + g)
            p.assign_sub(lr * buf)
        self._loss_sum.assign_add(loss)
        hits = tf.equal(tf.argmax(logits, axis=1, output_type=tf.int64), labels)
        self._correct.assign_add(tf.reduce_sum(tf.cast(hits, tf.int64)))

    def step(self, images: np.ndarray, labels: np.ndarray, lr: float) -> None:
        # lr is a tensor argument: a new value never retraces the function.
        self._step(images, labels.astype(np.int64, copy=False), tf.constant(lr, tf.float32))
        self._seen += len(labels)
        self._batches += 1

    def end_epoch(self) -> tuple[float, float]:
        loss = float(self._loss_sum.numpy()) / max(self._batches, 1)
        acc = int(self._correct.numpy()) / max(self._seen, 1)
        self._loss_sum.assign(0.0)
        self._correct.assign(0)
        self._seen = 0
        self._batches = 0
        return loss, acc
