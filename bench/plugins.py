"""The one plugin manager of bench, plugin loading, and the name registries.

Plugins come from the ``bench`` entry-point group only, the built-ins included
(see ``[project.entry-points.bench]`` in pyproject.toml). Loading is lazy and
idempotent. A plugin that fails to import, or whose hook raises, is reported
with its entry point, distribution and version and then skipped, so the rest of
bench still works; with ``strict=True``, ``--strict-plugins`` or
``BENCH_STRICT_PLUGINS=1`` the failure is fatal instead.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import os
import sys
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable

import pluggy

from bench import hookspecs
from bench.errors import PluginError, UnknownNameError

ENTRY_POINT_GROUP = "bench"
STRICT_ENV = "BENCH_STRICT_PLUGINS"

pm = pluggy.PluginManager("bench")
pm.add_hookspecs(hookspecs)


@dataclass
class PluginInfo:
    """Where a plugin came from: its entry point and distribution."""

    name: str
    module: str = ""
    distribution: str = ""
    version: str = ""

    def describe(self) -> str:
        dist = f"{self.distribution} {self.version}".strip() or "not installed (registered in-process)"
        return f"entry point {self.name!r} ({self.module or '?'}) from {dist}"


@dataclass
class PluginFailure:
    """A plugin that could not be loaded or whose hook raised."""

    plugin: PluginInfo
    stage: str
    error: str
    traceback: str = ""

    def message(self) -> str:
        return (
            f"plugin {self.plugin.describe()} failed to {self.stage}: {self.error}\n"
            f"  It was skipped; everything else still works. Fix or uninstall "
            f"{self.plugin.distribution or 'the plugin'}, or set {STRICT_ENV}=1 to make this fatal."
        )


@dataclass
class Entry:
    """One registered encoder or task."""

    kind: str
    name: str
    target: Any
    description: str
    plugin: PluginInfo
    #: "" (part of ``all``) or a group name such as ``extended``: then left out of ``all`` and selected
    #: by the group's name (``--tasks extended``), so ``all`` keeps its cost as tasks are added
    group: str = ""

    def load(self) -> Callable[..., Any]:
        """Resolve the factory, importing a lazy ``"module:attr"`` target now."""
        if not isinstance(self.target, str):
            return self.target
        module_name, _, attr = self.target.partition(":")
        try:
            obj = importlib.import_module(module_name)
            for part in attr.split(".") if attr else []:
                obj = getattr(obj, part)
        except Exception as exc:  # a broken plugin must not take bench down
            raise PluginError(
                f"{self.kind} {self.name!r} from plugin {self.plugin.describe()} could not be "
                f"imported from {self.target!r}: {type(exc).__name__}: {exc}"
            ) from exc
        return obj

    def create(self, **options: Any) -> Any:
        factory = self.load()
        try:
            return factory(**options)
        except PluginError:
            raise
        except TypeError as exc:
            raise PluginError(f"{self.kind} {self.name!r}: bad options {options}: {exc}") from exc


@dataclass
class Registry:
    """Names to entries for one kind of thing (encoders or tasks)."""

    kind: str
    entries: dict[str, Entry] = field(default_factory=dict)

    def add(self, name: str, target: Any, description: str, plugin: PluginInfo, group: str = "") -> None:
        if not isinstance(name, str) or not name or name != name.strip():
            raise PluginError(f"plugin {plugin.describe()} registered a {self.kind} with an invalid name {name!r}")
        if name in self.entries:
            other = self.entries[name].plugin
            raise PluginError(
                f"duplicate {self.kind} name {name!r}: registered by plugin {other.describe()} "
                f"and by plugin {plugin.describe()}. Uninstall one of them or ask its author to rename."
            )
        if not isinstance(group, str) or group in ("all",) or group != group.strip():
            raise PluginError(f"plugin {plugin.describe()} registered {self.kind} {name!r} with an invalid group "
                              f"{group!r} (use '' or a word such as 'extended')")
        self.entries[name] = Entry(self.kind, name, target, description, plugin, group)

    def names(self) -> list[str]:
        return sorted(self.entries)

    def get(self, name: str) -> Entry:
        if name in self.entries:
            return self.entries[name]
        close = difflib.get_close_matches(name, self.names(), n=3, cutoff=0.5)
        hint = f" Did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
        available = ", ".join(self.names()) or "(none)"
        raise UnknownNameError(f"unknown {self.kind} {name!r}.{hint} Available {self.kind}s: {available}.")

    def resolve(self, spec: str) -> list[str]:
        """Turn ``"all"``, a group name or ``"a,b"`` into a list of known names, each once.

        ``all`` is every name registered without a group (``all,all`` and ``all,gtzan`` are those); a
        group's name (``extended``) stands for its members and may be combined (``all,extended``);
        unknown names raise."""
        names = [n.strip() for n in spec.split(",") if n.strip()]
        if not names:
            raise UnknownNameError(f"no {self.kind} given. Available {self.kind}s: {', '.join(self.names())}.")
        groups = self.groups()
        out: list[str] = []
        for n in names:
            if n == "all":
                out += [k for k in self.names() if not self.entries[k].group]
            elif n in groups and n not in self.entries:
                out += groups[n]
            else:
                self.get(n)
                out.append(n)
        return list(dict.fromkeys(out))

    def groups(self) -> dict[str, list[str]]:
        """Group name -> its members (sorted); names in no group are not listed."""
        out: dict[str, list[str]] = {}
        for k in self.names():
            if self.entries[k].group:
                out.setdefault(self.entries[k].group, []).append(k)
        return out


@dataclass
class _State:
    loaded: bool = False
    plugins: dict[str, PluginInfo] = field(default_factory=dict)
    failures: list[PluginFailure] = field(default_factory=list)
    encoders: Registry | None = None
    tasks: Registry | None = None


_state = _State()


def strict_from_env() -> bool:
    return os.environ.get(STRICT_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def _fail(failure: PluginFailure, strict: bool) -> None:
    _state.failures.append(failure)
    if strict:
        raise PluginError(failure.message().split("\n")[0] + f" (strict mode: {STRICT_ENV} / --strict-plugins)")
    print(f"warning: {failure.message()}", file=sys.stderr)


def load_plugins(strict: bool | None = None) -> None:
    """Import every ``bench`` entry point once; report and skip the broken ones."""
    if _state.loaded:
        return
    strict = strict_from_env() if strict is None else strict
    _state.loaded = True
    for ep in sorted(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        dist = getattr(ep, "dist", None)
        info = PluginInfo(
            name=ep.name,
            module=ep.value,
            distribution=dist.metadata["Name"] if dist is not None else "",
            version=dist.version if dist is not None else "",
        )
        if ep.name in _state.plugins or pm.get_plugin(ep.name) is not None:
            continue
        try:
            module = ep.load()
            pm.register(module, name=ep.name)
        except Exception as exc:
            _fail(PluginFailure(info, "import", f"{type(exc).__name__}: {exc}", traceback.format_exc()), strict)
            continue
        problem = _hook_problem(module)
        if problem:  # a misspelled hook would silently register nothing: report it like a failed import
            pm.unregister(name=ep.name)
            _fail(PluginFailure(info, "register", problem), strict)
            continue
        _state.plugins[ep.name] = info


def _hook_problem(plugin: object) -> str:
    """Why a plugin's hooks are unusable (a name no hookspec has, or no hook at all), or ""."""
    known = sorted(name for name in dir(hookspecs) if name.startswith("register_"))
    callers = pm.get_hookcallers(plugin) or []
    unknown = sorted(hc.name for hc in callers if hc.spec is None)
    if unknown:
        hints = []
        for name in unknown:
            close = difflib.get_close_matches(name, known, n=1)
            hints.append(f"{name!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
        return (f"defines hook(s) {', '.join(hints)} that bench does not have; bench's hooks: {', '.join(known)}. "
                "A misspelled hook registers nothing.")
    if not callers:
        return (f"defines no bench hook (functions decorated with @bench.hookimpl named one of: {', '.join(known)}); "
                "it registers nothing")
    return ""


def plugin_info(plugin: object) -> PluginInfo:
    name = pm.get_name(plugin) or repr(plugin)
    return _state.plugins.get(name) or PluginInfo(name=name, module=getattr(plugin, "__name__", ""))


def _collect(kind: str, hook_name: str, strict: bool) -> Registry:
    registry = Registry(kind)
    hook = getattr(pm.hook, hook_name)
    # Call each implementation on its own so that one plugin's exception is
    # attributed to it and does not stop the others from registering.
    # registration order (entry points by name, then in-process plugins): on a duplicate name the first one stays
    for impl in hook.get_hookimpls():
        info = plugin_info(impl.plugin)

        def register(name: str, target: Any, description: str = "", group: str = "",
                     _info: PluginInfo = info) -> None:
            try:
                registry.add(name, target, description, _info, group)
            except PluginError as exc:  # a duplicate or invalid name: this one is skipped, the others stay
                if strict:
                    raise
                _state.failures.append(PluginFailure(_info, f"register {kind} {name!r}", str(exc)))
                print(f"warning: {exc} The second registration was skipped; set {STRICT_ENV}=1 to make this "
                      "fatal.", file=sys.stderr)

        try:
            impl.function(**{arg: register for arg in impl.argnames})
        except PluginError:
            raise
        except Exception as exc:
            _fail(PluginFailure(info, f"run {hook_name}", f"{type(exc).__name__}: {exc}", traceback.format_exc()), strict)
    return registry


def encoders(strict: bool | None = None) -> Registry:
    """The encoder registry (loads plugins on first use)."""
    strict = strict_from_env() if strict is None else strict
    load_plugins(strict)
    if _state.encoders is None:
        _state.encoders = _collect("encoder", "register_encoders", strict)
    return _state.encoders


def tasks(strict: bool | None = None) -> Registry:
    """The task registry (loads plugins on first use)."""
    strict = strict_from_env() if strict is None else strict
    load_plugins(strict)
    if _state.tasks is None:
        _state.tasks = _collect("task", "register_tasks", strict)
    return _state.tasks


def failures() -> list[PluginFailure]:
    return list(_state.failures)


def reset() -> None:
    """Forget loaded plugins and registries (tests; a long-lived process that installed a plugin)."""
    global _state
    for name, _plugin in list(pm.list_name_plugin()):
        pm.unregister(name=name)
    _state = _State()


def registered_in_process() -> list[tuple[str, object]]:
    """Plugins registered with ``pm.register`` in this process rather than through an entry point.

    A worker process (``bench reproduce --jobs``) loads the entry points
    itself; these it gets from its parent (:func:`register_all`).
    """
    load_plugins()
    return [(name, plugin) for name, plugin in pm.list_name_plugin() if name not in _state.plugins]


def register_all(pairs: list[tuple[str, object]]) -> None:
    """Register ``(name, plugin)`` pairs not registered yet (in a worker, those of its parent)."""
    load_plugins()
    for name, plugin in pairs:
        if pm.get_plugin(name) is None:
            pm.register(plugin, name=name)
    invalidate()


def invalidate() -> None:
    """Rebuild the registries on next use (after ``pm.register`` of an in-process plugin)."""
    _state.encoders = None
    _state.tasks = None


def get_encoder(name: str, **options: Any):
    return encoders().get(name).create(**options)


def get_task(name: str, **options: Any):
    return tasks().get(name).create(**options)
