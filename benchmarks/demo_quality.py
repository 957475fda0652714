"""The demo's quality figures: what the trained demo model makes through the shipped causal workflows.

    python benchmarks/demo_quality.py            # table to stdout; frames to docs/demo-frames.png
    python benchmarks/demo_quality.py --readme   # and the table into README.md (between its demo-quality marks)

Starts a local ComfyUI (COMFYUI_PATH) with the demo models (``tempo.py demo``'s files), runs the demo's
scenes (demo/scenes.py: text to video, a 30-second rolling video, a timeline switch, video to video at
strength 0.5, the same video through TAEHV and the Wan VAE), measures their MP4s against the demo
world's own motion, prints a Markdown table (the README's) and writes a strip of frames.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import tempo  # noqa: E402

tempo.load_pack()

from tempo_pack.client import ComfyServer  # noqa: E402
from tempo_pack.client.local import PACK_ROOT, LocalComfyUI, find_comfyui  # noqa: E402
from tempo_pack.demo import quality, scenes  # noqa: E402
from tempo_pack.demo import run as demo_run  # noqa: E402
from tempo_pack.factory import checkpoints  # noqa: E402

FRAMES_PNG = os.path.join(PACK_ROOT, "docs", "demo-frames.png")
README = os.path.join(PACK_ROOT, "README.md")
MARK, END = "<!-- demo-quality: python benchmarks/demo_quality.py --readme -->", "<!-- /demo-quality -->"


def write_readme(table: str, path: str = README):
    with open(path) as f:
        text = f.read()
    if MARK not in text or END not in text:
        raise SystemExit(f"{path} has no {MARK} ... {END} block to write the table into")
    head, rest = text.split(MARK, 1)
    with open(path, "w") as f:
        f.write(head + MARK + "\n" + table + "\n" + END + rest.split(END, 1)[1])


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--comfyui", default=None)
    p.add_argument("--frames", default=FRAMES_PNG, help="where to write the strip of frames")
    p.add_argument("--readme", action="store_true", help="write the table into README.md")
    args = p.parse_args()
    comfyui = args.comfyui or find_comfyui()
    demo_run.ensure_demo_models(demo_run.DEMO_MODELS, comfyui, log=lambda m: print(m, file=sys.stderr))
    t0 = time.monotonic()
    with LocalComfyUI(comfyui, models=demo_run.DEMO_MODELS, extra_nodes=[demo_run.DEMO_NODES]) as local, \
            tempfile.TemporaryDirectory() as tmp:
        server = ComfyServer(local.url)
        server.upload_image(demo_run.EXAMPLE_VIDEO, checkpoints.EXAMPLE_VIDEO)
        out = lambda name: os.path.join(tmp, name)  # noqa: E731
        t2v = scenes.text_to_video(server, out("t2v"), "red square moving right", length=45)
        roll = scenes.rolling(server, out("roll"), "red square moving right", seconds=30)
        switched = scenes.timeline(server, out("switch"), "red square moving right", "blue circle moving right", 2)
        v2v = scenes.video_to_video(server, out("v2v"), "yellow circle moving left", strength=0.5)
        fast = scenes.text_to_video(server, out("taehv"), length=9, decoder=scenes.TAEHV)
        full = scenes.text_to_video(server, out("vae"), length=9, decoder=scenes.WAN_VAE)
        local.cleanup()
    source = scenes.truth([(0, checkpoints.EXAMPLE_VIDEO_PROMPT)], 33)
    m, d = scenes.motion(t2v, "red square moving right"), scenes.drift(roll, "red")
    rows = [
        ("'red square moving right': motion a latent frame (world: 8, 0)",
         f"{m['step'][0]:.1f}, {m['step'][1]:.1f} px"),
        ("Largest step error: at a block seam / inside a block", f"{m['seam_error']:.1f} / {m['inside_error']:.1f} px"),
        ("30 s rolling: colour error, first / last 2 s", f"{d['color_start']:.3f} / {d['color_end']:.3f}"),
        ("30 s rolling: shape area, first / last 2 s (world: 576)",
         f"{d['area_start']:.0f} / {d['area_end']:.0f} px"),
        ("30 s rolling: motion in the last 2 s", f"{d['step_end'][0]:.1f}, {d['step_end'][1]:.1f} px"),
        ("Timeline switch to blue circle: blocks late",
         str(scenes.switch_latency(switched, "blue", 2))),
        ("Video to video at 0.5: farthest from the input's path",
         f"{float(scenes.path_distance(v2v, source).max()):.1f} px"),
        ("TAEHV vs Wan VAE: mean pixel difference / path distance",
         f"{float((fast - full).abs().mean()):.4f} / {float(scenes.path_distance(fast, full).max()):.2f} px"),
    ]
    seconds = time.monotonic() - t0
    table = "\n".join(["| Demo model, shipped workflows | Value |", "|---|---|",
                        *(f"| {name} | {value} |" for name, value in rows)])
    print(f"Demo quality ({seconds:.0f} s; {comfyui})\n\n{table}")
    if args.readme:
        write_readme(table)
        print(f"wrote the table into {README}")
    colours = quality.colors_by_block(switched, scenes.LATENT_PER_BLOCK)
    print(f"\nswitch colours by block: {colours}")
    img = scenes.frame_strip([("text to video\nred square moving right", t2v),
                 ("timeline: red square, then\nblue circle from block 2", switched),
                 ("video to video 0.5\ninput: green circle left\nprompt: yellow circle left", v2v),
                 ("30 s rolling, last 4 s\nred square moving right", roll[-64:])])
    os.makedirs(os.path.dirname(os.path.abspath(args.frames)), exist_ok=True)
    img.save(args.frames)
    print(f"wrote {args.frames}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
