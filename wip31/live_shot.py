"""Look at the live page with the demo model: 128x96, TAEHV, typed prompt switch. Screenshots to /tmp/live_*.png"""
import os, sys, time, shutil
sys.path.insert(0, "/work/wip")
import tempo
tempo.load_pack()
import requests
from tempo_pack.client import ComfyServer
from tempo_pack.client.local import LocalComfyUI, PACK_ROOT
from tempo_pack.demo import run as demo_run, swap
from playwright.sync_api import sync_playwright

comfyui = os.environ.get("COMFYUI_PATH", "/opt/ComfyUI-0.27")
demo_run.ensure_demo_models(demo_run.DEMO_MODELS, comfyui)
with LocalComfyUI(comfyui, models=demo_run.DEMO_MODELS, extra_nodes=[demo_run.DEMO_NODES]) as local:
    c = ComfyServer(local.url)
    api = swap.use_demo_text_encoder(c.workflow_as_api(os.path.join(PACK_ROOT, "workflows", "19 Causal real-time stream, fast settings.json")))
    for v in api.values():
        if v["class_type"] == "TempoCausalVideoSampler":
            v["inputs"].update(width=128, height=96, length=1 + 4 * (3 * 60 - 1))
        if v["class_type"] == "CLIPTextEncode":
            v["inputs"]["text"] = "red square moving right"
    c.queue_prompt(api)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=shutil.which("chromium"), args=["--no-sandbox"])
        page = b.new_page(viewport={"width": 1280, "height": 800})
        page.goto(local.url + "/tempo/live/")
        page.wait_for_selector("a:has-text('watch')", timeout=180_000)
        page.click("a:has-text('watch')")
        shown = "(parseInt(document.getElementById('playback').textContent) || 0)"
        page.wait_for_function(f"{shown} >= 20", timeout=300_000)
        page.screenshot(path="/tmp/live_1.png")
        page.fill("#prompt", "blue circle moving down")
        page.click("#send")
        page.wait_for_function("document.getElementById('events').textContent.includes('from block')", timeout=120_000)
        n = page.evaluate(shown)
        page.wait_for_function(f"{shown} >= {n} + 24", timeout=300_000)
        page.screenshot(path="/tmp/live_2.png")
        print(page.evaluate("document.getElementById('events').textContent"))
        b.close()
    requests.post(local.url + "/interrupt")
    local.cleanup()
