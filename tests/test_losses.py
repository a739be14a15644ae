"""The contrastive loss against a direct loop over method.md's formula, and the supervised objective."""

import math

import pytest
import torch

from bench.losses import contrastive_loss, supervised_loss


def reference(z, clip, labels, tau=0.1, threshold=1.0, weighted=False):
    """method.md's formula, one scalar at a time (slow, obviously right)."""
    V = z.shape[0]
    zn = [z[i] / z[i].norm() for i in range(V)]
    s = [[float(zn[i] @ zn[j]) / tau for j in range(V)] for i in range(V)]
    total = 0.0
    for i in range(V):
        denom = sum(math.exp(s[i][k]) for k in range(V) if k != i)
        acc, count = 0.0, 0.0
        for j in range(V):
            if j == i:
                continue
            p = 1.0 if clip[i] == clip[j] else 0.0
            lab = 0.0
            if labels is not None:
                yi, yj = labels[i].tolist(), labels[j].tolist()
                inter = sum(a * b for a, b in zip(yi, yj))
                if weighted:
                    d = sum(yi) + sum(yj)
                    lab = 2 * inter / d if d > 0 else 0.0
                else:
                    lab = 1.0 if inter >= threshold else 0.0
            m = min(1.0, max(p, lab))
            acc += m * math.log(math.exp(s[i][j]) / denom)
            count += m
        total += -acc / max(1.0, count)
    return total / V


def batch(B, N, C, labeled_share, seed, d=8):
    g = torch.Generator().manual_seed(seed)
    z = torch.randn(B * N, d, generator=g, dtype=torch.float64)
    clip = torch.arange(B).repeat_interleave(N)
    y = (torch.rand(B, C, generator=g) < 0.3).float()
    n_lab = round(B * labeled_share)
    y[n_lab:] = 0
    return z, clip, y.repeat_interleave(N, dim=0)


@pytest.mark.parametrize(
    "B,N,C,share,threshold,weighted,use_labels,tau",
    [
        (4, 2, 5, 0.5, 1.0, False, True, 0.1),   # SemiSupCon
        (5, 2, 4, 0.0, 1.0, False, False, 0.1),  # SimCLR
        (6, 2, 6, 1.0, 1.0, False, True, 0.1),   # SupCon
        (4, 3, 6, 1.0, 2.0, False, True, 0.5),   # T = 2, three views
        (6, 2, 5, 0.5, 1.0, True, True, 0.1),    # weighted (Dice)
        (3, 1, 3, 1.0, 1.0, False, True, 0.2),   # one view: some anchors have no positive
    ],
)
def test_loss_matches_loop_reference(B, N, C, share, threshold, weighted, use_labels, tau):
    for seed in range(3):
        z, clip, y = batch(B, N, C, share, seed)
        labels = y if use_labels else None
        got = contrastive_loss(z, clip, labels, tau=tau, threshold=threshold, weighted=weighted)
        want = reference(z, clip.tolist(), labels, tau, threshold, weighted)
        assert got.item() == pytest.approx(want, rel=1e-5, abs=1e-6)


def test_labels_change_the_loss_only_when_they_add_positives():
    z, clip, y = batch(4, 2, 5, 1.0, 0)
    simclr = contrastive_loss(z, clip, None)
    assert contrastive_loss(z, clip, torch.zeros_like(y)).item() == pytest.approx(simclr.item())
    y = torch.zeros(8, 5)
    y[:4, 0] = 1  # clips 0 and 1 share a label
    assert contrastive_loss(z, clip, y).item() != pytest.approx(simclr.item())


def test_identical_positive_pairs_give_low_loss():
    # each clip's two views identical, clips orthogonal: near the minimum
    d = 8
    z = torch.eye(d)[:4].repeat_interleave(2, dim=0) * 5
    clip = torch.arange(4).repeat_interleave(2)
    good = contrastive_loss(z, clip, None).item()
    assert good < 0.01
    shuffled = z[torch.tensor([0, 2, 1, 4, 3, 6, 5, 7])]  # positives now point to different clips
    assert contrastive_loss(shuffled, clip, None).item() > 5


def test_threshold_must_be_positive():
    z, clip, y = batch(2, 2, 3, 1.0, 0)
    with pytest.raises(ValueError, match="threshold"):
        contrastive_loss(z, clip, y, threshold=0)


def test_gradient_flows():
    z, clip, y = batch(4, 2, 5, 0.5, 1)
    z.requires_grad_(True)
    contrastive_loss(z, clip, y).backward()
    assert torch.isfinite(z.grad).all() and z.grad.abs().sum() > 0


def test_supervised_loss_multilabel_and_multiclass():
    logits = torch.tensor([[2.0, -1.0, 0.5], [0.0, 3.0, -2.0]])
    multi = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 0.0]])
    want = torch.nn.functional.binary_cross_entropy_with_logits(logits, multi)
    assert supervised_loss(logits, multi, "multilabel").item() == pytest.approx(want.item())
    onehot = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    want = torch.nn.functional.cross_entropy(logits, torch.tensor([0, 2]))
    assert supervised_loss(logits, onehot, "multiclass").item() == pytest.approx(want.item())
    with pytest.raises(ValueError):
        supervised_loss(logits, onehot, "regression")


def test_supervised_loss_multitask_reads_each_task_on_its_own_rows_and_columns():
    from bench.encoder import LabelGroup

    groups = [LabelGroup("a", "multilabel", 0, 3, 2), LabelGroup("b", "multiclass", 3, 2, 2)]
    torch.manual_seed(0)
    logits = torch.randn(4, 5)
    labels = torch.tensor([[1, 0, 1, -1, -1], [0, 0, 1, -1, -1], [-1, -1, -1, 0, 1], [-1, -1, -1, 1, 0]],
                          dtype=torch.float32)
    got = supervised_loss(logits, labels, "multitask", groups)
    a = supervised_loss(logits[:2, :3], labels[:2, :3], "multilabel")
    b = supervised_loss(logits[2:, 3:], labels[2:, 3:], "multiclass")
    assert torch.allclose(got, (a + b) / 2)
    # the unknown (-1) columns are never read: changing those logits changes nothing
    other = logits.clone()
    other[:2, 3:] += 5.0
    other[2:, :3] -= 5.0
    assert torch.allclose(supervised_loss(other, labels, "multitask", groups), got)
    # a batch with one task only is that task's loss
    assert torch.allclose(supervised_loss(logits[:2], labels[:2], "multitask", groups), a)
    with pytest.raises(ValueError, match="groups"):
        supervised_loss(logits, labels, "multitask")
