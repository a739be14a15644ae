"""Conformance checks for encoder and task plugins: the plugin author's test kit.

The harness relies on more than the contract's signatures: an embedding whose
shape depends on the batch, dropout left on in eval mode, torch imported when
``bench list`` loads the plugin, a config that is not JSON or changes between
two calls, weights that do not come back from a checkpoint: each of these is
found only mid-run, or never (a silently wrong cache key). This module checks
them up front, on any installed encoder or task or on a class the author is
writing::

    from bench.testing import check_encoder, check_task

    report = check_encoder("my_encoder", options={"seed": 0})
    print(report.format())
    report.assert_ok()          # AssertionError naming every failed check and how to fix it

``bench plugin check NAME...`` prints the same reports; the pytest plugin
(:mod:`bench.pytest_plugin`) turns each check into a test of the plugin's own
suite. Every check has a stable name (:data:`ENCODER_CHECKS`,
:data:`TASK_CHECKS`); a failure says what is wrong and how to fix it. The
embedding speed is measured and reported, never asserted.

Importing this module is cheap (no torch); the checks import it when they run.
"""

from __future__ import annotations

import functools
import json
import math
import os
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from bench.errors import BenchError

PASS, FAIL, SKIP, INFO = "pass", "fail", "skip", "info"

#: the encoder checks, in the order they run
ENCODER_CHECKS = (
    "create", "attributes", "to_eval", "embed_shape", "finite", "deterministic", "batch_invariance",
    "config_json", "config_stable", "checkpoint_roundtrip", "options_from_config", "import_without_torch",
    "speed",
)
#: the task checks, in the order they run
TASK_CHECKS = ("create", "import_without_torch", "demo", "loader", "splits_disjoint", "labels", "metrics")

#: modules a plugin module must not import when ``bench list`` loads it (seconds of start-up each)
HEAVY_MODULES = ("torch", "numpy", "transformers", "tensorflow", "jax")

#: batch sizes ``embed`` is called with (1 and odd sizes catch squeeze() and fixed-batch reshapes)
BATCH_SIZES = (1, 2, 5)


@dataclass
class Check:
    """The outcome of one named check: pass, fail, skip or info (measured, not judged)."""

    name: str
    status: str
    message: str
    fix: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.status != FAIL

    def format(self) -> str:
        text = f"{self.status.upper():<4}  {self.name:<21} {self.message}"
        if self.status == FAIL and self.fix:
            text += "\n" + " " * 28 + "fix: " + self.fix
        return text

    def assert_ok(self) -> None:
        """Raise :class:`ConformanceError` when this check failed."""
        if self.status == FAIL:
            raise ConformanceError(self.format())


class ConformanceError(AssertionError):
    """A plugin failed a conformance check (an AssertionError, so pytest shows it as a failure)."""


@dataclass
class Report:
    """Every check of one encoder or task."""

    kind: str
    subject: str
    checks: list[Check] = field(default_factory=list)
    source: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def failures(self) -> list[Check]:
        return [c for c in self.checks if c.status == FAIL]

    @property
    def build_error(self) -> BenchError | None:
        """The error that kept the encoder or task from being built (a bad option, a missing dependency)."""
        for c in self.checks:
            if c.name == "create" and isinstance(c.data.get("error"), BenchError):
                return c.data["error"]
        return None

    def get(self, name: str) -> Check:
        for c in self.checks:
            if c.name == name:
                return c
        raise KeyError(f"no check {name!r} in the report of {self.kind} {self.subject!r}")

    def format(self) -> str:
        head = f"{self.kind} {self.subject!r}" + (f" ({self.source})" if self.source else "")
        lines = [head] + ["  " + c.format().replace("\n", "\n  ") for c in self.checks]
        counts = {s: sum(c.status == s for c in self.checks) for s in (PASS, FAIL, SKIP, INFO)}
        summary = ", ".join(f"{n} {word}" for word, n in
                            (("passed", counts[PASS]), ("failed", counts[FAIL]), ("skipped", counts[SKIP]))
                            if n or word != "skipped")
        lines.append(f"  -> {self.kind} {self.subject!r}: {summary} ({self.seconds:.1f}s)")
        return "\n".join(lines)

    def assert_ok(self) -> None:
        """Raise :class:`ConformanceError` listing every failed check, with its fix."""
        if not self.ok:
            failed = "\n".join("  " + c.format().replace("\n", "\n  ") for c in self.failures)
            raise ConformanceError(f"{self.kind} {self.subject!r} failed {len(self.failures)} conformance "
                                   f"check(s):\n{failed}")


class _Skip(Exception):
    """Raised inside a check to mark it skipped with a reason."""


