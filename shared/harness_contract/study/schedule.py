"""The learning-rate schedule, computed here so both frameworks step through the same values."""

from __future__ import annotations

from harness_contract.spec import OptimSpec


def lr_at(optim: OptimSpec, epoch: int, step: int, steps_per_epoch: int) -> float:
    """Linear warm-up over ``warmup_epochs``, then step decay by ``gamma`` at each milestone."""
    decays = sum(1 for m in optim.milestones if epoch >= m)
    lr = optim.lr * optim.gamma**decays
    warmup_steps = optim.warmup_epochs * steps_per_epoch
    global_step = epoch * steps_per_epoch + step
    if global_step < warmup_steps:
        lr *= (global_step + 1) / (warmup_steps + 1)
    return lr
