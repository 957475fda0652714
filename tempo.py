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


def main(argv=None) -> int:
    """The one place that wires the command line: the client's run/convert, the demo, and the
    developers' workflow builder each add their own subcommand."""
    import argparse

    load_pack()
    from tempo_pack.client import cli
    from tempo_pack.demo import run as demo
    from tempo_pack.factory import demo_train, docs, workflows

    parser = argparse.ArgumentParser(prog="tempo.py", description="Tempo: batch client and demo for ComfyUI",
                                     epilog=cli.EPILOG)
    sub = parser.add_subparsers(dest="command", required=True)
    cli.add_commands(sub)
    demo.add_command(sub)
    demo_train.add_command(sub)
    workflows.add_command(sub)
    docs.add_command(sub)
    args = parser.parse_args(argv)
    return cli.main(args.func, args)


if __name__ == "__main__":
    if sys.path and os.path.abspath(sys.path[0] or ".") == HERE:
        sys.path.pop(0)  # keep the pack's subfolders (nodes/, ...) from shadowing top-level modules
    sys.exit(main())
