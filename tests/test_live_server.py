"""The live page on a real ComfyUI server: its routes, refusals, and a real browser watching and
steering a causal video while it is made (headless Chromium from the system, driven by playwright)."""

import asyncio
import os
import shutil
import time

import pytest
import requests

from tempo_pack.client import workflow
from tempo_pack.client.local import PACK_ROOT
from tempo_pack.demo import swap
from tempo_pack.factory import workflows as specs

pytestmark = pytest.mark.server
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def queue_causal(client, length):
    from tempo_pack.factory.checkpoints import WAN_PROMPT

    api = workflow.to_api(workflow.load_workflow(os.path.join(PACK_ROOT, "workflows", "05 Causal text to video, streamed to mp4.json")),
                          client.object_info())
    api = swap.use_saved_conditioning(api, WAN_PROMPT)
    for node in api.values():
        if node["class_type"] == "TempoCausalVideoSampler":
            node["inputs"].update(width=64, height=48, length=length, cache="window", sink_size=3, local_attn_size=12)
        if node["class_type"] == "TempoCausalVideoSaveMP4":
            node["inputs"]["filename_prefix"] = f"tempo/live_{time.time_ns()}"
    return client.queue_prompt(api)


def wait(predicate, timeout=120.0, every=0.2, what="condition"):
    end = time.time() + timeout
    while time.time() < end:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


def newest_stream(server_url, after_ids):
    streams = requests.get(server_url + "/tempo/live/streams", timeout=10).json()["streams"]
    return next((s for s in streams if s["id"] not in after_ids), None)


def finished(client, prompt_id):
    h = client.history(prompt_id)
    return h if h and h.get("status", {}).get("completed") is not None else None


def test_routes_serve_the_page_and_refuse_what_is_not_theirs(server, client):
    url = server.url
    page = requests.get(url + "/tempo/live/", timeout=10)
    assert page.status_code == 200 and "Tempo live" in page.text
    assert requests.get(url + "/api/tempo/live/streams", timeout=10).status_code == 200  # ComfyUI's /api mirror
    for path in ("/tempo/live/streams/nope", "/tempo/live/streams/nope/video", "/tempo/live/streams/..%2F..%2Fx/video"):
        r = requests.get(url + path, timeout=10)
        assert r.status_code == 404, path
    assert requests.post(url + "/tempo/live/streams/nope/stop", timeout=10).status_code == 404


def test_a_stream_is_listed_steered_by_saved_conditioning_stopped_and_its_mp4_served(server, client):
    from checks import mp4_boxes

    from tempo_pack.factory.checkpoints import WAN_PROMPTS_MORE

    before = {s["id"] for s in requests.get(server.url + "/tempo/live/streams", timeout=10).json()["streams"]}
    prompt_id = queue_causal(client, 1 + 4 * (3 * 400 - 1))  # 400 blocks: long enough to steer on any machine
    s = wait(lambda: newest_stream(server.url, before), what="the stream to be listed")
    api = f"{server.url}/tempo/live/streams/{s['id']}"
    assert s["total_blocks"] == 400 and s["state"] == "running" and s["can_encode"] is False
    for body, message in ((b"not json", "not JSON"), (b'{"text": "a fox"}', "no text encoder"),
                          (b'{"saved": "../../x.safetensors"}', "unknown saved conditioning")):
        r = requests.post(api + "/prompt", data=body, timeout=10)
        assert r.status_code == 400 and message in r.json()["error"], r.text
    too_big = requests.post(api + "/prompt", data=(b"x" * 4096 for _ in range(256)), timeout=30)  # 1 MB, chunked
    assert too_big.status_code == 413 and "over 16 KB" in too_big.json()["error"], too_big.text
    watched_before = requests.get(api, timeout=10).json()["viewers"]
    for after in ("\u00b2", "-1", "1e3", "9" * 40, "", "0x10"):  # '²' is a digit to str.isdigit, not to int()
        assert asyncio.run(_watch_once(server.url, s["id"], after)), after
    wait(lambda: requests.get(api, timeout=10).json()["viewers"] == watched_before, timeout=20,
         what="every viewer to be counted out")
    asked = [WAN_PROMPTS_MORE[0], WAN_PROMPTS_MORE[1]]  # two at once: the newer replaces the older, and says so
    for name in asked:
        assert requests.post(api + "/prompt", json={"saved": name}, timeout=10).status_code == 200
    wait(lambda: any("from block" in e["text"] for e in requests.get(api, timeout=10).json()["events"]),
         what="the switch to be made")
    asked.append(WAN_PROMPTS_MORE[0])  # and one the stop overtakes, or the last block takes
    assert requests.post(api + "/prompt", json={"saved": asked[-1]}, timeout=10).status_code == 200
    assert requests.post(api + "/stop", timeout=10).json()["state"] in ("stopping", "stopped")
    info = wait(lambda: (lambda i: i if i["state"] == "stopped" else None)(requests.get(api, timeout=10).json()),
                what="the stream to stop")
    assert 1 <= info["blocks_done"] < 400
    said = [e["text"] for e in info["events"] if "stopped after" not in e["text"]]
    assert len(said) == len(asked), said  # every accepted request: taken, replaced, or not used, each said once
    assert any("was replaced by a newer request" in t for t in said) or \
        sum("from block" in t for t in said) == len(asked), said
    h = wait(lambda: finished(client, prompt_id), what="the job to end")
    told = [t for out in h["outputs"].values() for t in out.get("text", [])  # what the MP4 node shows (the
            if not t.startswith("Self Forcing;")]                           # loader's info, when it ran, aside)
    assert told == [f"stopped from the live page after block {info['blocks_done']} of 400"], told
    video = requests.get(api + "/video", timeout=30)
    assert video.status_code == 200 and video.headers["Content-Type"] == "video/mp4"
    path = os.path.join(str(server.base), "clip.mp4")
    with open(path, "wb") as f:
        f.write(video.content)
    boxes = mp4_boxes(path)
    assert boxes.index("moov") < boxes.index("mdat")


