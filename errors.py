"""Tempo's error family: one base type for every problem the pack reports on purpose.

Plain Python (no ComfyUI import), used by the pure core, the nodes and the batch client alike.
A ``TempoError`` means the input can be fixed by the user; its message names the problem and
the fix. It is a ``ValueError``, so ComfyUI reports it as bad input, never as a crash.
"""


class TempoError(ValueError):
    """A problem the user can fix; the message names it and the fix.

    ComfyUI names a failed node's exception by module and class. A custom node's modules are
    named after the folder it was loaded from (``/path/to/custom_nodes/ComfyUI-Tempo.loaders...``),
    so every Tempo error reports the short module ``tempo`` instead: the editor then shows
    ``tempo.CheckpointError``, not a filesystem path.
    """

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        cls.__module__ = "tempo"


TempoError.__module__ = "tempo"
