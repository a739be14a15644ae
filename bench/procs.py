"""The processes of one run: a single one, or several started by ``accelerate launch``.

``accelerate launch -m bench.cli run ...`` starts N copies of ``bench run``
(on one machine or several) with ``WORLD_SIZE``/``RANK``/``LOCAL_RANK`` set.
:func:`current` joins them into one process group through Accelerate (gloo on
CPU, NCCL on GPUs, as pretraining does) and gives the little the run needs:
its rank, whether it is the main process, the device of this process, and
collective exchanges of small Python objects (``broadcast``, ``gather``),
always over a gloo group so that they work the same on CPU and GPU machines.
In a single process (no launcher) everything here is a no-op and nothing
imports torch.distributed or accelerate.

The exchanges are blocking: a process that reaches one waits for the others.
While the main process trains probes and writes records, the others wait at
the next exchange; the group's timeout (:data:`TIMEOUT_S`, or
``BENCH_DIST_TIMEOUT_S``) is long for that reason. A process that dies is
not waited for: the launcher (torchrun) stops the others.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

#: seconds a process waits at an exchange before the group gives up (main may be training probes)
TIMEOUT_S = 24 * 3600


def launched() -> bool:
    """True when this process is one of several started by a launcher (``WORLD_SIZE`` > 1)."""
    try:
        return int(os.environ.get("WORLD_SIZE", "1")) > 1
    except ValueError:
        return False


@dataclass
class Procs:
    """This process's place in the run: rank, number of processes, device."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: str = "cpu"
    _group: Any = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def several(self) -> bool:
        return self.world > 1

    def broadcast(self, obj: Any = None) -> Any:
        """The main process's ``obj``, on every process."""
        if not self.several:
            return obj
        import torch.distributed as dist

        box = [obj if self.is_main else None]
        dist.broadcast_object_list(box, src=0, group=self._group)
        return box[0]

    def gather(self, obj: Any) -> list[Any] | None:
        """Every process's ``obj`` in rank order, on the main process; None on the others."""
        if not self.several:
            return [obj]
        import torch.distributed as dist

        out = [None] * self.world if self.is_main else None
        dist.gather_object(obj, out, dst=0, group=self._group)
        return out

    def barrier(self) -> None:
        if self.several:
            import torch.distributed as dist

            dist.barrier(group=self._group)


_current: Procs | None = None


def current(device: str = "cpu") -> Procs:
    """This process's :class:`Procs` (the process group is set up on the first call under a launcher).

    ``device``: the device the user asked for; with several processes on GPUs
    each takes the GPU of its local rank (``cuda`` -> ``cuda:<local rank>``).
    """
    global _current
    if _current is not None:
        return _current
    if not launched():
        _current = Procs(device=device)
        return _current
    from datetime import timedelta

    import torch.distributed as dist
    from accelerate import PartialState

    timeout = timedelta(seconds=float(os.environ.get("BENCH_DIST_TIMEOUT_S", TIMEOUT_S)))
    state = PartialState(cpu=not device.startswith("cuda"), timeout=timeout)
    rank, world, local = state.process_index, state.num_processes, state.local_process_index
    if device.startswith("cuda") and ":" not in device:
        device = f"cuda:{local}"
    group = None if dist.get_backend() == "gloo" else dist.new_group(backend="gloo", timeout=timeout)
    _current = Procs(rank, world, local, device, group)
    return _current


def finish() -> None:
    """Wait for every process, then leave the group (a no-op in a single process)."""
    global _current
    if _current is None or not _current.several:
        return
    import torch.distributed as dist

    _current.barrier()
    if dist.is_initialized():
        dist.destroy_process_group()
    _current = None
