"""Test scaffolding for the ComfyUI tiers."""

from __future__ import annotations

import contextlib

import pytest


@contextlib.contextmanager
def model_folder(kind: str, path):
    """``path`` is one of ComfyUI's folders of ``kind`` (checkpoints, loras...) until the block ends."""
    import folder_paths

    with pytest.MonkeyPatch.context() as mp:
        paths, exts = folder_paths.folder_names_and_paths[kind]
        mp.setitem(folder_paths.folder_names_and_paths, kind, ([str(path), *paths], exts))
        mp.delitem(folder_paths.filename_list_cache, kind, raising=False)
        yield path
