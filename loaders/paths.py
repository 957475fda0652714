"""Names that come from a workflow (model files, folders, saved conditionings, output prefixes)
are untrusted: they may only name something inside the folders ComfyUI assigns.

Plain Python. :func:`name_problem` says why a name is never valid (absolute paths,
``..`` segments, control characters, over-long names); :func:`is_inside` tells whether a path,
symlinks resolved, stays under one of the allowed roots. Callers refuse with one message whatever
the reason, so a refusal never tells the sender whether a path exists.
"""

from __future__ import annotations

import os
import re

MAX_NAME_CHARS = 512
_DRIVE = re.compile(r"^[A-Za-z]:")


def name_problem(name) -> str | None:
    """Why ``name`` cannot be a name relative to a folder, or None when its form is fine."""
    if not isinstance(name, str) or not name.strip():
        return "it is empty"
    if len(name) > MAX_NAME_CHARS:
        return f"it is longer than {MAX_NAME_CHARS} characters"
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        return "it contains control characters"
    if name.startswith(("/", "\\")) or _DRIVE.match(name) or os.path.isabs(name):
        return "it is an absolute path"
    if ".." in re.split(r"[\\/]", name):
        return "it climbs out of its folder ('..')"
    return None


def shown(name, limit: int = 80) -> str:
    """A name as a message may print it: control characters escaped, cut to ``limit``."""
    text = repr(name)[1:-1] if isinstance(name, str) else repr(name)
    return text if len(text) <= limit else text[:limit] + "..."


def is_inside(path: str, roots) -> bool:
    """True when ``path``, every symlink resolved, is one of ``roots`` or lies below one."""
    real = os.path.realpath(path)
    for root in roots:
        r = os.path.realpath(root)
        try:
            if os.path.commonpath([real, r]) == r:
                return True
        except ValueError:  # different drives
            continue
    return False