class _Run:
    """Runs named checks in order; an exception inside a check is that check's failure."""

    def __init__(self, report: Report) -> None:
        self.report = report

    def __call__(self, name: str, fn: Callable[[], Check | str], needs: tuple[str, ...] = ()) -> Check:
        blocked = [n for n in needs if not self._passed(n)]
        if blocked:
            check = Check(name, SKIP, f"not run: check {blocked[0]!r} did not pass")
        else:
            try:
                out = fn()
                check = out if isinstance(out, Check) else Check(name, PASS, out if isinstance(out, str) else "")
            except _Skip as exc:
                check = Check(name, SKIP, str(exc))
            except _Fail as exc:
                check = Check(name, FAIL, exc.message, exc.fix)
            except BenchError as exc:  # bad options, a missing dependency: the message says what to do
                check = Check(name, FAIL, str(exc), "see the message: an option or an installation to fix",
                              data={"error": exc})
            except Exception as exc:  # a check that raised: the plugin's code did, say where
                check = Check(name, FAIL, f"raised {type(exc).__name__}: {exc} ({_where(exc)})",
                              "fix the code at that line: the harness calls it the same way, mid-run")
        check.name = name
        self.report.checks.append(check)
        return check

    def _passed(self, name: str) -> bool:
        return any(c.name == name and c.status in (PASS, INFO) for c in self.report.checks)


class _Fail(Exception):
    def __init__(self, message: str, fix: str) -> None:
        super().__init__(message)
        self.message, self.fix = message, fix


