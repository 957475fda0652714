"""Tempo's error family: one base type for every problem the pack reports on purpose.

Plain Python (no ComfyUI import), used by the pure core, the nodes and the batch client alike.
A ``TempoError`` means the input can be fixed by the user; its message names the problem and
the fix. It is a ``ValueError``, so ComfyUI reports it as bad input, never as a crash.
"""


class TempoError(ValueError):
    """A problem the user can fix; the message names it and the fix."""
