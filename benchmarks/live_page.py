"""The live page: what watching costs the generator, and how long a finished block takes to show.

    python benchmarks/live_page.py              # CPU: the demo's tiny causal model, 64x48, 20 blocks

Starts a local ComfyUI (COMFYUI_PATH) with the demo models, runs the same causal job three times in
one go (nobody watching, a browser watching the live page, nobody watching again) and reports the
generation FPS of each (the watched run against the mean of the other two) and, from the page, the
time from a block's latents being done on the server to its first frame shown in the browser
(median and max; this includes the Wan VAE decode of the block, the JPEG encode and the transfer).
Needs the system Chromium and playwright (as the browser test does).
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import tempo  # noqa: E402

tempo.load_pack()
import requests  # noqa: E402

from tempo_pack.client import ComfyServer, workflow  # noqa: E402
from tempo_pack.client.local import PACK_ROOT, LocalComfyUI, find_comfyui  # noqa: E402
from tempo_pack.demo import run as demo_run  # noqa: E402
from tempo_pack.demo import swap
from tempo_pack.factory.checkpoints import WAN_PROMPT  # noqa: E402

BLOCKS, WIDTH, HEIGHT = 20, 64, 48


def job(client, tag):
    api = swap.use_saved_conditioning(workflow.to_api(workflow.load_workflow(
        os.path.join(PACK_ROOT, "workflows", "05 Causal text to video, streamed to mp4.json")), client.object_info()), WAN_PROMPT)
    for node in api.values():
        if node["class_type"] == "TempoCausalVideoSampler":
            node["inputs"].update(width=WIDTH, height=HEIGHT, length=1 + 4 * (3 * BLOCKS - 1), cache="preset")
        if node["class_type"] == "TempoCausalVideoSaveMP4":
            node["inputs"]["filename_prefix"] = f"tempo/bench_live_{tag}"
    return client.queue_prompt(api)


def run(client, url, tag, page=None):
    before = {s["id"] for s in requests.get(url + "/tempo/live/streams").json()["streams"]}
    prompt_id = job(client, tag)
    while True:
        new = [s for s in requests.get(url + "/tempo/live/streams").json()["streams"] if s["id"] not in before]
        if new:
            break
        time.sleep(0.05)
    sid = new[0]["id"]
    if page is not None:
        page.goto(f"{url}/tempo/live/?stream={sid}")
    while not (client.history(prompt_id) or {}).get("status", {}).get("completed"):
        time.sleep(0.2)
    info = requests.get(f"{url}/tempo/live/streams/{sid}").json()
    latencies = page.evaluate("[window.tempoLive.latencies, window.tempoLive.transport]") if page is not None else []
    blocks_seen = page.evaluate("window.tempoLive.blocks.length") if page is not None else 0
    return info, latencies, blocks_seen


def main():
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        sys.exit("no system Chromium: apt-get install -y chromium")
    comfyui = find_comfyui()
    demo_run.ensure_demo_models(demo_run.DEMO_MODELS, comfyui, log=lambda m: print(m, file=sys.stderr))
    with LocalComfyUI(comfyui, models=demo_run.DEMO_MODELS) as local, sync_playwright() as p:
        client = ComfyServer(local.url)
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page()
        run(client, local.url, "warmup")  # model loading, first-call costs
        a, _, _ = run(client, local.url, "a")
        b, lat, seen = run(client, local.url, "b", page)
        c, _, _ = run(client, local.url, "c")
        browser.close()
    base = (a["generation_fps"] + c["generation_fps"]) / 2
    import torch

    device = f"GPU ({torch.cuda.get_device_name()})" if torch.cuda.is_available() else "CPU (browser on the same cores)"
    print(f"{BLOCKS} blocks at {WIDTH}x{HEIGHT}, {device}: generation {a['generation_fps']:.2f} / "
          f"{b['generation_fps']:.2f} (watched) / {c['generation_fps']:.2f} FPS; watched vs the unwatched mean "
          f"{100 * (b['generation_fps'] / base - 1):+.1f}%; frames for the page took the generating thread "
          f"{100 * b['streaming_share']:.2f}% of its time")
    if lat and lat[0]:
        total, transport = lat
        print(f"block's latents done on the server -> its first frame shown: median {statistics.median(total):.3f} s "
              f"(max {max(total):.3f} s, {len(total)} blocks, {seen} received; includes the VAE decode); frames ready "
              f"-> shown: median {statistics.median(transport) * 1000:.0f} ms; block time on the server "
              f"{b['block_seconds']:.3f} s")


if __name__ == "__main__":
    main()
