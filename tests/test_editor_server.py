"""What an artist sees in ComfyUI's own editor (its frontend as the server ships it, in the system
headless Chromium driven by playwright): every shipped workflow loads with its nodes, widgets, stage
groups and model note; the editor's prompt is the batch client's; the template browser lists each
workflow with its thumbnail; a causal video run from the editor ends with a playing video in the MP4
node and the loader showing what it read. Screenshots go to test_artifacts/editor/ (or
$TEMPO_SCREENSHOTS/editor)."""

import glob
import json
import re
import os
import time

import pytest
import requests
from PIL import Image

from tempo_pack.client import workflow
from tempo_pack.client.local import PACK_LINK_NAME, PACK_ROOT
from tempo_pack.factory.editor import CHROMIUM

pytestmark = [pytest.mark.server,
              pytest.mark.skipif(CHROMIUM is None, reason="no system Chromium (apt-get install -y chromium): the "
                                                          "editor tests cannot run")]
WORKFLOWS = sorted(glob.glob(os.path.join(PACK_ROOT, "workflows", "*.json")))
SHOTS = os.path.join(os.environ.get("TEMPO_SCREENSHOTS") or os.path.join(PACK_ROOT, "test_artifacts"), "editor")


@pytest.fixture(scope="module")
def editor(server):
    pytest.importorskip("playwright.sync_api", reason="playwright (dev requirement) is not installed")
    from tempo_pack.factory.editor import Editor

    os.makedirs(SHOTS, exist_ok=True)
    with Editor(server.url) as e:
        yield e


def test_every_workflow_loads_with_its_nodes_groups_and_note(editor, client):
    info = client.object_info()
    booted = len(editor.console)  # what the editor itself logs while starting is not the workflows'
    for path in WORKFLOWS:
        name = os.path.basename(path)
        with open(path) as f:
            wf = json.load(f)
        shown = editor.load(wf, name)
        assert shown["missing"] == [], f"{name}: the editor does not know {shown['missing']}"
        assert shown["groups"] >= 4, f"{name}: stage groups"
        notes = [n for n in wf["nodes"] if n["type"] == "MarkdownNote"]
        assert len(notes) == 1 and "models/" in notes[0]["widgets_values"][0], f"{name}: the model note"
        for n in shown["nodes"]:  # nodes wide and tall enough for their widgets
            if n["computed"]:
                # a loaded video's player asks for its aspect times the height it is given, and that height
                # grows with the node's width (1.45, the demo's 3:2 clip: 468 wide asked of a 364-wide node,
                # 576 of a 472-wide one); the player scales to the node, so only its height is held to
                wide = n["type"] == "LoadVideo" or n["size"][0] >= n["computed"][0] - 1
                assert wide and n["size"][1] >= n["computed"][1] - 1, (name, n)
        ours = workflow.to_api(wf, info)
        theirs = editor.api_prompt()
        for v in theirs.values():  # the editor's own video player, once the picked video has loaded (not an input)
            v["inputs"].pop("video-preview", None)
        assert {k: (v["class_type"], v["inputs"]) for k, v in theirs.items()} == \
            {k: (v["class_type"], v["inputs"]) for k, v in ours.items()}, f"{name}: the editor's prompt differs"
        behind = editor.links_behind_nodes()  # fits the view; every link's drawn path, hit-tested on every node
        assert behind == [], f"{name}: links drawn behind nodes: {behind}"
        editor.screenshot(os.path.join(SHOTS, name[:-5] + ".png"))
    assert not [m for m in editor.console[booted:] if m.startswith("pageerror")], editor.console[booted:]


def test_a_node_put_across_a_link_is_found_behind_it(editor):
    """The check above can fail: a narrow note stood across a link's whole height is reported."""
    with open(WORKFLOWS[0]) as f:
        wf = json.load(f)
    nodes = {n["id"]: n for n in wf["nodes"]}
    lid, src, _, dst, _, _ = next(link for link in wf["links"] if nodes[link[3]]["pos"][0] > nodes[link[1]]["pos"][0])
    a, b = nodes[src], nodes[dst]
    note = next(n for n in wf["nodes"] if n["type"] == "MarkdownNote")
    top, bottom = min(a["pos"][1], b["pos"][1]), max(a["pos"][1] + a["size"][1], b["pos"][1] + b["size"][1])
    note["pos"] = [(a["pos"][0] + a["size"][0] + b["pos"][0]) / 2 - 6, top]
    note["size"] = [12, bottom - top]
    editor.load(wf, "across.json")
    assert any(h["link"] == lid and h["behind"] == note["id"] for h in editor.links_behind_nodes())


