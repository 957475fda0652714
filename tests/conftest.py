"""Test tiers.

* unit: pure core and client, no ComfyUI.
* comfy: ComfyUI imported in this process (real model classes, samplers, nodes).
* server: a real ComfyUI started as a subprocess (``main.py --cpu``) with this checkout
  loaded as a custom node and model folders in a temporary directory, driven through HTTP.

ComfyUI is found through COMFYUI_PATH (default /opt/ComfyUI, or the folder above
custom_nodes/ when the pack sits there); without it the comfy and server tiers skip, and
say so loudly in the header and in every skip reason.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # test scaffolding modules live beside this file


def _load_launcher():
    """tempo.py (the command line) knows how to load the pack under a fixed package name."""
    spec = importlib.util.spec_from_file_location("tempo_launcher", os.path.join(ROOT, "tempo.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_load_launcher().load_pack()
from tempo_pack.client.local import LocalComfyUI, find_comfyui  # noqa: E402
from comfy_helpers import model_folder  # noqa: E402

COMFYUI = find_comfyui()
NO_COMFY = ("ComfyUI NOT FOUND (set COMFYUI_PATH to a ComfyUI checkout, e.g. /opt/ComfyUI): "
            "this test needs a real ComfyUI and was skipped")


def pytest_report_header(config):
    if COMFYUI:
        version = "?"
        try:
            with open(os.path.join(COMFYUI, "comfyui_version.py")) as f:
                version = f.read().split('"')[1]
        except (OSError, IndexError):
            pass
        return f"ComfyUI tier: {COMFYUI} (version {version})"
    return "ComfyUI tier: SKIPPED -- " + NO_COMFY


def pytest_collection_modifyitems(config, items):
    for item in items:
        if ("comfy" in item.keywords or "server" in item.keywords) and COMFYUI is None:
            item.add_marker(pytest.mark.skip(reason=NO_COMFY))


@pytest.fixture(scope="session")
def comfy():
    """ComfyUI's packages imported in this process, on the CPU."""
    if COMFYUI is None:
        pytest.skip(NO_COMFY)
    from tempo_pack.factory import checkpoints as factory

    return factory.import_comfy(COMFYUI)


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory, comfy):
    """A model tree for the server: the demo checkpoints plus the test-only files."""
    from tempo_pack.demo import run as demo_run

    demo_run.ensure_demo_models(demo_run.DEMO_MODELS, COMFYUI, log=lambda m: None)
    root = tmp_path_factory.mktemp("models")
    for folder in os.listdir(demo_run.DEMO_MODELS):
        src = os.path.join(demo_run.DEMO_MODELS, folder)
        if not os.path.isdir(src):
            continue
        os.makedirs(root / folder, exist_ok=True)
        for name in os.listdir(src):
            if ".partial" not in name:
                os.symlink(os.path.join(src, name), root / folder / name)
    return root


@pytest.fixture(scope="session")
def server(models_dir):
    """A real ComfyUI (subprocess, CPU, loopback) with this pack loaded."""
    from tempo_pack.demo import run as demo_run

    # models_dir links to the demo models; they are a model folder too, as links must stay in one
    with LocalComfyUI(COMFYUI, models=[str(models_dir), demo_run.DEMO_MODELS], extra_nodes=[demo_run.DEMO_NODES]) as local:
        yield local
    if not os.environ.get("TEMPO_KEEP_SERVER_LOG"):
        local.cleanup()


@pytest.fixture
def client(server):
    from tempo_pack.client import ComfyServer
    from tempo_pack.demo import run as demo_run

    c = ComfyServer(server.url)
    c.upload_image(demo_run.EXAMPLE_IMAGE, demo_run.checkpoints.EXAMPLE_IMAGE)
    c.upload_image(demo_run.EXAMPLE_VIDEO, demo_run.checkpoints.EXAMPLE_VIDEO)
    return c


@pytest.fixture
def add_model_folder(comfy):
    """add_model_folder(kind, path): a model folder for this test only."""
    with contextlib.ExitStack() as stack:
        yield lambda kind, path: stack.enter_context(model_folder(kind, path))
