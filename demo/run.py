"""``python tempo.py demo``: tiny demo checkpoints, a local ComfyUI, a shipped workflow, outputs.

The demo checkpoints are real files in the released formats, under the released names, loaded by
the same nodes as real models. The causal video model, its Wan VAE and its TAEHV make the demo world's
videos (demo/world.py: coloured shapes gliding over a dark ground, named by a short prompt): the
model was trained by ``tempo.py train-demo`` (factory/demo_train.py), the decoders set by hand to its codec
(factory/demo_codec.py). The one-step image and SVD checkpoints are random (noise-like pictures):
they show the path working. Nothing is downloaded.
"""

from __future__ import annotations

import os
import sys
import time

from ..client.local import PACK_ROOT, LocalComfyUI, find_comfyui, require_comfyui
from ..factory import checkpoints
from ..samplers import timeline
from . import swap, world

DEMO_MODELS = os.path.join(PACK_ROOT, "demo_models")
DEMO_NODES = os.path.join(PACK_ROOT, "demo", "comfy_nodes")  # the demo text encoder, for the demo's ComfyUI only
DEMO_OUTPUT = os.path.abspath("demo_output")
EXAMPLE_IMAGE = os.path.join(DEMO_MODELS, checkpoints.EXAMPLE_IMAGE)
EXAMPLE_VIDEO = os.path.join(DEMO_MODELS, checkpoints.EXAMPLE_VIDEO)

# The demo's causal videos: the demo world's size (demo/world.py, what its model was trained on) and prompts in
# its words (a colour, a shape, a direction). Workflow 05 decodes with the Wan VAE as shipped; the others with
# TAEHV (the same pictures, tests/test_demo_quality.py, in a fraction of the time on a CPU).
WORLD_SIZE = {"TempoCausalVideoSampler.width": world.WIDTH, "TempoCausalVideoSampler.height": world.HEIGHT}
TAEHV = checkpoints.TAEHV_DEMO  # the MP4 node's decoder choice that names the demo's taew2_1 file
_FAST = {**WORLD_SIZE, "TempoCausalVideoSaveMP4.decoder": TAEHV}

# (workflow file, overrides) run by the demo, in order.
DEMO_WORKFLOWS = [
    ("01 One-step text to image.json", {}),
    ("03 One-step ControlNet from edges.json", {"EmptyLatentImage.width": 256, "EmptyLatentImage.height": 256}),
    ("05 Causal text to video, streamed to mp4.json", {**WORLD_SIZE, "TempoCausalVideoSampler.length": 33,
                                                      "CLIPTextEncode.text": "red square moving right"}),
    ("09 Causal video that follows a prompt timeline.json", {
        **_FAST, "TempoCausalVideoSampler.length": 57,
        "TempoPromptTimeline.text": "0: red square moving right\n1.5: blue circle moving down"}),
    ("10 Causal video to video restyle.json", {
        **_FAST, "ImageScale.width": world.WIDTH, "ImageScale.height": world.HEIGHT,
        "TempoCausalVideoSampler.length": 33, "TempoCausalVideoSampler.strength": 0.5,
        "CLIPTextEncode.text": "yellow circle moving left"}),
    ("19 Causal real-time stream, fast settings.json", {**_FAST, "TempoCausalVideoSampler.length": 81,
                                                        "CLIPTextEncode.text": "blue square moving up"}),
    ("12 SVD image to video in one step.json", {"SVD_img2vid_Conditioning.width": 128,
                                                "SVD_img2vid_Conditioning.height": 128,
                                                "SVD_img2vid_Conditioning.video_frames": 8}),
]


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return None


def ensure_demo_models(models_dir: str = DEMO_MODELS, comfyui: str | None = None, log=print) -> str:
    """Write the tiny demo checkpoints (factory.checkpoints.DEMO_FILES) into ``models_dir/<folder>/``
    unless they are there."""
    checkpoints.import_comfy(comfyui)
    stamp = os.path.join(models_dir, "FACTORY_VERSION")
    if os.path.isdir(models_dir) and _read(stamp) != checkpoints.FACTORY_VERSION:
        log(f"demo models in {models_dir} are from another factory version: rebuilding them")
        import shutil

        shutil.rmtree(models_dir)
    for folder, name, make in checkpoints.DEMO_FILES:
        path = os.path.join(models_dir, folder, name)
        if not os.path.isfile(path):
            log(f"making demo checkpoint {os.path.relpath(path)}")
            root, ext = os.path.splitext(path)
            tmp = root + ".partial" + ext
            make(tmp)
            os.replace(tmp, path)
    with open(stamp, "w") as f:
        f.write(checkpoints.FACTORY_VERSION)
    return models_dir