async def _watch_once(url, stream_id, after) -> bool:
    """Open the stream's websocket with ``after`` as given, read one message, close: True when the
    server answered with the stream's figures."""
    import aiohttp

    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(f"{url}/tempo/live/streams/{stream_id}/ws", params={"after": after},
                                      timeout=20) as ws:
            msg = await ws.receive(timeout=20)
            return msg.type == aiohttp.WSMsgType.TEXT and msg.json()["type"] == "info"


def timeline_job(client, blocks, switch_block, saved_from):
    """The same video as queue_causal's, as long as ``blocks`` blocks, its prompt switched at
    ``switch_block`` (0-based) by a timeline to the saved conditioning ``saved_from``."""
    from tempo_pack.factory.checkpoints import WAN_PROMPT

    api = workflow.to_api(workflow.load_workflow(os.path.join(PACK_ROOT, "workflows", "05 Causal text to video, streamed to mp4.json")),
                          client.object_info())
    api = swap.use_saved_conditioning(api, WAN_PROMPT)
    sampler = next(k for k, v in api.items() if v["class_type"] == "TempoCausalVideoSampler")
    first = api[sampler]["inputs"].pop("positive")
    api["900"] = {"class_type": "TempoLoadConditioning", "inputs": {"name": saved_from}}
    api["901"] = {"class_type": "TempoPromptTimelineAdd",
                  "inputs": {"conditioning": first, "start": 0.0, "units": "frames", "fps": 16.0}}
    api["902"] = {"class_type": "TempoPromptTimelineAdd",
                  "inputs": {"conditioning": ["900", 0], "start": float(12 * switch_block - 3), "units": "frames",
                             "fps": 16.0, "timeline": ["901", 0]}}
    api[sampler]["inputs"].update(timeline=["902", 0], width=64, height=48, length=1 + 4 * (3 * blocks - 1),
                                  cache="window", sink_size=3, local_attn_size=12)
    for node in api.values():
        if node["class_type"] == "TempoCausalVideoSaveMP4":
            node["inputs"]["filename_prefix"] = f"tempo/timeline_{time.time_ns()}"
    return client.queue_prompt(api)


def mp4_frames(client, prompt_id):
    import torch

    from tempo_pack.demo.scenes import read_mp4

    h = wait(lambda: finished(client, prompt_id), what="the job to end")
    (video,) = [v for out in h["outputs"].values() for v in out.get("images", []) + out.get("videos", [])
                if v["filename"].endswith(".mp4")] or [None]
    assert video is not None, h["outputs"]
    data = client.view(video["filename"], video.get("subfolder", ""))
    path = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"tempo_{time.time_ns()}.mp4")
    with open(path, "wb") as f:
        f.write(data)
    frames = (read_mp4(path) * 255).round().to(torch.uint8).numpy()
    os.remove(path)
    return frames


@pytest.mark.skipif(CHROMIUM is None, reason="no system Chromium (apt-get install -y chromium): the live page's "
                                            "browser test cannot run")