MODEL_ENDINGS = (".safetensors", ".sft", ".pt", ".pth", ".ckpt", ".bin", ".gguf")


def test_every_model_a_workflow_names_is_a_released_file_listed_with_its_download():
    """Widgets name the released files (factory/released.py), not the demo's; the workflow's models list
    names each of them with its URL and folder (what the editor's missing-models dialog shows), and the
    note links each one the dialog cannot download itself (a .pt or .pth, a file on GitHub)."""
    from tempo_pack.factory import released

    for path in WORKFLOWS:
        with open(path) as f:
            wf = json.load(f)
        named = {v for n in wf["nodes"] for v in n.get("widgets_values") or []
                 if isinstance(v, str) and v.lower().endswith(MODEL_ENDINGS)}
        assert named and named <= set(released.FILES), f"{path}: not released names: {named - set(released.FILES)}"
        assert {m["name"] for m in wf["models"]} == named, path
        for m in wf["models"]:
            f = released.FILES[m["name"]]
            assert (m["url"], m["directory"]) == (f.url, f.folder), m
            assert m["url"].startswith(("https://huggingface.co/", "https://github.com/")), m
        note = next(n for n in wf["nodes"] if n["type"] == "MarkdownNote")["widgets_values"][0]
        for name in named:
            f = released.FILES[name]
            assert f"[{name}]({f.url}) → `models/{f.folder}/`" in note, (path, name)
            assert ("fetch it yourself" in note.split(f.url)[1].splitlines()[0]) == (not f.dialog_downloads), name


def test_template_browser_lists_every_workflow_with_a_thumbnail(server):
    """The server lists the pack's workflows for the editor's template browser, which asks for
    /api/workflow_templates/<pack>/<name>.jpg as each card's picture."""
    listed = requests.get(server.url + "/api/workflow_templates", timeout=30).json()
    names = sorted(os.path.basename(p)[:-5] for p in WORKFLOWS)
    assert sorted(listed[PACK_LINK_NAME]) == names
    for name in names:
        r = requests.get(f"{server.url}/api/workflow_templates/{PACK_LINK_NAME}/{name}.jpg", timeout=30)
        assert r.status_code == 200, name
        path = os.path.join(PACK_ROOT, "workflows", name + ".jpg")
        with Image.open(path) as im:
            assert im.format == "JPEG" and im.width >= 640, name


def test_the_template_browser_shows_the_cards(editor):
    """The editor's own template dialog: the pack under Custom Nodes, a card per workflow, each card's
    picture the workflow's thumbnail (960 wide, where a missing one shows a placeholder icon)."""
    editor.page.evaluate("() => window.app.extensionManager.command.execute('Comfy.BrowseTemplates')")
    editor.page.get_by_text(PACK_LINK_NAME, exact=True).first.click(timeout=30_000)
    texts = "[...document.querySelectorAll('.p-dialog *')].filter(x => !x.children.length).map(x => x.textContent.trim())"
    names = [os.path.basename(p)[:-5] for p in WORKFLOWS]
    scroll = ("() => [...document.querySelectorAll('.p-dialog *')].filter(x => x.scrollHeight > x.clientHeight + 4)"
              ".forEach(x => x.scrollTo(0, x.scrollHeight))")  # the dialog shows 12 cards, more as it scrolls
    for _ in range(20):
        editor.page.evaluate(scroll)
        editor.page.wait_for_timeout(300)
        if editor.page.evaluate(f"() => {json.dumps(names)}.every(n => {texts}.includes(n))"):
            break
    assert editor.page.evaluate(f"() => {json.dumps(names)}.filter(n => !{texts}.includes(n))") == []
    editor.page.wait_for_function("() => [...document.querySelectorAll('.p-dialog img')]"
                                  ".filter(i => i.complete && i.naturalWidth === 960).length >= 3", timeout=30_000)
    editor.screenshot(os.path.join(SHOTS, "template_browser.png"))
    editor.page.keyboard.press("Escape")


