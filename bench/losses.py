"""Pretraining objectives: one contrastive loss for SimCLR / SemiSupCon / SupCon, and the supervised one.

The contrastive loss is method.md's formula, written once:

    s_ij = cos(z_i, z_j) / tau
    P_ij = [c(i) = c(j), i != j]                      views of the same clip
    L_ij = [y_i . y_j >= T]  or  Dice(y_i, y_j)       views of clips sharing labels
    M_ij = max(P_ij, L_ij)  (<= 1),  M_ii = 0
    loss = mean_i  - 1/max(1, sum_j M_ij) * sum_{j != i} M_ij log( exp(s_ij) / sum_{k != i} exp(s_ik) )

- SimCLR (NT-Xent): ``labels=None`` (or all-zero rows): only P.
- SemiSupCon: labeled clips have multi-hot rows, unlabeled clips zero rows;
  the share of labeled clips in the batch sets the mix of the two terms.
- Supervised contrastive: every clip labeled.

Why one function: the three methods differ only in the positive mask, so the
comparison between them cannot be spoiled by two implementations drifting
apart.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from bench import dist
from bench.encoder import LabelGroup


def positive_mask(
    clip_a: torch.Tensor,
    clip_b: torch.Tensor,
    labels_a: torch.Tensor | None,
    labels_b: torch.Tensor | None,
    threshold: float = 1.0,
    weighted: bool = False,
) -> torch.Tensor:
    """``M [Va, Vb]`` (float): same clip -> 1; label overlap >= threshold (or Dice) otherwise."""
    m = (clip_a[:, None] == clip_b[None, :]).float()
    if labels_a is not None and labels_b is not None:
        ya = labels_a.float()
        yb = labels_b.float()
        inter = ya @ yb.T
        if weighted:
            denom = ya.sum(1)[:, None] + yb.sum(1)[None, :]
            lab = torch.where(denom > 0, 2 * inter / denom.clamp_min(1e-12), torch.zeros_like(inter))
        else:
            lab = (inter >= threshold).float()
        m = torch.maximum(m, lab).clamp_max(1.0)
    return m


def contrastive_loss(
    z: torch.Tensor,
    clip_index: torch.Tensor,
    labels: torch.Tensor | None = None,
    *,
    tau: float = 0.1,
    threshold: float = 1.0,
    weighted: bool = False,
    gather: bool = True,
) -> torch.Tensor:
    """SimCLR / SemiSupCon / SupCon loss over views ``z [V, d]``.

    ``clip_index [V]``: the clip each view comes from (views of one clip are
    positives of each other). ``labels [V, C]``: multi-hot labels of each
    view's clip, all zeros for an unlabeled clip; ``None`` for pure SimCLR.
    ``threshold``: number of shared labels that makes two clips positives
    (T in method.md; must be > 0, or every unlabeled pair would be a
    positive). ``weighted``: use the Dice overlap as a soft positive weight.

    ``gather`` (default True): in a multi-process run, compare this process's
    views (anchors) with the views of *all* processes, gathered with
    gradient, so the negatives are the global batch. Default on because the
    number of negatives is the main knob of a contrastive loss: without the
    gather, a batch of 96 on 4 GPUs would train a different objective (24
    clips' worth of negatives) from the same batch on one GPU, and results
    would depend on the hardware. In a single process it changes nothing.
    Every process must hold the same number of views.
    """
    if threshold <= 0 and not weighted:
        raise ValueError(f"threshold must be > 0 (got {threshold}): with T <= 0 every pair of clips is a positive")
    if z.dim() != 2 or clip_index.shape != (z.shape[0],):
        raise ValueError(f"z must be [V, d] and clip_index [V]; got {tuple(z.shape)} and {tuple(clip_index.shape)}")
    if labels is not None and labels.shape[0] != z.shape[0]:
        raise ValueError(f"labels has {labels.shape[0]} rows for {z.shape[0]} views")
    z = F.normalize(z if z.dtype == torch.float64 else z.float(), dim=1)  # fp32 at least (bf16 autocast)
    v_local = z.shape[0]
    # Dense clip ids 0..K-1 so that ids of different processes can be offset apart.
    _, local_ids = torch.unique(clip_index, return_inverse=True)
    world = dist.world_size() if gather else 1
    if world > 1:
        r = dist.rank()
        z_all = dist.gather_with_grad(z)
        ids_all = dist.gather(local_ids + r * v_local)
        ids_local = local_ids + r * v_local
        labels_all = dist.gather(labels.to(z.dtype)) if labels is not None else None
        first = r * v_local
    else:
        z_all, ids_all, ids_local, labels_all, first = z, local_ids, local_ids, labels, 0
    sim = z @ z_all.T / tau  # [V_local, V_all]
    self_mask = torch.zeros_like(sim, dtype=torch.bool)
    rows = torch.arange(v_local, device=z.device)
    self_mask[rows, rows + first] = True
    log_prob = sim - torch.logsumexp(sim.masked_fill(self_mask, float("-inf")), dim=1, keepdim=True)
    m = positive_mask(ids_local, ids_all, labels, labels_all, threshold, weighted).masked_fill(self_mask, 0.0)
    per_anchor = -(m * log_prob.masked_fill(self_mask, 0.0)).sum(1) / m.sum(1).clamp_min(1.0)
    return per_anchor.mean()


@torch.no_grad()
def contrastive_terms(z: torch.Tensor, clip_index: torch.Tensor, labels: torch.Tensor | None = None, *,
                      tau: float = 0.1, threshold: float = 1.0, weighted: bool = False) -> dict[str, float]:
    """The parts of :func:`contrastive_loss` (this process's views only), for logging; no gradient.

    Each anchor's loss is split by the kind of its positives: ``view`` (views
    of the same clip, P) and ``label`` (other clips sharing labels, M - P);
    with one process the two add up to the loss. ``label_pairs_per_anchor``:
    the mean number of label positives an anchor has.
    """
    z = F.normalize(z.detach().double(), dim=1)
    _, ids = torch.unique(clip_index, return_inverse=True)
    sim = z @ z.T / tau
    eye = torch.eye(len(z), dtype=torch.bool, device=z.device)
    log_prob = (sim - torch.logsumexp(sim.masked_fill(eye, float("-inf")), dim=1, keepdim=True)).masked_fill(eye, 0.0)
    view = (ids[:, None] == ids[None, :]).double().masked_fill(eye, 0.0)
    m = positive_mask(ids, ids, labels, labels, threshold, weighted).double().masked_fill(eye, 0.0)
    label = (m - view).clamp_min(0.0)
    denom = m.sum(1).clamp_min(1.0)
    out = {"view": float((-(view * log_prob).sum(1) / denom).mean())}
    if labels is not None:
        out["label"] = float((-(label * log_prob).sum(1) / denom).mean())
        out["label_pairs_per_anchor"] = float(label.sum(1).mean())
    return out


def supervised_loss(logits: torch.Tensor, labels: torch.Tensor, kind: str,
                    groups: Sequence[LabelGroup] | None = None) -> torch.Tensor:
    """Loss of the supervised baseline: BCE for multilabel, cross-entropy for multiclass.

    ``labels`` are multi-hot ``[B, C]`` in both cases (one-hot for multiclass).
    ``kind="multitask"``: several labeled tasks share the label space;
    ``groups`` gives each task's ``kind``, ``offset`` and ``size`` (its block
    of columns) and a row holds -1 on the other tasks' columns. The loss is
    the mean over the tasks present in the batch of each task's own loss on
    its own rows and columns (a missing label is never read as a negative).
    """
    if kind == "multilabel":
        return F.binary_cross_entropy_with_logits(logits.float(), labels.float())
    if kind == "multiclass":
        return F.cross_entropy(logits.float(), labels.argmax(dim=1))
    if kind == "multitask":
        if not groups:
            raise ValueError("supervised_loss: kind 'multitask' needs the groups (task blocks of the label space)")
        losses = []
        for g in groups:
            lo, hi = g.offset, g.offset + g.size
            rows = labels[:, lo] >= 0
            if not bool(rows.any()):
                continue
            losses.append(supervised_loss(logits[rows, lo:hi], labels[rows, lo:hi], g.kind))
        if not losses:
            raise ValueError("supervised_loss: no row of the batch belongs to any labeled task")
        return torch.stack(losses).mean()
    raise ValueError(f"unknown label kind {kind!r} (expected 'multilabel', 'multiclass' or 'multitask')")
