"""uint8 NHWC batches from the shared stream -> normalized float NCHW tensors on a device."""

from __future__ import annotations

import numpy as np
import torch


class Normalizer:
    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        self._mean = torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1)
        self._std = torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1)
        self._on: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}

    def __call__(self, images: np.ndarray, device: torch.device | None = None) -> torch.Tensor:
        """Normalized NCHW on ``device`` (None: the CPU), converted there after copying the
        4x smaller uint8."""
        device = torch.device("cpu") if device is None else device
        mean, std = self._constants(device)
        # Copy the uint8 bytes (4x smaller than float) and convert on the device.
        x = torch.from_numpy(images).to(device, non_blocking=True)
        x = x.permute(0, 3, 1, 2).float().div_(255.0)
        return x.sub_(mean).div_(std).contiguous()

    def _constants(self, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        if device not in self._on:
            self._on[device] = (self._mean.to(device), self._std.to(device))
        return self._on[device]
