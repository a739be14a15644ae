"""Small helpers for multi-process (DDP) training that also work on CPU (gloo).

- :func:`gather_with_grad`: all-gather that keeps the autograd graph, so a
  contrastive loss can use every process's views as negatives and still send
  gradients back to the process that made them.
- :class:`SyncBatchNorm`: batch norm whose statistics are taken over the
  global batch. ``torch.nn.SyncBatchNorm`` refuses CPU tensors, and without
  global statistics a 2-process run is not the same computation as one
  process on the same global batch (and contrastive learning can "cheat"
  with per-device batch statistics, the reason SimCLR uses global BN).

Both are identity-like no-ops in a single process.
"""

from __future__ import annotations

import torch
from torch import nn


def world_size() -> int:
    import torch.distributed as dist

    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    import torch.distributed as dist

    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` from every process along dim 0, differentiably (rank order)."""
    if world_size() == 1:
        return x
    import warnings

    import torch.distributed.nn.functional as dnn

    with warnings.catch_warnings():  # deprecated for a private successor; still the public autograd gather
        warnings.simplefilter("ignore", FutureWarning)
        return torch.cat(dnn.all_gather(x.contiguous()), dim=0)


def gather(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` from every process along dim 0 (no gradient)."""
    if world_size() == 1:
        return x
    import torch.distributed as dist

    out = [torch.empty_like(x) for _ in range(world_size())]
    dist.all_gather(out, x.contiguous())
    return torch.cat(out, dim=0)


def _all_reduce_sum(x: torch.Tensor) -> torch.Tensor:
    import warnings

    import torch.distributed.nn.functional as dnn

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        return dnn.all_reduce(x)


class SyncBatchNorm(nn.BatchNorm1d):
    """BatchNorm1d over the global batch of all processes, on any device and backend.

    Same parameters and buffers (and so the same state-dict keys) as
    ``nn.BatchNorm1d``; in eval mode, or in a single process, it *is*
    ``BatchNorm1d``. In training with several processes it all-reduces
    (differentiably) the per-channel sum, sum of squares and count, normalises
    with the global mean and biased variance, and updates the running
    statistics with the unbiased global variance, exactly as one process
    holding the whole batch would.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or world_size() == 1:
            return super().forward(x)
        dims = [0, 2] if x.dim() == 3 else [0]
        n_local = x.numel() // x.shape[1]
        # statistics accumulated in float64: var = E[x^2] - E[x]^2 cancels badly in float32
        x64 = x.double()
        stats = torch.cat([x64.sum(dims), (x64 * x64).sum(dims), x64.new_tensor([float(n_local)])])
        stats = _all_reduce_sum(stats)
        c = x.shape[1]
        n = stats[-1]
        mean64 = stats[:c] / n
        var64 = (stats[c : 2 * c] / n - mean64 * mean64).clamp_min(0.0)
        mean, var = mean64.to(x.dtype), var64.to(x.dtype)
        with torch.no_grad():
            if self.track_running_stats and self.running_mean is not None:
                self.num_batches_tracked += 1
                m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                unbiased = (var64 * (n / (n - 1).clamp_min(1.0))).to(x.dtype)
                self.running_mean.mul_(1 - m).add_(mean.detach(), alpha=m)
                self.running_var.mul_(1 - m).add_(unbiased.detach(), alpha=m)
        shape = [1, c] + [1] * (x.dim() - 2)
        y = (x - mean.view(shape)) * torch.rsqrt(var.view(shape) + self.eps)
        if self.affine:
            y = y * self.weight.view(shape) + self.bias.view(shape)
        return y


def convert_sync_batchnorm(module: nn.Module) -> nn.Module:
    """Replace every ``BatchNorm1d`` of ``module`` (in place) by :class:`SyncBatchNorm`.

    Parameters and buffers are moved over as they are (same tensors), so the
    optimizer built afterwards and the state dict are unchanged.
    """
    for name, child in list(module.named_children()):
        if type(child) is nn.BatchNorm1d:
            new = SyncBatchNorm(child.num_features, child.eps, child.momentum, child.affine, child.track_running_stats)
            if child.affine:
                new.weight = child.weight
                new.bias = child.bias
            new.running_mean = child.running_mean
            new.running_var = child.running_var
            new.num_batches_tracked = child.num_batches_tracked
            new.train(child.training)
            setattr(module, name, new)
        else:
            convert_sync_batchnorm(child)
    return module
