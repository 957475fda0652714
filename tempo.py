#!/usr/bin/env python3
"""Tempo command line: batch-queue ComfyUI workflows, or run the demo.

    python tempo.py demo                       # tiny demo checkpoints, local ComfyUI, one workflow
    python tempo.py run workflows/x.json --seeds 1-4 -o out/
    python tempo.py --help

The pack folder's name may contain dashes (``ComfyUI-Tempo``), so this script loads the
pack under a fixed package name and runs its client.
"""

import importlib.util
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def load_pack(name: str = "tempo_pack"):
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, os.path.join(HERE, "__init__.py"),
                                                  submodule_search_locations=[HERE])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


if __name__ == "__main__":
    if sys.path and os.path.abspath(sys.path[0] or ".") == HERE:
        sys.path.pop(0)  # keep the pack's subfolders (nodes/, ...) from shadowing top-level modules
    load_pack()
    from tempo_pack.client.cli import main

    sys.exit(main())
