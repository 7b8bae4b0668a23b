"""One SGD trainer for the fp32 baseline and for QAT fine-tuning."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from harness_contract.spec import OptimSpec
from harness_contract.study.framework import Trainer

from .tensors import Normalizer


class SGDTrainer(Trainer):
    def __init__(
        self, model: nn.Module, optim: OptimSpec, normalize: Normalizer, device: torch.device
    ) -> None:
        self.model, self.normalize, self.device = model, normalize, device
        self.optimizer = torch.optim.SGD(
            model.parameters(),
            lr=optim.lr,
            momentum=optim.momentum,
            weight_decay=optim.weight_decay,
        )
        self.loss_fn = nn.CrossEntropyLoss()
        self.clip = optim.grad_clip_norm
        self._reset()

    def _reset(self) -> None:
        # Accumulated on the device so a step never waits for the GPU.
        self._loss_sum = torch.zeros((), device=self.device)
        self._correct = torch.zeros((), device=self.device, dtype=torch.long)
        self._seen = 0
        self._batches = 0

    def step(self, images: np.ndarray, labels: np.ndarray, lr: float) -> None:
        self.model.train()
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        x = self.normalize(images, self.device)
        y = torch.from_numpy(labels).to(self.device, non_blocking=True)
        logits = self.model(x)
        loss = self.loss_fn(logits, y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.clip is not None:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.clip)
        self.optimizer.step()
        self._loss_sum += loss.detach()
        self._correct += (logits.detach().argmax(1) == y).sum()
        self._seen += len(labels)
        self._batches += 1

    def end_epoch(self) -> tuple[float, float]:
        loss = self._loss_sum.item() / max(self._batches, 1)
        acc = self._correct.item() / max(self._seen, 1)
        self._reset()
        return loss, acc
