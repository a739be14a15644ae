"""The encoder conformance checks (:func:`check_encoder`)."""

from __future__ import annotations

import json
import math
import tempfile
import time
from pathlib import Path
from typing import Any, Callable


from bench.testing.report import (BATCH_SIZES, INFO, SKIP, Check, Report, _Fail, _import_without_torch,
                                  _Run, _subject)


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
        want = enc.output_shape(b)
        if tuple(out.shape) != want:
            hint = (" (a squeeze() dropped the batch axis?)" if b == 1 and out.dim() == len(want) - 1 else "")
            shape = "[B, dim]" if len(want) == 2 else "[B, layers, dim]"
            raise _Fail(f"embed() of a batch of {b} windows returned shape {tuple(out.shape)}, expected "
                        f"{list(want)}{hint}",
                        f"return {shape} for every batch size B, 1 included; pool over time inside embed() and "
                        "make `dim` the size of what is returned")
        if not out.is_floating_point():
            raise _Fail(f"embed() returned dtype {out.dtype}, expected a floating-point tensor (float32)",
                        "return float32 embeddings (.float())")
    shape = f"[B, {enc.dim}]" if enc.layers == 1 else f"[B, {enc.layers}, {enc.dim}]"
    return f"{shape} {out.dtype} for B in {list(batch_sizes)}"


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
        rows = (alone.float() - batched.float()).abs().reshape(len(x), -1).amax(dim=1)
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
    from bench.weights import load_checkpoint, save_checkpoint, weights_hash

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
