"""The Python API: :func:`evaluate` encoders on tasks and :func:`load_results` of a results folder.

A thin layer over the main job (:func:`bench.experiments.main.run`, the stage
of ``bench run``): the same records and the same summary as the leaderboard's
(:func:`bench.leaderboard.summary`), returned as a pandas DataFrame instead of
files. See docs/api.md. ``import bench`` reaches this module lazily.
"""

from __future__ import annotations

import contextlib
import io
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.errors import BenchError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

#: the columns of :attr:`Results.table`, in order (pooled pretraining-seed columns follow when present)
COLUMNS = ("encoder", "task", "condition", "metric", "primary", "mean", "std", "lo", "hi", "interval", "n_seeds",
           "seeds", "encoder_name", "variant", "protocol", "demo_data", "data_fingerprint", "weights_hash")


@dataclass
class Results:
    """What :func:`evaluate` and :func:`load_results` return.

    ``table``: one row per encoder x task x condition x metric (``primary`` marks the task's
    primary metric, the only one with an interval ``lo``..``hi``); ``records``: the JSON records
    (one per encoder x task x condition x seed), exactly as ``bench run`` writes them;
    ``failures``: the parts that failed (empty when all ran); ``out``: the folder written, or None.
    """

    table: pd.DataFrame
    records: list[dict[str, Any]]
    failures: list[str] = field(default_factory=list)
    out: Path | None = None


def _names(value: str | Iterable[str]) -> str:
    return value if isinstance(value, str) else ",".join(value)


def table(records: list[dict[str, Any]]) -> pd.DataFrame:
    """The summary rows of ``records`` as a DataFrame (empty, with the columns, when there are none)."""
    import pandas as pd

    from bench import leaderboard

    rows = leaderboard.summary(records) if records else []
    df = pd.DataFrame(rows)
    if df.empty:
        return pd.DataFrame(columns=list(COLUMNS))
    first = [c for c in COLUMNS if c in df.columns]
    return df[first + [c for c in df.columns if c not in first]].reset_index(drop=True)


@contextlib.contextmanager
def _silenced(quiet: bool) -> Iterator[None]:
    if not quiet:
        yield
        return
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        yield


def evaluate(encoders: str | Iterable[str], tasks: str | Iterable[str] = "all", data_root: str | Path | None = None,
             seeds: Iterable[int] = (0,), out: str | Path | None = None, *, device: str = "cpu",
             batch_size: int = 32, probe_grid: str = "default", protocol: str = "bench", cache: bool = True,
             options: dict[str, Any] | None = None, checkpoint: str | None = None, limit: int | None = None,
             progress: bool = False,
             quiet: bool = True) -> Results:
    """Evaluate ``encoders`` on ``tasks``, as ``bench run`` does; a :class:`Results`.

    ``encoders``/``tasks``: names (a list or ``"a,b"``; ``"all"`` or a group for tasks, as on the command
    line); ``data_root``: the data folder (None: the configured one, else generated demo data);
    ``seeds``: probe seeds; ``out``: the folder for records and leaderboard files, or None to write
    nothing that stays (a temporary folder is used and removed); ``options``: the ``-O`` encoder
    options (``{"key": v}`` or ``{"encoder:key": v}``). Nothing is printed unless ``quiet=False``
    (``progress=True`` shows the progress bars). Bad names or options raise :class:`bench.errors.BenchError`.
    """
    from bench import plugins
    from bench.commands.common import check_out, check_protocol_grid
    from bench.config import DataRoots
    from bench.device import resolve_device
    from bench.experiments.main import run as run_job
    from bench.probe import parse_grid
    from bench.run import check_option_scopes
    from bench.settings import EvalSettings, RunConfig

    enc = plugins.encoders().resolve(_names(encoders))
    tsk = plugins.tasks().resolve(_names(tasks))
    seeds = tuple(int(s) for s in seeds)
    if not seeds:
        raise BenchError("evaluate(seeds=...) needs at least one seed")
    if limit is not None and limit < 1:
        raise BenchError(f"evaluate(limit=...) must be at least 1 (tracks per split), got {limit}")
    if batch_size < 1:
        raise BenchError(f"evaluate(batch_size=...) must be at least 1, got {batch_size}")
    grid = check_protocol_grid(protocol, probe_grid)
    parse_grid(grid)
    opts = dict(options or {})
    check_option_scopes(opts, enc)
    roots = DataRoots.from_args([str(data_root)] if data_root is not None else None)
    roots.check_tasks(plugins.tasks().names())
    with contextlib.ExitStack() as stack:
        if out is None:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bench-api-")))
        else:
            folder = check_out(Path(out))
        settings = EvalSettings(out=folder, data_roots=roots, device=resolve_device(device), seeds=seeds,
                                batch_size=batch_size, probe_grid=grid, protocol=protocol, cache=cache,
                                progress=progress, limit=limit)
        config = RunConfig(encoders=enc, tasks=tsk, settings=settings, checkpoint=checkpoint, encoder_options=opts)
        with _silenced(quiet):
            outcome = run_job(config)
    return Results(table(outcome.records), outcome.records, list(outcome.failures),
                   None if out is None else folder)


def load_results(path: str | Path) -> Results:
    """The :class:`Results` of a folder ``bench run`` (or :func:`evaluate` with ``out``) wrote.

    ``path``: the run's folder (its ``records/`` is read), a records folder, or one record file.
    """
    from bench.results import read_records

    p = Path(path)
    if p.is_dir() and (p / "records").is_dir():
        p = p / "records"
    if not p.exists():
        raise BenchError(f"{p}: no such results folder or record file (give the --out folder of `bench run`)")
    records = read_records([p])
    if not records:
        raise BenchError(f"{p}: no records in it (give the --out folder of `bench run`)")
    return Results(table(records), records, [], p.parent if p.name == "records" else None)