def test_a_causal_video_run_from_the_editor_plays_in_the_mp4_node(editor, client):
    """causal_t2v_mp4 as shipped, but small and with the saved conditioning in place of the Wan text
    encoder (umT5-XXL does not fit this machine): queued from the editor; after the run the MP4 node
    holds a <video> that plays (its time advances) and the loader shows what it read."""
    from tempo_pack.factory.checkpoints import WAN_PROMPT

    with open(os.path.join(PACK_ROOT, "workflows", "05 Causal text to video, streamed to mp4.json")) as f:
        editor.load(json.load(f), "05 Causal text to video, streamed to mp4.json")
    editor.page.evaluate("""([saved]) => {
        const g = window.app.graph, LG = window.LiteGraph;
        const byType = t => g._nodes.find(n => n.type === t);
        const sampler = byType('TempoCausalVideoSampler');
        for (const [k, v] of [['width', 64], ['height', 48], ['length', 21]])
            sampler.widgets.find(w => w.name === k).value = v;
        const cond = LG.createNode('TempoLoadConditioning');
        g.add(cond);
        cond.widgets[0].value = saved;
        cond.connect(0, sampler, sampler.inputs.findIndex(i => i.name === 'positive'));
        g.remove(byType('CLIPTextEncode'));
        g.remove(byType('CLIPLoader'));
    }""", [WAN_PROMPT])
    editor.queue()
    mp4 = "window.app.graph._nodes.find(n => n.type === 'TempoCausalVideoSaveMP4')"
    editor.page.wait_for_function(f"""() => {{ const n = {mp4};
        const w = n && (n.widgets || []).find(w => w.name === 'video-preview');
        return w && w.element && w.element.querySelector('video'); }}""", timeout=600_000)
    src = editor.page.evaluate(f"""() => {{ const v = ({mp4}).widgets.find(w => w.name === 'video-preview')
        .element.querySelector('video'); v.muted = true; v.play(); return v.currentSrc || v.src; }}""")
    assert ".mp4" in src and "blob:" not in src, src
    editor.page.wait_for_function(f"""() => ({mp4}).widgets.find(w => w.name === 'video-preview')
        .element.querySelector('video').currentTime > 0.1""", timeout=60_000)
    info = editor.page.evaluate("""() => { const n = window.app.graph._nodes.find(n => n.type ===
        'TempoCausalVideoLoader'); const w = (n.widgets || []).find(w => w.name === 'tempo_info');
        return w ? w.value : null; }""")
    assert info and "frames per block" in info, info
    editor.page.evaluate(f"() => {{ const n = {mp4}; window.app.canvas.centerOnNode(n); }}")
    time.sleep(1)
    editor.screenshot(os.path.join(SHOTS, "causal_mp4_playing.png"))


def test_every_workflow_opens_where_the_editor_draws_node_text(editor):
    """At 1600x1000, each workflow opens (the template browser's way: 1.45 fits it to the view; older
    editors fit it, having no saved view) at a zoom where the editor draws nodes with their text, not as
    blank boxes (LiteGraph's low-quality mode, text under 8 pixels)."""
    low = {}
    for path in WORKFLOWS:
        with open(path) as f:
            view = editor.opening_view(json.load(f), os.path.basename(path))
        if view["low_quality"]:
            low[os.path.basename(path)] = round(view["scale"], 3)
    assert low == {}, f"these open too small to read: {low}"


@pytest.fixture
def bare_editor(editor):
    """The editor, for this test, of a ComfyUI with no model files at all: what an artist sees before
    downloading anything."""
    from conftest import COMFYUI
    from tempo_pack.client.local import LocalComfyUI

    home = editor.url
    with LocalComfyUI(COMFYUI) as local:
        editor.open(local.url, {"Comfy.Workflow.ShowMissingModelsWarning": True})
        yield editor
    local.cleanup()
    editor.open(home)


def test_the_missing_models_list_names_every_file_a_workflow_needs(bare_editor):
    """With no models installed, the editor's missing-models list (dialog, or Errors panel in 1.45) names every
    released file of every workflow, from the workflow's models list and its widgets."""
    from tempo_pack.factory import released

    for path in WORKFLOWS:
        with open(path) as f:
            wf = json.load(f)
        text = bare_editor.missing_models_text(wf, os.path.basename(path))
        needed = {m["name"] for m in wf["models"]}
        assert needed and needed <= set(released.FILES)
        assert [n for n in needed if n not in text] == [], (os.path.basename(path), text[:600])
    bare_editor.screenshot(os.path.join(SHOTS, "missing_models.png"))


