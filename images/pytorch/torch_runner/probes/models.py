"""The tiny models and helpers torch_runner's support probes share: small enough that the
whole probe set takes seconds."""

from __future__ import annotations

import torch
from torch import nn

Answer = tuple[str, str]
BATCH = 2


class Tiny(nn.Module):
    """Two conv+ReLU pairs, a pool and a linear layer: every pattern the probes ask about."""

    def __init__(self, middle: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 8, 3, padding=1)
        self.relu1 = nn.ReLU()
        self.middle = middle if middle is not None else nn.Identity()
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1)
        self.relu2 = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(8, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.middle(self.relu1(self.conv1(x)))
        return self.fc(torch.flatten(self.pool(self.relu2(self.conv2(x))), 1))


class Scale(nn.Module):
    """A custom layer no quantizer knows: a learned per-channel scale and shift."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.gain = nn.Parameter(torch.ones(1, channels, 1, 1))
        self.shift = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gain + self.shift


def example(seed: int = 0) -> torch.Tensor:
    return torch.randn(BATCH, 3, 8, 8, generator=torch.Generator().manual_seed(seed))


def tiny(middle: nn.Module | None = None) -> nn.Module:
    torch.manual_seed(0)
    return Tiny(middle).eval()


def quantizer(is_qat: bool = False):
    from torchao.quantization.pt2e.quantizer import x86_inductor_quantizer as xiq

    config = xiq.get_default_x86_inductor_quantization_config(is_qat=is_qat)
    return xiq.X86InductorQuantizer().set_global(config)


def lower(converted: torch.fx.GraphModule) -> torch.fx.GraphModule:
    """q/dq reference graph -> oneDNN int8 kernels (torchao's own lowering)."""
    from torchao.quantization.pt2e.lowering import lower_pt2e_quantized_to_x86

    with torch.no_grad():
        return lower_pt2e_quantized_to_x86(converted, (example(),))


def max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.detach().float().cpu() - b.detach().float().cpu()).abs().max())


def reason(exc: BaseException) -> str:
    from harness_contract.failures import reason_of

    return reason_of(exc)