def run_workflow(server, name: str, overrides: dict, out_dir: str, log=print, progress: bool = True) -> list[str]:
    """Queue the shipped workflow ``name`` with ``overrides`` (NODE.INPUT values) on ``server``, the Wan
    text encoder replaced by the demo's stand-in; returns the paths of what it wrote into ``out_dir``."""
    from .. import client

    api = server.workflow_as_api(os.path.join(PACK_ROOT, "workflows", name))
    if any(v["class_type"] == "CLIPLoader" for v in api.values()):
        log(f"{name}: the Wan text encoder (umT5-XXL, 5.7B) is replaced by the demo's stand-in encoder; "
            "the rest of the graph runs as shipped")
        api = swap.use_demo_text_encoder(api)
    results = client.run_batch(server, api, client.build_jobs(api, sets=overrides), out_dir, progress=progress,
                               existing="replace", log=log)
    return [os.path.join(out_dir, f) for r in results for f in r.files]


def made_by_the_trained_model(overrides: dict) -> bool:
    """Whether a demo run (its overrides) is a causal video, made by the trained demo model (the one-step and
    SVD demo files are random: their pictures say nothing)."""
    return any(key.startswith("TempoCausalVideoSampler.") for key in overrides)


def caption(overrides: dict) -> str:
    """What a demo run of a workflow asks for, in the world's words (its prompt, or its timeline)."""
    if "TempoPromptTimeline.text" in overrides:
        return ", then ".join(line.prompt for line in timeline.parse_lines(overrides["TempoPromptTimeline.text"]))
    text = overrides.get("CLIPTextEncode.text", "")
    if "TempoCausalVideoSampler.strength" in overrides:
        text = f"{checkpoints.EXAMPLE_VIDEO_PROMPT} restyled: {text}"
    return text


def add_command(sub):
    """``demo`` on tempo.py's command line."""
    demo = sub.add_parser("demo", help="run a shipped workflow end to end on tiny built-in demo checkpoints")
    demo.add_argument("--server", default=None,
                      help="use this running ComfyUI (it must see the demo models) instead of starting one")
    demo.add_argument("--header", action="append", default=[], metavar="'NAME: VALUE'",
                      help="extra HTTP header for --server (repeatable; $COMFY_AUTH sets Authorization)")
    demo.add_argument("--output", "-o", default=None, help="output folder (default: ./demo_output)")
    demo.add_argument("--comfyui", default=None, help="ComfyUI folder (default: $COMFYUI_PATH or /opt/ComfyUI)")
    demo.set_defaults(func=run_demo)


def run_demo(args) -> int:
    from .. import client

    if args.server is None:
        comfyui = require_comfyui(args.comfyui, "pass --comfyui, or --server URL of a running ComfyUI that has "
                                                "the demo models")
    else:
        comfyui = args.comfyui or find_comfyui()
    out_root = os.path.abspath(args.output or DEMO_OUTPUT)
    headers = client.parse_headers(args.header)
    t0 = time.monotonic()
    ensure_demo_models(DEMO_MODELS, comfyui, log=lambda m: print(m, file=sys.stderr))
    server_ctx = None
    if args.server is None:
        print(f"starting ComfyUI from {comfyui} on the CPU (about a minute)...", file=sys.stderr)
        server_ctx = LocalComfyUI(comfyui, models=DEMO_MODELS, extra_nodes=[DEMO_NODES])
        server_ctx.__enter__()
        url = server_ctx.url
    else:
        url = args.server
    try:
        server = client.ComfyServer(url, headers)
        server.upload_image(EXAMPLE_IMAGE, checkpoints.EXAMPLE_IMAGE)
        server.upload_image(EXAMPLE_VIDEO, checkpoints.EXAMPLE_VIDEO)
        for name, overrides in DEMO_WORKFLOWS:
            out_dir = os.path.join(out_root, os.path.splitext(name)[0])
            files = run_workflow(server, name, overrides, out_dir, log=lambda m: print(m, file=sys.stderr))
            print(f"{name}: {len(files)} file(s) in {out_dir}")
            for f in files:
                print(f"  {f}")
    finally:
        if server_ctx is not None:
            server_ctx.__exit__(None, None, None)
            server_ctx.cleanup()
    print(f"demo finished in {time.monotonic() - t0:.0f} s; outputs are in {out_root}")
    return 0
