"""The pure core never imports ComfyUI (its adapters live in nodes/)."""

import ast
import os

from tempo_pack.client.local import PACK_ROOT

PURE = ["samplers", "models", "loaders", "video", "live", "client", "errors.py"]
COMFY_MODULES = {"comfy", "comfy_api", "comfy_extras", "comfy_execution", "folder_paths", "server", "execution",
                 "nodes", "node_helpers", "latent_preview"}


def imported_roots(path):
    tree = ast.parse(open(path, encoding="utf-8").read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            yield node.module.split(".")[0]


def test_pure_core_does_not_import_comfyui():
    found = []
    for entry in PURE:
        root = os.path.join(PACK_ROOT, entry)
        files = [root] if entry.endswith(".py") else [os.path.join(d, f) for d, _, fs in os.walk(root)
                                                      for f in fs if f.endswith(".py")]
        assert files, entry
        for f in files:
            found += [f"{os.path.relpath(f, PACK_ROOT)} imports {m}" for m in imported_roots(f) if m in COMFY_MODULES]
    assert found == []
