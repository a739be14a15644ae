"""``--official-batchnorm``: the official SemiSupCon probe's BatchNorm quirk, emulated on cached embeddings.

The official probe runs under pytorch_lightning 2.1, whose fit loop puts the
whole module in train mode, the frozen encoder included: its BatchNorm layers
normalise the training crops with batch statistics and their running
statistics drift, at momentum 0.1 per batch over every epoch, onto the
probe's training data; validation and test then use those moved statistics
(docs/protocols.md, ``semisupcon`` difference 3). This harness embeds once
with the encoder in eval mode. With the option on, before a task's splits are
embedded, every BatchNorm layer's running statistics are re-estimated on that
task's train windows (the layers in train mode with a cumulative average,
``momentum=None``, no gradients, one pass; every other layer in eval mode),
and every split (and corrupted test set) is then embedded in eval mode with
them: the test-time effect (statistics moved onto the probe's data) is
reproduced, the training-time one (batch instead of population statistics
for the training crops) approximated. The pretrained statistics are put back
after the task.

The adapted statistics are other weights, so the embeddings' cache key gets
another weights hash (:func:`adapted_hash`): the encoder's, the train
split's content fingerprint, the window settings and this module's code. An
encoder without BatchNorm layers (logmel, most hub models) is unchanged and
keeps its keys; a record says ``official_batchnorm`` either way.
"""

from __future__ import annotations

import contextlib
import hashlib
from typing import TYPE_CHECKING, Any, Iterator

if TYPE_CHECKING:  # pragma: no cover
    from bench.settings import IndexedTask, PreparedEncoder

#: adapted statistics of this process, by adapted weights hash: the corrupted test sets of a pair reuse them
_ADAPTED: dict[str, dict[str, Any]] = {}


def layers(module: Any) -> list[Any]:
    """The BatchNorm layers of ``module`` (none when it is not a torch module)."""
    if module is None:
        return []
    import torch

    if not isinstance(module, torch.nn.Module):
        return []
    return [m for m in module.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]


def adapted_hash(weights_hash: str, data: IndexedTask) -> str:
    """The weights hash of the encoder with its BatchNorm statistics re-estimated on ``data``'s train split."""
    from bench import keys

    fp = keys.data_fingerprint({"train": data.splits["train"].items}, data.root)
    text = "\t".join(["official_batchnorm", weights_hash, data.task.name, fp, str(data.task.max_windows),
                      keys.code_digest("bench.batchnorm")])
    return hashlib.sha256(text.encode()).hexdigest()


@contextlib.contextmanager
def adapted(prep: PreparedEncoder, data: IndexedTask, *, device: str, batch_size: int,
            progress: bool = False) -> Iterator[str]:
    """Within: ``prep``'s encoder with its BatchNorm statistics re-estimated on ``data``'s train windows; yields
    the weights hash the embeddings are keyed by. Afterwards the pretrained statistics are back."""
    bns = layers(prep.encoder.module)
    if not bns:
        yield prep.weights_hash
        return
    import torch

    from bench import extract as ex
    from bench.store import log

    module = prep.encoder.module
    names = {id(m): n for n, m in module.named_modules()}
    saved = {names[id(m)]: (m.momentum, {k: v.detach().clone() for k, v in m.state_dict().items()}) for m in bns}
    was_training = module.training
    key = adapted_hash(prep.weights_hash, data)
    try:
        if key in _ADAPTED:
            for m in bns:
                m.load_state_dict(_ADAPTED[key][names[id(m)]])
        else:
            log(f"[{data.task.name}] official BatchNorm: re-estimating {len(bns)} BatchNorm layers' running "
                f"statistics on {len(data.splits['train'].items)} train tracks")
            module.eval()
            for m in bns:
                m.reset_running_stats()
                m.momentum = None  # cumulative average over the pass: the population statistics
                m.train()
            with torch.no_grad():
                ex.extract(prep.encoder, data.splits["train"].items, device=device, batch_size=batch_size,
                           max_windows=data.task.max_windows, progress=progress,
                           desc=f"{prep.encoder.name} x {data.task.name} [BatchNorm statistics]")
            for m in bns:
                m.momentum = saved[names[id(m)]][0]
            _ADAPTED[key] = {names[id(m)]: {k: v.detach().to("cpu").clone() for k, v in m.state_dict().items()}
                             for m in bns}
        module.eval()
        yield key
    finally:
        for m in bns:
            momentum, state = saved[names[id(m)]]
            m.momentum = momentum
            m.load_state_dict(state)
        module.train(was_training)