def test_every_workflow_runs_from_the_run_button_on_the_released_file_names(editor, client):
    """The models folder holds only the released names (the demo's stand-ins take them): each shipped workflow
    is opened, its file widgets untouched, and run from the Run button; it makes its images or videos. Changed
    as an artist on a small machine would: the demo text encoder stands where the 5.7B Wan encoder loads, and
    the picture and clip sizes are those two CPU cores make in seconds (checks.SMALL / CAUSAL: 832x480 video
    decoded by the full Wan VAE takes minutes a block here)."""
    from checks import CAUSAL, CAUSAL_SIZE, SMALL, read_mp4_info

    editor.watch_events()
    for path in WORKFLOWS:
        name = os.path.basename(path)
        with open(path) as f:
            wf = json.load(f)
        editor.load(wf, name)
        editor.use_demo_text_encoder()
        overrides = SMALL[name][0] if name in SMALL else CAUSAL[name][0]
        if any(n["type"] == "TempoCausalVideoSampler" for n in wf["nodes"]):
            overrides = {**CAUSAL_SIZE, **overrides}
        editor.set_widgets(overrides)
        editor.page.evaluate("() => { window.tempoEvents = []; }")
        editor.click_run()
        editor.page.wait_for_function("() => window.tempoEvents.some(e => ['execution_success', 'execution_error']"
                                      ".includes(e.type))", timeout=600_000)
        events = editor.page.evaluate("() => window.tempoEvents")
        assert not [e for e in events if e["type"] == "execution_error"], (name, events[-3:])
        outputs = [o for e in events if e["type"] == "executed" for o in (e["detail"].get("output") or {}).get("images", [])]
        if name in SMALL:
            assert len([o for o in outputs if o["filename"].endswith(".png")]) == SMALL[name][1], (name, outputs)
            continue
        videos = sorted((o for o in outputs if o["filename"].endswith(".mp4")), key=lambda o: o["filename"])
        frames = []
        for o in videos:
            local = os.path.join(SHOTS, o["filename"].replace("/", "_"))
            with open(local, "wb") as f:
                f.write(client.view(o["filename"], o.get("subfolder", ""), o.get("type", "output")))
            frames.append(read_mp4_info(local)["frames"])
            os.remove(local)
        assert sorted(frames) == sorted(CAUSAL[name][1]), (name, frames)


def test_the_mp4_nodes_watch_live_button_opens_its_stream_and_a_stop_there_is_told_on_the_node(editor, client):
    """The MP4 node's 'watch live' button (a real click on the canvas) opens the live page of the stream that
    node is making; Stop on that page ends the run, and the node says it was stopped there, at which block."""
    with open(os.path.join(PACK_ROOT, "workflows", "05 Causal text to video, streamed to mp4.json")) as f:
        editor.load(json.load(f), "05 Causal text to video, streamed to mp4.json")
    editor.use_demo_text_encoder()
    editor.page.evaluate("""() => { const s = window.app.graph._nodes.find(n => n.type === 'TempoCausalVideoSampler');
        for (const [k, v] of [['width', 64], ['height', 48], ['length', 1 + 4 * (3 * 400 - 1)]])
            s.widgets.find(w => w.name === k).value = v; }""")
    editor.watch_events()
    editor.click_run()
    mp4 = "window.app.graph._nodes.find(n => n.type === 'TempoCausalVideoSaveMP4')"
    editor.page.wait_for_function(f"() => window.tempoEvents.some(e => e.type === 'progress' && "
                                  f"String(e.detail.node) === String(({mp4}).id) && e.detail.value >= 1)", timeout=300_000)
    box = editor.page.evaluate(f"""() => {{
        const n = {mp4}, c = window.app.canvas;
        c.centerOnNode(n); c.draw(true, true);
        const w = n.widgets.find(w => w.name === 'watch live');
        const y = w.last_y ?? w.y;
        const [x0, y0] = c.ds.convertOffsetToCanvas([n.pos[0] + n.size[0] / 2, n.pos[1] + y + 10]);
        const r = c.canvas.getBoundingClientRect();
        return {{x: r.left + x0, y: r.top + y0}}; }}""")
    with editor.page.context.expect_page(timeout=30_000) as popup:
        editor.page.mouse.click(box["x"], box["y"])
    live = popup.value
    live.wait_for_load_state()
    assert "/tempo/live/?stream=" in live.url, live.url
    live.wait_for_function("(parseInt(document.getElementById('playback').textContent) || 0) >= 1", timeout=120_000)
    live.click("#stop")
    editor.page.wait_for_function("() => window.tempoEvents.some(e => ['execution_success', 'execution_error']"
                                  ".includes(e.type))", timeout=300_000)
    text = editor.page.wait_for_function(f"""() => {{ const w = (({mp4}).widgets || []).find(w => w.name === 'tempo_info');
        return w && w.value; }}""", timeout=30_000).json_value()
    assert re.fullmatch(r"stopped from the live page after block \d+ of 400", text), text
    live.screenshot(path=os.path.join(SHOTS, "live_from_the_mp4_node.png"))
    live.close()
    editor.screenshot(os.path.join(SHOTS, "mp4_node_stopped.png"))
