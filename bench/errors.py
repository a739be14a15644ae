"""Errors a user can hit. The CLI prints their message (no traceback) and exits non-zero."""


class BenchError(Exception):
    """An error caused by input, configuration or a plugin, with a message that says what to do."""

    exit_code = 2


class PluginError(BenchError):
    """A plugin failed to load, registered something twice, or broke its contract."""


class UnknownNameError(BenchError):
    """An encoder or task name that no plugin registered."""


class DataError(BenchError):
    """A data root or dataset is missing, wrong, or unreadable as a whole."""


class EncoderContractError(PluginError):
    """An encoder returned something the contract does not allow (wrong shape, NaN, ...)."""
