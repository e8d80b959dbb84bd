"""Dropout whose CPU masks cost a third of ``nn.Dropout``'s.

On CPU, ``nn.Dropout`` draws one Bernoulli variable per element (``bernoulli_``, about 10 ns each on the 2-core
machines here): in a SASRec-sized model on ML-1M that was 15-16% of a training step's CPU time
(``benchmarks/sequential/profile_steps.py`` on the causal ML-1M config). :class:`FastDropout` draws 64 random bits
at a time (``random_`` on int64) and reads them as four 15-bit uniforms, one per element: the same distribution up
to the quantisation of the rate to a multiple of 1/32768 (``p=0.1`` drops with probability 3277/32768 = 0.100006,
and the kept elements are scaled by the inverse of the exact keep rate, so the layer stays unbiased). The mask comes
from torch's generator, so ``torch.manual_seed`` makes it reproducible. Off CPU (CUDA's fused dropout is already
fast), out of training, or at ``p`` 0 or 1, it is ``nn.Dropout``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

_LEVELS = 1 << 15


class _MaskedScale(torch.autograd.Function):
    """``x * keep * scale`` that saves the boolean mask (1 byte per element) for the backward pass."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, keep: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.save_for_backward(keep)
        ctx.scale = scale
        return x * keep * scale

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (keep,) = ctx.saved_tensors
        return grad * keep * ctx.scale, None, None


def keep_mask(shape: torch.Size, p: float, device: torch.device | str = "cpu") -> tuple[torch.Tensor, float]:
    """A boolean mask of ``shape`` keeping each element with probability ``1 - p`` (``p`` rounded to a multiple of
    1/32768), and the scale ``1 / keep rate`` that keeps ``x * mask * scale`` unbiased."""
    return _keep_mask(shape, round(p * _LEVELS), device)


def _keep_mask(shape: torch.Size, threshold: int, device) -> tuple[torch.Tensor, float]:
    n = math.prod(shape)
    bits = torch.empty((n + 3) // 4, dtype=torch.int64, device=device).random_()  # 63 random bits per draw
    keep = (bits.view(torch.int16)[:n] & (_LEVELS - 1)) >= threshold
    return keep.view(shape), _LEVELS / (_LEVELS - threshold)


class FastDropout(nn.Dropout):
    """``nn.Dropout`` with cheaper masks on CPU (see the module docstring); a drop-in replacement (same ``p``,
    ``inplace`` ignored on CPU, no parameters or buffers, so state dicts are unchanged)."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        threshold = round(self.p * _LEVELS)
        if not self.training or input.device.type != "cpu" or threshold >= _LEVELS:  # also p within 1/65536 of 1
            return super().forward(input)
        if threshold == 0:  # p = 0, or below 1/65536: nothing would be dropped
            return input
        keep, scale = _keep_mask(input.shape, threshold, input.device)
        return _MaskedScale.apply(input, keep, scale)


def use_fast_dropout(module: nn.Module) -> int:
    """Replace every plain ``nn.Dropout`` inside ``module`` by a :class:`FastDropout` of the same rate; returns how
    many were replaced. Subclasses of ``nn.Dropout`` (and other dropout kinds) are left alone."""
    replaced = 0
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if type(child) is nn.Dropout:
                fast = FastDropout(child.p, child.inplace)
                fast.train(child.training)
                setattr(parent, name, fast)
                replaced += 1
    return replaced


__all__ = ["FastDropout", "keep_mask", "use_fast_dropout"]