def test_a_browser_watches_steers_and_stops_a_stream(server, client):
    """Two pages: one from the start (it receives every block), one that joins late (it starts at the
    newest block). A saved conditioning picked on the page changes the following blocks exactly as a
    timeline switching at the same block does; Stop ends the job; the finished mp4 plays in the page."""
    import numpy as np

    from tempo_pack.factory.checkpoints import WAN_PROMPTS_MORE

    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (dev requirement) is not installed")
    shots = os.environ.get("TEMPO_SCREENSHOTS") or os.path.join(PACK_ROOT, "test_artifacts")
    os.makedirs(shots, exist_ok=True)
    before = {s["id"] for s in requests.get(server.url + "/tempo/live/streams", timeout=10).json()["streams"]}
    prompt_id = queue_causal(client, 1 + 4 * (3 * 400 - 1))  # 400 blocks: a fast machine cannot finish before Stop
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 720})
            page.goto(server.url + "/tempo/live/")
            page.wait_for_selector("a:has-text('watch')", timeout=120_000)  # the list finds the new stream
            s = wait(lambda: newest_stream(server.url, before), what="the stream")
            page.click("a:has-text('watch')")
            shown = "(parseInt(document.getElementById('playback').textContent) || 0)"
            page.wait_for_function(f"{shown} >= 6 && window.tempoLive.blocks.length >= 2", timeout=180_000)
            late = browser.new_page()
            late.goto(f"{server.url}/tempo/live/?stream={s['id']}")
            late.wait_for_function(f"{shown} >= 1", timeout=180_000)
            page.wait_for_function("document.getElementById('viewers').textContent === '2'", timeout=10_000)
            assert late.evaluate("window.tempoLive.blocks[0]") > 0  # joined at the newest block, not the first
            assert page.evaluate("document.getElementById('view').naturalWidth") == 64  # a decoded JPEG frame
            page.evaluate("window.tempoLive.socket.close()")  # the connection drops: the page joins again where it was
            page.wait_for_function("window.tempoLive.reconnects === 1 && !window.tempoLive.reconnecting", timeout=60_000)
            page.select_option("#saved", WAN_PROMPTS_MORE[1])
            page.click("#use")
            page.wait_for_function("document.getElementById('events').textContent.includes('from block')",
                                   timeout=120_000)
            page.screenshot(path=os.path.join(shots, "live_playing.png"))
            switched = int(page.evaluate(
                "document.getElementById('events').textContent.match(/from block (\\d+)/)[1]")) - 1
            page.wait_for_function(f"window.tempoLive.blocks.includes({switched + 1})", timeout=120_000)
            page.click("#stop")
            info = wait(lambda: (lambda i: i if i["state"] not in ("running", "stopping") else None)(
                requests.get(f"{server.url}/tempo/live/streams/{s['id']}", timeout=10).json()), what="the stream to end")
            assert info["state"] == "stopped" and info["blocks_done"] < info["total_blocks"], (
                info, page.evaluate("document.getElementById('message').textContent"))
            page.wait_for_function("document.getElementById('state').textContent.startsWith('stopped')",
                                   timeout=30_000)
            received = page.evaluate("window.tempoLive.blocks")
            assert received == list(range(info["blocks_done"])), received  # every block, in order
            latencies = page.evaluate("window.tempoLive.latencies")
            assert latencies and all(0 <= t < 60 for t in latencies)
            page.wait_for_function("document.getElementById('finished').src.endsWith('/video')", timeout=60_000)
            page.evaluate("() => { const v = document.getElementById('finished'); v.muted = true; v.play(); }")
            page.wait_for_function("document.getElementById('finished').currentTime > 0", timeout=60_000)
            page.screenshot(path=os.path.join(shots, "live_finished.png"))
        finally:
            browser.close()
    live_frames = mp4_frames(client, prompt_id)
    blocks = info["blocks_done"]
    assert len(live_frames) == 1 + 4 * (3 * blocks - 1)
    ref = mp4_frames(client, timeline_job(client, blocks, switched, WAN_PROMPTS_MORE[1]))
    assert np.array_equal(live_frames, ref), "the page's prompt switch is not the timeline's"
    untouched = mp4_frames(client, queue_causal_blocks(client, blocks))
    assert_untouched_before(live_frames, untouched, 12 * switched - 3)


def assert_untouched_before(switched, untouched, frame):
    """The frames before ``frame`` are the video's without the switch, up to H.264: its lookahead and
    B-frames let later frames move earlier ones by a few levels (measured: at most 0.11 of 255 on a frame's
    mean, in the last frames before the switch); the frames after it differ by far more (5-8 levels)."""
    per_frame = lambda a, b: abs(a.astype(int) - b.astype(int)).reshape(len(a), -1).mean(1)  # noqa: E731
    before, after = per_frame(switched[:frame], untouched[:frame]), per_frame(switched[-12:], untouched[-12:])
    assert before.max() <= 0.5, before.tolist()
    assert after.min() >= 2.0, after.tolist()


def queue_causal_blocks(client, blocks):
    return queue_causal(client, 1 + 4 * (3 * blocks - 1))


