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


def _module_of(path: str) -> str:
    rel = os.path.relpath(path, PACK_ROOT)[:-3].replace(os.sep, ".")
    return rel[:-len(".__init__")] if rel.endswith(".__init__") else ("" if rel == "__init__" else rel)


def pack_imports() -> dict:
    """{module: modules of the pack it imports}, every import statement counted (inside functions too), the
    relative ones resolved; tests, benchmarks and scripts are not the pack."""
    graph = {}
    for d, dirs, fs in os.walk(PACK_ROOT):
        dirs[:] = [x for x in dirs if not x.startswith((".", "__")) and x not in ("tests", "benchmarks", "scripts",
                                                                                    "demo_models", "workflows")]
        for f in fs:
            if not f.endswith(".py") or f == "tempo.py":
                continue
            path = os.path.join(d, f)
            mod = _module_of(path)
            package = mod if f == "__init__.py" else mod.rpartition(".")[0]
            targets = set()
            for node in ast.walk(ast.parse(open(path, encoding="utf-8").read(), path)):
                if isinstance(node, ast.ImportFrom) and node.level:
                    base = package.split(".") if package else []
                    base = base[:len(base) - (node.level - 1)] if node.level > 1 else base
                    stem = ".".join(base + ([node.module] if node.module else []))
                    named = {f"{stem}.{a.name}".lstrip(".") for a in node.names}  # submodules, where they are
                    targets |= named if node.module is None else named | {stem}
            graph[mod] = targets
    known = set(graph)
    return {m: {t for t in ts if t in known and t != m} for m, ts in graph.items()}


def test_no_import_circle_anywhere():
    graph = pack_imports()
    assert graph["nodes.causal_video"] and graph["factory.workflows"]  # the walk sees the pack's imports
    circles, state = [], {}

    def visit(m, path):
        state[m] = 1
        for t in sorted(graph[m]):
            if state.get(t) == 1:
                circles.append(path[path.index(t):] + [t])
            elif t not in state:
                visit(t, path + [t])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert circles == [], circles


def test_only_nodes_and_factory_import_comfyui():
    """What docs/development.md says of the layout: the node adapters import ComfyUI, and so does the factory
    (it builds files with ComfyUI's classes); nothing else (the demo starts ComfyUI as a separate process)."""
    found = set()
    for d, dirs, fs in os.walk(PACK_ROOT):
        dirs[:] = [x for x in dirs if not x.startswith((".", "__")) and x not in ("tests", "benchmarks")]
        for f in fs:
            if f.endswith(".py") and any(m in COMFY_MODULES for m in imported_roots(os.path.join(d, f))):
                found.add(os.path.relpath(d, PACK_ROOT).split(os.sep)[0])
    assert found == {"nodes", "factory"}, found
