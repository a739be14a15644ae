"""Probe training time on MTAT-sized embeddings (target: < 30 s per seed per probe config on 2 CPU cores).

Synthetic but learnable data of the MTAT shape: 15k train x 512-d track
embeddings, 50 tags (multilabel, ~3 tags a track from a hidden linear model
plus noise), 1.5k validation and 4.3k test tracks. Times one probe config
(the paper point, lr 3e-4 wd 1e-6) per seed for the MLP head (the MTAT
protocol) and the linear head, with the early stopping of the protocol, plus
the bootstrap interval of the test ROC-AUC.

    python benchmarks/bench_probe.py [--seeds 0,1] [--head mlp,linear] [--n-train 15000]
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np


def make_data(n_train: int, n_valid: int, n_test: int, dim: int = 512, tags: int = 50, seed: int = 0):
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(dim, tags)) / np.sqrt(dim)
    bias = np.quantile(rng.normal(size=(4096, dim)) @ W, 1 - 3 / tags, axis=0)  # ~3 tags per track

    def part(n):
        X = rng.normal(size=(n, dim)).astype(np.float32)
        logits = X @ W - bias + 0.5 * rng.normal(size=(n, tags))
        return X, (logits > 0).astype(np.float32)

    return part(n_train), part(n_valid), part(n_test)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--head", default="mlp,linear")
    ap.add_argument("--n-train", type=int, default=15000)
    args = ap.parse_args()

    import torch

    from bench import metrics
    from bench.confidence import bootstrap
    from bench.probe import ProbeConfig, train_probe

    (Xtr, ytr), (Xva, yva), (Xte, yte) = make_data(args.n_train, 1500, 4300)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
          f"load average {os.getloadavg()[0]:.1f}")
    print(f"data: train {Xtr.shape}, valid {Xva.shape}, test {Xte.shape}, {ytr.shape[1]} tags (multilabel), "
          f"{ytr.sum(1).mean():.1f} tags/track")
    for head in args.head.split(","):
        for seed in (int(s) for s in args.seeds.split(",")):
            conf = ProbeConfig(head=head)
            t0 = time.perf_counter()
            r = train_probe(Xtr, ytr, Xva, yva, Xte, kind="multilabel", n_classes=ytr.shape[1], config=conf,
                            seed=seed)
            dt = time.perf_counter() - t0
            auc = metrics.roc_auc(yte, r.test_scores)
            t1 = time.perf_counter()
            ci = bootstrap(lambda y, s: {"roc_auc": metrics.roc_auc(y, s)}, yte, r.test_scores, "roc_auc")
            dci = time.perf_counter() - t1
            verdict = "OK" if dt < 30 else "OVER TARGET"
            print(f"{head:6s} seed {seed}: probe {dt:6.1f} s for 1 config ({r.epochs} epochs, best {r.best_epoch}, "
                  f"{dt / max(r.epochs, 1):.2f} s/epoch) [{verdict}: target < 30 s]; test ROC-AUC {auc:.4f} "
                  f"[{ci['lo']:.4f}, {ci['hi']:.4f}], bootstrap {dci:.1f} s")


if __name__ == "__main__":
    main()