def test_run_with_live_prints_the_page_and_the_page_answers(server, tmp_path):
    import subprocess
    import sys

    tempo = os.path.join(PACK_ROOT, "tempo.py")
    proc = subprocess.run([sys.executable, tempo, "run", os.path.join(PACK_ROOT, "workflows", "01 One-step text to image.json"),
                           "--server", server.url, "--set", "EmptyLatentImage.width=64", "--set",
                           "EmptyLatentImage.height=64", "-o", str(tmp_path / "out"), "--quiet", "--live"],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    link = f"{server.url}/tempo/live/"
    assert f"watch live: {link}" in proc.stderr
    assert requests.get(link, timeout=10).status_code == 200


def _typed_job(client, length, timeline_text=None):
    """Workflow 05 as shipped, the demo text encoder in the Wan encoder's place (its CLIP reaches the
    sampler, so the page can encode typed prompts), small; or, with ``timeline_text``, the same video
    following a prompt timeline typed into Tempo Prompt Timeline instead of the one prompt."""
    api = workflow.to_api(workflow.load_workflow(os.path.join(PACK_ROOT, "workflows", "05 Causal text to video, streamed to mp4.json")),
                          client.object_info())
    api = swap.use_demo_text_encoder(api)
    sampler = next(k for k, v in api.items() if v["class_type"] == "TempoCausalVideoSampler")
    api[sampler]["inputs"].update(width=64, height=48, length=length, cache="window", sink_size=3, local_attn_size=12)
    if timeline_text is not None:
        del api[sampler]["inputs"]["positive"]
        api["900"] = {"class_type": "TempoPromptTimeline", "inputs": {"clip": api[sampler]["inputs"]["clip"],
                                                                      "text": timeline_text, "units": "frames",
                                                                      "fps": 16.0}}
        api[sampler]["inputs"]["timeline"] = ["900", 0]
    for node in api.values():
        if node["class_type"] == "TempoCausalVideoSaveMP4":
            node["inputs"]["filename_prefix"] = f"tempo/typed_{time.time_ns()}"
    return client.queue_prompt(api)


@pytest.mark.skipif(CHROMIUM is None, reason="no system Chromium (apt-get install -y chromium): the live page's "
                                            "browser test cannot run")
def test_a_prompt_typed_on_the_page_switches_the_stream_at_the_block_the_page_says(server, client):
    """The shipped causal workflow wires the text encoder into the sampler, so the page shows a prompt box
    that works: the typed prompt takes over at the block the page names, exactly as a timeline switching to
    the same text at that block does; blocks before it are untouched. The server's log says so too."""
    import numpy as np

    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright (dev requirement) is not installed")
    typed = "a blue circle drifting left"
    before = {s["id"] for s in requests.get(server.url + "/tempo/live/streams", timeout=10).json()["streams"]}
    prompt_id = _typed_job(client, 1 + 4 * (3 * 400 - 1))
    s = wait(lambda: newest_stream(server.url, before), what="the stream")
    assert s["can_encode"] is True
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 720})
            page.goto(f"{server.url}/tempo/live/?stream={s['id']}")
            page.wait_for_function("(parseInt(document.getElementById('playback').textContent) || 0) >= 1",
                                   timeout=180_000)
            assert page.is_visible("#prompt") and page.is_visible("#send")
            page.fill("#prompt", typed)
            page.click("#send")
            page.wait_for_function("document.getElementById('events').textContent.includes('from block')",
                                   timeout=120_000)
            switched = int(page.evaluate(
                "document.getElementById('events').textContent.match(/from block (\\d+)/)[1]")) - 1
            page.wait_for_function(f"window.tempoLive.blocks.includes({switched + 1})", timeout=120_000)
            page.click("#stop")
            info = wait(lambda: (lambda i: i if i["state"] not in ("running", "stopping") else None)(
                requests.get(f"{server.url}/tempo/live/streams/{s['id']}", timeout=10).json()), what="the stream to end")
        finally:
            browser.close()
    blocks = info["blocks_done"]
    live_frames = mp4_frames(client, prompt_id)
    first = specs.VIDEO_PROMPT
    ref = mp4_frames(client, _typed_job(client, 1 + 4 * (3 * blocks - 1), f"0: {first}\n{12 * switched - 3}: {typed}"))
    assert np.array_equal(live_frames, ref), "the typed prompt's switch is not the timeline's"
    untouched = mp4_frames(client, _typed_job(client, 1 + 4 * (3 * blocks - 1)))
    assert_untouched_before(live_frames, untouched, 12 * switched - 3)
    log = server.log_text()
    assert f"switches prompt at block {switched + 1} of 400 (from the live page): '{typed}'" in log
    assert f"stopped from the live page after block {blocks} of 400" in log
