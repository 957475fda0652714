"""Test scaffolding for the ComfyUI tiers."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys

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


def comfyui_gguf(comfyui: str):
    """city96/ComfyUI-GGUF imported as a package (its folder: $COMFYUI_GGUF_PATH, /opt/ComfyUI-GGUF or
    ComfyUI's custom_nodes/ComfyUI-GGUF), or a loud skip: it is not on the package registry."""
    if "comfyui_gguf" in sys.modules:
        return sys.modules["comfyui_gguf"]
    places = [os.environ.get("COMFYUI_GGUF_PATH", ""), "/opt/ComfyUI-GGUF",
              os.path.join(comfyui, "custom_nodes", "ComfyUI-GGUF")]
    folder = next((p for p in places if p and os.path.isfile(os.path.join(p, "loader.py"))), None)
    if folder is None:
        pytest.skip("ComfyUI-GGUF NOT FOUND (set COMFYUI_GGUF_PATH to a checkout of city96/ComfyUI-GGUF): "
                    "the GGUF test was skipped")
    pytest.importorskip("gguf", reason="the gguf package (requirements-dev.txt) is needed to write the GGUF file")
    spec = importlib.util.spec_from_file_location("comfyui_gguf", os.path.join(folder, "__init__.py"),
                                                  submodule_search_locations=[folder])
    module = importlib.util.module_from_spec(spec)
    sys.modules["comfyui_gguf"] = module
    spec.loader.exec_module(module)
    return module
