"""The plugin hooks of bench: markers and hook specifications, nothing else.

A plugin is a module with one or more functions decorated with
``@bench.hookimpl`` and named after a hook below, published in the ``bench``
entry-point group of its package::

    [project.entry-points.bench]
    my_plugin = "my_package.my_plugin"

Each hook receives a ``register`` callable; the plugin calls it once per thing
it provides and returns nothing. Keep the plugin module cheap to import: import
torch and other heavy libraries inside the factory, never at module level, so
``bench --help`` and ``bench list`` stay fast.
"""

import pluggy

hookspec = pluggy.HookspecMarker("bench")
hookimpl = pluggy.HookimplMarker("bench")


@hookspec
def register_encoders(register):
    """Register encoders.

    Call ``register(name, factory, description="")`` once per encoder:

    - ``name``: a unique lowercase name used on the command line
      (``bench run --encoder NAME``).
    - ``factory``: a class or function returning a :class:`bench.encoder.Encoder`
      when called with keyword options, or a lazy ``"module:attr"`` string
      naming one (the module is imported only when the encoder is used).
    - ``description``: one line shown by ``bench list``.
    """


@hookspec
def register_tasks(register):
    """Register tasks.

    Call ``register(name, factory, description="")`` once per task, where
    ``factory`` is a :class:`bench.task.Task` subclass, a function returning a
    Task instance, or a lazy ``"module:attr"`` string naming one.
    """