def _where(exc: BaseException) -> str:
    """The innermost frame of the traceback outside torch and this module: usually the plugin's line."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return "no traceback"
    own = [f for f in frames if f.filename != __file__ and f"{os.sep}torch{os.sep}" not in f.filename]
    f = (own or frames)[-1]
    return f"{f.filename}:{f.lineno} in {f.name}"


# -- what is being checked --------------------------------------------------------------------------


@dataclass
class _Subject:
    label: str
    factory: Callable[..., Any]
    options: dict[str, Any]
    module: str | None
    source: str
    instance: Any = None


def _subject(kind: str, target: Any, options: dict[str, Any], module: str | None) -> _Subject:
    """Resolve a registered name, a class/factory or an instance into something the checks can build."""
    from bench import plugins

    if isinstance(target, str):
        registry = plugins.encoders() if kind == "encoder" else plugins.tasks()
        entry = registry.get(target)  # UnknownNameError (exit 2 in the CLI) names the close matches
        mod = module or (entry.plugin.module.partition(":")[0] if entry.plugin.distribution else None)
        return _Subject(target, entry.create, options, mod, entry.plugin.describe())
    if isinstance(target, type) or callable(target) and not _is_instance(kind, target):
        label = getattr(target, "name", "") or getattr(target, "__name__", repr(target))
        return _Subject(str(label), target, options, module, f"{getattr(target, '__module__', '?')}."
                        f"{getattr(target, '__qualname__', label)}")
    return _Subject(str(target.name or type(target).__name__), type(target), options, module,
                    f"instance of {type(target).__module__}.{type(target).__qualname__}", instance=target)


def _is_instance(kind: str, obj: Any) -> bool:
    if kind == "encoder":
        from bench.encoder import Encoder

        return isinstance(obj, Encoder)
    from bench.task import Task

    return isinstance(obj, Task)


# -- encoders ----------------------------------------------------------------------------------------


def check_encoder(
    encoder: Any,
    options: dict[str, Any] | None = None,
    *,
    device: str = "cpu",
    batch_sizes: tuple[int, ...] = BATCH_SIZES,
    module: str | None = None,
    import_check: bool = True,
    speed_batch: int = 8,
    seed: int = 0,
) -> Report:
    """Run every encoder check (:data:`ENCODER_CHECKS`) and return the report; never raises for a failure.

    ``encoder``: a registered name (built with ``options`` through its plugin's
    factory, the way ``bench run`` builds it), an :class:`~bench.encoder.Encoder`
    subclass (built with ``options``), or an instance (built with ``options``;
    the checkpoint and config checks build more of its class with the same
    ``options``). ``module``: the plugin module to import without torch
    (default: the entry point's module for a registered name; a class or
    instance is import-checked only when ``module`` is given).
    """
    options = dict(options or {})
    t0 = time.perf_counter()
    subject = _subject("encoder", encoder, options, module)
    report = Report("encoder", subject.label, source=subject.source)
    run = _Run(report)
    state: dict[str, Any] = {}

    def build() -> Any:
        return subject.factory(**subject.options)

    def create() -> str:
        from bench.encoder import Encoder

        enc = subject.instance if subject.instance is not None else build()
        if not isinstance(enc, Encoder):
            raise _Fail(f"the factory returned {type(enc).__name__}, not a bench.encoder.Encoder",
                        "subclass bench.encoder.Encoder and register the class (or a function returning one)")
        state["enc"] = enc
        return f"built {type(enc).__name__}" + (f" with options {subject.options}" if subject.options else "")

    run("create", create)
    run("attributes", lambda: _attributes(state["enc"]), needs=("create",))
    run("to_eval", lambda: _to_eval(state["enc"], device), needs=("create",))
    run("embed_shape", lambda: _embed_shape(state["enc"], device, batch_sizes, seed), needs=("to_eval", "attributes"))
    run("finite", lambda: _finite(state["enc"], device, seed), needs=("embed_shape",))
    run("deterministic", lambda: _deterministic(state["enc"], device, seed), needs=("embed_shape",))
    run("batch_invariance", lambda: _batch_invariance(state["enc"], device, seed), needs=("deterministic",))
    run("config_json", lambda: _config_json(state["enc"]), needs=("create",))
    run("config_stable", lambda: _config_stable(state["enc"], build, device, seed), needs=("config_json", "embed_shape"))
    run("checkpoint_roundtrip", lambda: _checkpoint_roundtrip(state["enc"], build, device, seed),
        needs=("deterministic", "config_stable"))
    run("options_from_config", lambda: _options_roundtrip(state["enc"]), needs=("config_stable",))
    if import_check:
        run("import_without_torch", lambda: _import_without_torch(subject.module))
    else:
        report.checks.append(Check("import_without_torch", SKIP, "not run (import_check=False)"))
    run("speed", lambda: _speed(state["enc"], device, speed_batch, seed), needs=("embed_shape",))
    report.seconds = time.perf_counter() - t0
    return report


def waveforms(n: int, window: int, sample_rate: int, seed: int = 0) -> "Any":
    """``[n, window]`` float32 test windows: a sine (random pitch and level) plus a little noise, seeded."""
    import torch

    g = torch.Generator().manual_seed(seed)
    t = torch.arange(window, dtype=torch.float64) / max(sample_rate, 1)
    freq = 110.0 * 2.0 ** (5.0 * torch.rand(n, 1, generator=g, dtype=torch.float64))
    phase = 2 * math.pi * torch.rand(n, 1, generator=g, dtype=torch.float64)
    amp = 0.05 + 0.5 * torch.rand(n, 1, generator=g, dtype=torch.float64)
    x = amp * torch.sin(2 * math.pi * freq * t + phase) + 0.02 * torch.randn(n, window, generator=g, dtype=torch.float64)
    return x.float()


def _embed(enc: Any, x: Any, device: str) -> Any:
    import torch

    with torch.no_grad():
        return enc.embed(x.to(device))


def _attributes(enc: Any) -> str:
    problems = []
    if not isinstance(enc.name, str) or not enc.name.strip():
        problems.append(f"name is {enc.name!r}, expected a non-empty string")
    for attr in ("sample_rate", "window", "dim"):
        v = getattr(enc, attr)
        if not isinstance(v, int) or isinstance(v, bool) or v <= 0:
            problems.append(f"{attr} is {v!r}, expected a positive int")
    if problems:
        raise _Fail("; ".join(problems), "set the class attributes name, sample_rate (Hz), window (samples) and "
                    "dim (embedding size), or set them on the instance in __init__ before use")
    if not 1000 <= enc.sample_rate <= 384_000:
        raise _Fail(f"sample_rate {enc.sample_rate} Hz is outside 1000..384000 Hz",
                    "sample_rate is in Hz (e.g. 16000), the rate the waveforms given to embed() have")
    seconds = enc.window / enc.sample_rate
    if not 0.01 <= seconds <= 120:
        raise _Fail(f"window {enc.window} samples is {seconds:.4g} s at {enc.sample_rate} Hz, outside 0.01..120 s",
                    "window is a number of samples at sample_rate (e.g. 3 s at 16 kHz = 48000)")
    return f"{enc.sample_rate} Hz, window {enc.window} samples ({seconds:.3g} s), dim {enc.dim}"


def _to_eval(enc: Any, device: str) -> str:
    out = enc.to(device)
    if out is not enc:
        raise _Fail(f"to({device!r}) returned {type(out).__name__}, not the encoder itself",
                    "return self from to() (the harness calls encoder.to(device).eval())")
    out = enc.eval()
    if out is not enc:
        raise _Fail(f"eval() returned {type(out).__name__}, not the encoder itself",
                    "return self from eval() (the harness calls encoder.to(device).eval())")
    return f"to({device!r}) and eval() return the encoder"


def _embed_shape(enc: Any, device: str, batch_sizes: tuple[int, ...], seed: int) -> str:
    import torch

    for b in batch_sizes:
        out = _embed(enc, waveforms(b, enc.window, enc.sample_rate, seed), device)
        if not isinstance(out, torch.Tensor):
            raise _Fail(f"embed() of a batch of {b} returned {type(out).__name__}, not a torch.Tensor",
                        "return a torch.Tensor [B, dim] (convert numpy output with torch.from_numpy)")
        if tuple(out.shape) != (b, enc.dim):
            hint = (" (a squeeze() dropped the batch axis?)" if b == 1 and out.dim() == 1 else "")
            raise _Fail(f"embed() of a batch of {b} windows returned shape {tuple(out.shape)}, expected "
                        f"[{b}, {enc.dim}]{hint}",
                        "return [B, dim] for every batch size B, 1 included; pool over time inside embed() and "
                        "make `dim` the size of what is returned")
        if not out.is_floating_point():
            raise _Fail(f"embed() returned dtype {out.dtype}, expected a floating-point tensor (float32)",
                        "return float32 embeddings (.float())")
    return f"[B, {enc.dim}] {out.dtype} for B in {list(batch_sizes)}"


def _finite(enc: Any, device: str, seed: int) -> str:
    import torch

    n = enc.window
    cases = {
        "silence": torch.zeros(1, n),
        "full-scale sine": torch.sin(2 * math.pi * 440.0 * torch.arange(n) / enc.sample_rate)[None].float(),
        "quiet noise (1e-5)": 1e-5 * torch.randn(1, n, generator=torch.Generator().manual_seed(seed)),
        "music-like": waveforms(1, n, enc.sample_rate, seed),
        "half silent (a zero-padded short track)": torch.cat(
            [waveforms(1, n // 2, enc.sample_rate, seed), torch.zeros(1, n - n // 2)], dim=1),
    }
    bad = []
    for what, x in cases.items():
        out = _embed(enc, x, device)
        if not torch.isfinite(out).all():
            bad.append(what)
    if bad:
        raise _Fail(f"embed() returned NaN or infinite values for: {', '.join(bad)}",
                    "guard logs and divisions (log(x + eps), x / (norm + eps)); silent windows are common "
                    "(digital silence, tracks shorter than a window are zero-padded)")
    return f"finite for {len(cases)} inputs incl. silence and full scale"


def _close(a: Any, b: Any, rtol: float, atol: float) -> tuple[bool, float, float]:
    diff = float((a.float() - b.float()).abs().max())
    scale = float(b.float().abs().max())
    return diff <= atol + rtol * scale, diff, scale


def _deterministic(enc: Any, device: str, seed: int) -> str:
    x = waveforms(3, enc.window, enc.sample_rate, seed)
    first, second = _embed(enc, x, device), _embed(enc, x, device)
    ok, diff, scale = _close(second, first, rtol=1e-5, atol=1e-6)
    if not ok:
        raise _Fail(f"two embed() calls on the same batch in eval mode differ by up to {diff:.3g} "
                    f"(embeddings up to {scale:.3g})",
                    "make eval mode deterministic: keep every module in self.module (so eval() turns dropout off) "
                    "or override eval(); no random cropping, noise or augmentation in embed()")
    return f"identical on a repeat (max diff {diff:.2g})"


def _batch_invariance(enc: Any, device: str, seed: int) -> str:
    import torch

    x = waveforms(5, enc.window, enc.sample_rate, seed)
    batched = _embed(enc, x, device)
    alone = torch.cat([_embed(enc, x[i:i + 1], device) for i in range(len(x))])
    ok, diff, scale = _close(alone, batched, rtol=1e-4, atol=1e-5)
    if not ok:
        rows = (alone.float() - batched.float()).abs().amax(dim=1)
        worst = int(rows.argmax())
        raise _Fail(f"a window embedded alone differs from the same window in a batch of 5 by up to {diff:.3g} "
                    f"(window {worst}; embeddings up to {scale:.3g})",
                    "embed each window independently: no statistics over the batch axis (batch-norm in train "
                    "mode, x - x.mean(0), normalising by the batch maximum); the harness batches windows of "
                    "different tracks together")
    return f"each window's embedding is the same alone and in a batch of 5 (max diff {diff:.2g})"


_CORE_KEYS = ("name", "sample_rate", "window", "dim")


def _config_json(enc: Any) -> str:
    config = enc.config()
    if not isinstance(config, dict):
        raise _Fail(f"config() returned {type(config).__name__}, expected a dict",
                    "return a dict of the settings that change the embeddings ({**super().config(), ...})")
    try:
        text = json.dumps(config, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        bad = [k for k, v in config.items() if not _jsonable(v)]
        raise _Fail(f"config() is not JSON-serialisable ({exc}); offending key(s): {bad}",
                    "keep config() to str/int/float/bool/None, lists and dicts with str keys; store a path as "
                    "str(path), a dtype as its name, a tuple as a list") from None
    back = json.loads(text)
    if back != config:
        changed = [k for k in config if k not in back or back[k] != config[k]]
        raise _Fail(f"config() changes through JSON (key(s) {changed}: e.g. a tuple becomes a list, an int key "
                    "a str); a checkpoint saved with it is then refused on load",
                    "use lists instead of tuples and str dict keys in config()")
    missing = [k for k in _CORE_KEYS if k not in config]
    wrong = [k for k in _CORE_KEYS if k in config and config[k] != getattr(enc, k)]
    if missing or wrong:
        raise _Fail(f"config() lacks {missing} / disagrees with the attributes on {wrong}",
                    "start config() from {**super().config(), ...} so name, sample_rate, window and dim are in it")
    return f"{len(config)} keys, JSON round-trips"


def _jsonable(v: Any) -> bool:
    try:
        json.dumps(v, allow_nan=False)
        return True
    except (TypeError, ValueError):
        return False


def _config_stable(enc: Any, build: Callable[[], Any], device: str, seed: int) -> str:
    first = enc.config()
    if enc.config() != first:
        raise _Fail("two calls of config() return different values",
                    "config() must not hold times, counters, random ids or object addresses: it is the cache key")
    _embed(enc, waveforms(2, enc.window, enc.sample_rate, seed), device)
    after = enc.config()
    if after != first:
        changed = sorted(k for k in set(first) | set(after) if first.get(k) != after.get(k))
        raise _Fail(f"config() changed after embed() (key(s) {changed})",
                    "settle every setting in __init__; the cache key is taken before the first batch")
    other = build()
    if other.config() != first:
        changed = sorted(k for k in set(first) | set(other.config()) if first.get(k) != other.config().get(k))
        raise _Fail(f"two encoders built with the same options have different configs (key(s) {changed})",
                    "config() must depend on the options only (no time, random id, object address or path of a "
                    "temporary file)")
    return "same on repeat, after embed() and for a second instance with the same options"


def _perturbed(state: dict[str, Any], seed: int) -> dict[str, Any]:
    import torch

    g = torch.Generator().manual_seed(seed + 1)
    out = {}
    for k, v in state.items():
        v = v.detach().cpu()
        if v.is_floating_point() and v.numel():
            noise = torch.randn(v.shape, generator=g, dtype=torch.float32).to(v.dtype)
            v = v + 0.02 * (float(v.float().abs().mean()) + 1e-3) * noise
        out[k] = v.clone()
    return out


def _checkpoint_roundtrip(enc: Any, build: Callable[[], Any], device: str, seed: int) -> str:
    from bench.encoder import load_checkpoint, save_checkpoint, weights_hash

    state = enc.state_dict()
    if not state:
        return "no weights (state_dict() is empty): nothing to save"
    a = build()
    before = weights_hash(a)
    a.load_state_dict(_perturbed(a.state_dict(), seed))
    after = weights_hash(a)
    if after == before:
        raise _Fail("load_state_dict() did not change the weights (state_dict() is unchanged after loading "
                    "different tensors)",
                    "load the given tensors into the module that embed() uses (the default loads into self.module)")
    with tempfile.TemporaryDirectory(prefix="bench-check-") as tmp:
        path = save_checkpoint(a, Path(tmp) / "weights.safetensors")
        b = build()
        try:
            load_checkpoint(b, path)
        except Exception as exc:
            raise _Fail(f"a checkpoint saved by save_checkpoint() could not be loaded into a second encoder built "
                        f"with the same options: {exc}",
                        "config() must be equal for both (see config_stable) and state_dict()/load_state_dict() "
                        "must agree on names and shapes") from None
    if weights_hash(b) != after:
        raise _Fail("after load_checkpoint() the weights differ from the saved ones",
                    "state_dict() must return every tensor load_state_dict() restores, under the same names")
    x = waveforms(3, enc.window, enc.sample_rate, seed)
    a.to(device).eval()
    b.to(device).eval()
    ok, diff, scale = _close(_embed(b, x, device), _embed(a, x, device), rtol=1e-5, atol=1e-6)
    if not ok:
        raise _Fail(f"embeddings after loading the checkpoint differ from the saved encoder's by up to {diff:.3g}",
                    "every weight embed() uses must be in state_dict() (keep them in self.module, or override "
                    "state_dict/load_state_dict); seed any random initialisation from the options")
    return f"{len(state)} tensors saved and loaded; same weights hash and embeddings"


def _options_roundtrip(enc: Any) -> str:
    cls = type(enc)
    # Transitional: a bench whose Encoder base predates options_from_config; drop once every
    # supported bench has it (it is then inherited by every encoder).
    if not hasattr(cls, "options_from_config"):
        raise _Skip("this bench's Encoder has no options_from_config (added with the trainable-encoder redesign)")
    config = enc.config()
    options = cls.options_from_config(config)
    if not isinstance(options, dict):
        raise _Fail(f"options_from_config() returned {type(options).__name__}, expected a dict of options",
                    "return the keyword options that rebuild the encoder")
    try:
        rebuilt = cls(**options)
    except Exception as exc:
        raise _Fail(f"{cls.__name__}(**options_from_config(config())) raised {type(exc).__name__}: {exc} "
                    f"(options {options})",
                    "override the classmethod options_from_config(config) to return only constructor options "
                    "(drop derived keys), or accept the extra config keys in __init__") from None
    if rebuilt.config() != config:
        changed = sorted(k for k in set(config) | set(rebuilt.config()) if config.get(k) != rebuilt.config().get(k))
        raise _Fail(f"the encoder rebuilt from options_from_config(config()) has another config (key(s) {changed})",
                    "make options_from_config(config) return every option that config() depends on; "
                    "`bench run --checkpoint` rebuilds encoders this way")
    return f"rebuilt from {sorted(options)}: same config"


def _import_without_torch(module: str | None) -> str:
    if not module:
        raise _Skip("no plugin module to import (a class or instance was given; pass module= to check it)")
    returncode, stderr, heavy = _import_probe(module, os.pathsep.join(p for p in sys.path if p))
    if returncode != 0:
        tail = stderr.strip().splitlines()[-1:] or ["(no output)"]
        raise _Fail(f"importing plugin module {module!r} failed: {tail[0]}",
                    "the module named by the entry point must import with only bench installed")
    if heavy:
        raise _Fail(f"importing plugin module {module!r} and running its hooks imports {', '.join(heavy)}",
                    "import heavy libraries inside the encoder/task (its __init__ or methods), or register a lazy "
                    "'module:Class' string: `bench list` and `bench --help` import every plugin module")
    return f"{module} imports and registers without {', '.join(HEAVY_MODULES[:2])}"


@functools.lru_cache(maxsize=None)
def _import_probe(module: str, pythonpath: str) -> tuple[int, str, list[str]]:
    """Import ``module`` in a fresh interpreter and run its hooks; (exit code, stderr, heavy modules loaded).

    Cached per module: the plugins of one module (every encoder of a package) share one subprocess.
    """
    code = (
        "import json, sys, importlib, pluggy\n"
        "from bench import hookspecs\n"
        f"mod = importlib.import_module({module!r})\n"
        "pm = pluggy.PluginManager('bench'); pm.add_hookspecs(hookspecs); pm.register(mod)\n"
        "pm.hook.register_encoders(register=lambda *a, **k: None)\n"
        "pm.hook.register_tasks(register=lambda *a, **k: None)\n"
        f"print(json.dumps([m for m in {list(HEAVY_MODULES)!r} if m in sys.modules]))\n"
    )
    env = {**os.environ, "PYTHONPATH": pythonpath}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    heavy = json.loads(res.stdout.strip().splitlines()[-1]) if res.returncode == 0 else []
    return res.returncode, res.stderr, heavy


def _speed(enc: Any, device: str, batch: int, seed: int) -> Check:
    import torch

    x = waveforms(batch, enc.window, enc.sample_rate, seed).to(device)

    def sync() -> None:
        if str(device).startswith("cuda"):
            torch.cuda.synchronize()

    _embed(enc, x, device)  # warm-up (lazy init, kernels)
    sync()
    calls, t0 = 0, time.perf_counter()
    while calls < 20 and (calls < 2 or time.perf_counter() - t0 < 0.5):
        _embed(enc, x, device)
        calls += 1
    sync()
    dt = (time.perf_counter() - t0) / calls
    wps = batch / dt
    rt = wps * enc.window / enc.sample_rate
    return Check("speed", INFO, f"{wps:,.0f} windows/s = {rt:,.0f}x realtime (batch {batch}, {device}, "
                 f"torch {torch.get_num_threads()} threads; measured, not judged)",
                 data={"windows_per_s": wps, "realtime": rt, "batch": batch, "device": device})


# -- tasks -------------------------------------------------------------------------------------------


def check_task(
    task: Any,
    settings: dict[str, Any] | None = None,
    *,
    data_root: str | Path | None = None,
    size: str = "tiny",
    seed: int = 0,
    workdir: str | Path | None = None,
    module: str | None = None,
    import_check: bool = True,
    decode: int = 4,
) -> Report:
    """Run every task check (:data:`TASK_CHECKS`) and return the report; never raises for a failure.

    ``task``: a registered name, a :class:`~bench.task.Task` subclass or an
    instance (built with ``settings``). The demo generator writes a ``size``
    demo into ``workdir`` (default a temporary folder, removed after) and the
    loader reads it back; with ``data_root`` the loader reads that folder
    instead (real data) and the demo check is skipped. ``decode``: files per
    split decoded to check the audio is readable.
    """
    settings = dict(settings or {})
    t0 = time.perf_counter()
    subject = _subject("task", task, settings, module)
    report = Report("task", subject.label, source=subject.source)
    run = _Run(report)
    state: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-check-task-") as tmp:
        root = Path(data_root) if data_root is not None else Path(workdir or tmp) / "data"

        def create() -> str:
            from bench.task import Task

            t = subject.instance if subject.instance is not None else subject.factory(**subject.options)
            if not isinstance(t, Task):
                raise _Fail(f"the factory returned {type(t).__name__}, not a bench.task.Task",
                            "subclass bench.task.Task and register the class")
            state["task"] = t
            return _task_attributes(t)

        run("create", create)
        if import_check:
            run("import_without_torch", lambda: _import_without_torch(subject.module))
        else:
            report.checks.append(Check("import_without_torch", SKIP, "not run (import_check=False)"))
        if data_root is None:
            run("demo", lambda: _demo(state["task"], root, size, seed), needs=("create",))
            loader_needs: tuple[str, ...] = ("demo",)
        else:
            report.checks.append(Check("demo", SKIP, f"a data root was given ({root}); the loader reads it"))
            loader_needs = ("create",)
        run("loader", lambda: _loader(state, root, decode, demo=data_root is None), needs=loader_needs)
        run("splits_disjoint", lambda: _splits_disjoint(state["splits"]), needs=("loader",))
        run("labels", lambda: _labels(state["task"], state["splits"], state["classes"]), needs=("loader",))
        run("metrics", lambda: _metrics(state["task"], state["splits"], state["classes"]), needs=("labels",))
    report.seconds = time.perf_counter() - t0
    return report


def _task_attributes(t: Any) -> str:
    from bench.task import KINDS

    problems = []
    if not isinstance(t.name, str) or not t.name.strip():
        problems.append(f"name is {t.name!r}")
    if t.kind not in KINDS:
        problems.append(f"kind is {t.kind!r}, expected one of {list(KINDS)}")
    if not t.metrics or t.primary_metric not in t.metrics:
        problems.append(f"primary_metric {t.primary_metric!r} is not in metrics {tuple(t.metrics)}")
    if t.probe not in ("mlp", "linear"):
        problems.append(f"probe is {t.probe!r}, expected 'mlp' or 'linear'")
    if not isinstance(t.max_windows, int) or t.max_windows < 1:
        problems.append(f"max_windows is {t.max_windows!r}, expected a positive int")
    if not _jsonable(t.settings):
        problems.append(f"settings {t.settings!r} are not JSON-serialisable (they are recorded with every result)")
    if problems:
        raise _Fail("; ".join(problems), "fix the class attributes (see bench.task.Task) and default_settings()")
    return f"{t.kind}, metrics {list(t.metrics)} (primary {t.primary_metric}), probe {t.probe}"


def _demo(t: Any, root: Path, size: str, seed: int) -> str:
    root.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    try:
        t.make_demo(root, size=size, seed=seed)
    except NotImplementedError:
        raise _Fail("make_demo() is not implemented",
                    "write a small copy of the dataset in its real on-disk format (generated audio is fine): "
                    "the tests and the demo run read it with the same loader as real data") from None
    files = [p for p in root.rglob("*") if p.is_file()]
    if not files:
        raise _Fail(f"make_demo(size={size!r}) wrote no files under the data root",
                    "write the demo under the data_root argument, in the folders items() reads")
    missing = [d for d in t.dataset_dirs if not (root / d).is_dir()]
    if missing:
        raise _Fail(f"make_demo() did not write the dataset folder(s) {missing} named in dataset_dirs",
                    "dataset_dirs names the folders under the data root that hold the dataset; make_demo must "
                    "write them")
    return f"{len(files)} files in {time.perf_counter() - t0:.1f}s (size {size!r})"


def _loader(state: dict[str, Any], root: Path, decode: int, demo: bool) -> str:
    from bench.audio import AudioError, load
    from bench.task import SPLITS, Item, Split

    t = state["task"]
    classes = t.classes(root)
    if not isinstance(classes, (list, tuple)) or not classes or not all(isinstance(c, str) for c in classes):
        raise _Fail(f"classes() returned {classes!r:.100}, expected a non-empty list of str",
                    "return the label vocabulary as a list of names in class-index order")
    if len(set(classes)) != len(classes):
        dup = sorted({c for c in classes if list(classes).count(c) > 1})
        raise _Fail(f"classes() has duplicate names {dup[:5]}", "class names must be unique")
    splits = {}
    unreadable = 0
    for s in SPLITS:
        sp = t.items(s, root)
        if not isinstance(sp, Split):
            raise _Fail(f"items({s!r}) returned {type(sp).__name__}, expected a bench.task.Split",
                        "return a Split and append Item(track_id, path, label) to its .items")
        if not len(sp):
            where = "the demo data" if demo else str(root)
            raise _Fail(f"items({s!r}) found no tracks in {where}",
                        "make_demo() must write every split in the format items() reads (check folder and file "
                        "names, split lists)" if demo else "point data_root at the dataset")
        bad = [it for it in sp.items if not isinstance(it, Item)]
        if bad:
            raise _Fail(f"items({s!r}) holds {type(bad[0]).__name__} entries, expected bench.task.Item",
                        "append bench.task.Item(track_id, path, label, start=None, end=None)")
        if demo and sp.problems:
            raise _Fail(f"items({s!r}) reported {len(sp.problems)} problem(s) on its own demo data, e.g. "
                        f"{sp.problems[0]}",
                        "the demo generator and the loader disagree about the format: fix one of them")
        missing = [it.path for it in sp.items if not Path(it.path).is_file()]
        if missing:
            raise _Fail(f"items({s!r}) lists {len(missing)} file(s) that do not exist, e.g. {missing[0]}",
                        "check the path of each Item, or record a missing file as "
                        "split.problem(path, None, '...', 'missing_audio') instead of an Item")
        spans = [it for it in sp.items if it.start is not None and it.end is not None and not it.start < it.end]
        if spans:
            raise _Fail(f"items({s!r}) has an empty span: {spans[0]}", "start must be before end (seconds)")
        decoded = 0
        tried = sp.items[:decode]
        for it in tried:
            try:
                load(it.path, 16000, it.start, it.end)
                decoded += 1
            except AudioError:
                unreadable += 1
        if tried and not decoded:
            raise _Fail(f"none of the first {len(tried)} files of the {s} split can be decoded, e.g. {tried[0].path}",
                        "write audio soundfile/libsndfile reads (wav, flac, ogg, mp3)")
        splits[s] = sp
    state["splits"], state["classes"] = splits, list(classes)
    sizes = ", ".join(f"{s} {len(sp)}" for s, sp in splits.items())
    note = f"; {unreadable} undecodable file(s) among those tried (the harness skips them)" if unreadable else ""
    return f"{len(classes)} classes; {sizes} tracks; files exist and decode{note}"


def _splits_disjoint(splits: dict[str, Any]) -> str:
    seen_id: dict[str, str] = {}
    seen_audio: dict[tuple, str] = {}
    for s, sp in splits.items():
        ids = [it.track_id for it in sp.items]
        dup = sorted({i for i in ids if ids.count(i) > 1}) if len(set(ids)) != len(ids) else []
        if dup:
            raise _Fail(f"track id(s) {dup[:3]} appear more than once in the {s} split",
                        "give every item a unique track_id (records and the cache are keyed by it)")
        for it in sp.items:
            if it.track_id in seen_id:
                raise _Fail(f"track {it.track_id!r} is in both the {seen_id[it.track_id]} and the {s} split",
                            "a track must be in one split only (the probe would be scored on training data)")
            seen_id[it.track_id] = s
            key = (str(Path(it.path).resolve()), it.start, it.end)
            if key in seen_audio and seen_audio[key] != s:
                raise _Fail(f"the audio {it.path} (span {it.start}..{it.end}) is in both the {seen_audio[key]} and "
                            f"the {s} split", "a recording must be in one split only")
            seen_audio[key] = s
    return "no track id or audio is in two splits; ids unique within each split"


def _labels(t: Any, splits: dict[str, Any], classes: list[str]) -> str:
    n = len(classes)
    used: set[int] = set()
    for s, sp in splits.items():
        for it in sp.items:
            lab = it.label
            if t.kind == "multiclass":
                ok = isinstance(lab, int) and not isinstance(lab, bool) and 0 <= lab < n
                if not ok:
                    raise _Fail(f"{s} item {it.track_id!r} has label {lab!r}: expected an int class index in "
                                f"0..{n - 1} (multiclass, {n} classes)",
                                "map label names to their index in classes(); an unknown label is a "
                                "split.problem(..., 'unknown_label'), not an item")
                used.add(lab)
            else:
                ok = (isinstance(lab, tuple) and all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c < n
                                                     for c in lab) and len(set(lab)) == len(lab))
                if not ok:
                    raise _Fail(f"{s} item {it.track_id!r} has label {lab!r}: expected a tuple of distinct int class "
                                f"indices in 0..{n - 1} (multilabel, {n} classes)",
                                "use a tuple of class indices (an empty tuple for a clip with no tag)")
                used.update(lab)
    train = {it.label for it in splits["train"].items} if t.kind == "multiclass" else \
        {c for it in splits["train"].items for c in it.label}
    if len(train) < 2:
        raise _Fail(f"the train split uses {len(train)} class(es); a probe needs at least 2",
                    "make the demo's train split cover several classes")
    return f"every label inside the {n}-class vocabulary; {len(used)} classes used"


def _metrics(t: Any, splits: dict[str, Any], classes: list[str]) -> str:
    import numpy as np

    from bench.probe import targets

    labels = [it.label for sp in splits.values() for it in sp.items]
    n = len(classes)
    y = targets(labels, n, t.kind)
    if t.kind == "multiclass":
        perfect = np.eye(n, dtype=np.float32)[y] * 10.0
    else:
        perfect = y.astype(np.float32) * 10.0 - 5.0
    constant = np.zeros((len(labels), n), dtype=np.float32)
    results = {}
    for what, scores in (("perfect", perfect), ("constant", constant)):
        out = t.score(y, scores)
        if not isinstance(out, dict):
            raise _Fail(f"score() returned {type(out).__name__}, expected a dict of metric name -> float",
                        "return {name: value} for every name in metrics")
        missing = [m for m in t.metrics if m not in out]
        if missing:
            raise _Fail(f"score() of a {what} prediction lacks metric(s) {missing} (it returned {sorted(out)})",
                        "return every name listed in the task's metrics")
        bad = {k: v for k, v in out.items() if not isinstance(v, (int, float, np.floating)) or not math.isfinite(v)}
        if bad:
            raise _Fail(f"score() of a {what} prediction returned non-finite or non-number values {bad}",
                        "return plain floats (float(x)); a metric undefined on this data should leave out the "
                        "classes it cannot score")
        results[what] = {k: float(v) for k, v in out.items()}
    p, c = results["perfect"][t.primary_metric], results["constant"][t.primary_metric]
    if not p > c:
        raise _Fail(f"primary metric {t.primary_metric!r}: a perfect prediction scores {p:.4g}, a constant one "
                    f"{c:.4g}; the perfect one must score higher",
                    "higher must be better (the leaderboard ranks by it); check the argument order (y_true, scores)")
    return f"{t.primary_metric}: perfect {p:.3g}, constant {c:.3g}; all {len(t.metrics)} metrics finite"


# -- the command line's view: names to targets ------------------------------------------------------


def resolve_names(names: list[str]) -> list[tuple[str, str]]:
    """``(kind, name)`` for each encoder, task or plugin (entry-point) name; unknown names raise.

    A plugin name stands for everything it registers (``ssl_encoders`` -> its
    four encoders); a name that is both an encoder and a task is both.
    """
    from bench import plugins
    from bench.errors import UnknownNameError

    encoders, tasks = plugins.encoders(), plugins.tasks()
    out: list[tuple[str, str]] = []
    for name in names:
        found = [("encoder", name)] if name in encoders.entries else []
        found += [("task", name)] if name in tasks.entries else []
        if not found:
            found = [(kind, n) for kind, reg in (("encoder", encoders), ("task", tasks))
                     for n in reg.names() if reg.entries[n].plugin.name == name]
        if not found:
            import difflib

            known = encoders.names() + tasks.names()
            close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
            hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
            raise UnknownNameError(f"{name!r} is no encoder, task or plugin.{hint} Encoders: "
                                   f"{', '.join(encoders.names())}; tasks: {', '.join(tasks.names())} (`bench list`).")
        out.extend(f for f in found if f not in out)
    return out


def options_for(name: str, options: dict[str, Any]) -> dict[str, Any]:
    """The options of ``name``: unscoped ``KEY`` entries, then ``NAME:KEY`` entries (which win)."""
    out = {k: v for k, v in options.items() if ":" not in k}
    out.update({k.split(":", 1)[1]: v for k, v in options.items() if ":" in k and k.split(":", 1)[0] == name})
    return out


# -- helpers for pytest ------------------------------------------------------------------------------


def assert_encoder_ok(encoder: Any, options: dict[str, Any] | None = None, **kwargs: Any) -> Report:
    """:func:`check_encoder`, then raise :class:`ConformanceError` on any failure; returns the report."""
    report = check_encoder(encoder, options, **kwargs)
    report.assert_ok()
    return report


def assert_task_ok(task: Any, settings: dict[str, Any] | None = None, **kwargs: Any) -> Report:
    """:func:`check_task`, then raise :class:`ConformanceError` on any failure; returns the report."""
    report = check_task(task, settings, **kwargs)
    report.assert_ok()
    return report
