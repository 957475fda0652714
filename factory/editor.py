"""Drive ComfyUI's own editor in headless Chromium (developers and tests; playwright and a system
Chromium are dev requirements): load a workflow as an artist opens it, fit it to the view, take a
screenshot, queue it from the editor. ``python tempo.py build-workflows --thumbnails`` writes each
workflow's template thumbnail (``workflows/<name>.jpg``, what the template browser shows) with it."""

from __future__ import annotations

import json
import os
import shutil

import requests

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
VIEWPORT = {"width": 1600, "height": 1000}  # what the readable-zoom promise is made for
# Comfy.Workflow.Persist off: a page opened again does not restore the last session's workflow, which
# 1.45 does after the app is up and which could replace a workflow loaded in the meantime
SETTINGS = {"Comfy.TutorialCompleted": True, "Comfy.Minimap.Visible": False,
            "Comfy.Workflow.ShowMissingModelsWarning": False, "Comfy.Workflow.Persist": False}


class Editor:
    """One editor page on a running ComfyUI (use as a context manager)."""

    def __init__(self, url: str, viewport: dict | None = None, settings: dict | None = None):
        from playwright.sync_api import sync_playwright

        if CHROMIUM is None:
            raise RuntimeError("no system Chromium (apt-get install -y chromium)")
        self.url = url
        self._pw = sync_playwright().start()
        self.browser = self._pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        self.page = self.browser.new_page(viewport=viewport or VIEWPORT)
        self.console: list[str] = []
        self.page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
        self.page.on("pageerror", lambda e: self.console.append(f"pageerror: {e} {getattr(e, 'stack', '') or ''}"[:600]))
        # the server keeps the editor's settings: no first-run template dialog, no minimap over the graph,
        # no missing-models dialog while loading (the tests read the workflow's model list themselves)
        self.open(url, settings)

    def open(self, url: str, settings: dict | None = None) -> None:
        """Open the editor of the ComfyUI at ``url`` in this page, with the editor settings the tests use."""
        self.url = url
        for key, value in {**SETTINGS, **(settings or {})}.items():
            requests.post(f"{url}/api/settings/{key}", json=value, timeout=30).raise_for_status()
        self.page.goto(url)
        self.page.wait_for_function("window.app && window.app.graph && window.app.canvas", timeout=180_000)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        try:
            self.browser.close()
        finally:
            self._pw.stop()

    def load(self, workflow: dict, name: str = "workflow.json") -> dict:
        """Load a workflow the way opening a file does; returns what the editor reports about it:
        node types it does not know and the nodes as it holds them (type, widget values, size)."""
        return self.page.evaluate("""async ([wf, name]) => {
            const app = window.app;
            await app.loadGraphData(wf, true, true, name);
            const known = window.LiteGraph.registered_node_types;
            const nodes = app.graph._nodes.map(n => ({id: n.id, type: n.type, size: [n.size[0], n.size[1]],
                computed: n.computeSize ? [n.computeSize()[0], n.computeSize()[1]] : null,
                widgets: (n.widgets || []).map(w => [w.name, w.value])}));
            return {missing: app.graph._nodes.filter(n => !(n.type in known)).map(n => n.type),
                    nodes, groups: app.graph._groups.length};
        }""", [workflow, name])

    def opening_view(self, workflow: dict, name: str = "workflow.json") -> dict:
        """Open a workflow as the template browser opens it (1.45: fit to view; older editors: the saved view,
        else fit to view) and report the zoom it opens at, the zoom below which the editor draws nodes as
        blank boxes (LiteGraph's low_quality threshold: text under MinFontSizeForLOD pixels is not drawn), and
        whether it does so now."""
        return self.page.evaluate("""async ([wf, name]) => {
            const app = window.app;
            await app.loadGraphData(wf, true, true, name, {openSource: 'template'});
            await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
            const c = app.canvas;
            c.draw(true, true);
            return {scale: c.ds.scale, threshold: c.low_quality_zoom_threshold, low_quality: !!c.low_quality,
                    canvas: [c.canvas.clientWidth, c.canvas.clientHeight]};
        }""", [workflow, name])

    def missing_models_text(self, workflow: dict, name: str = "workflow.json") -> str:
        """Load a workflow with the editor's missing-models warning on and return what it lists: the dialog
        (frontends 1.27, 1.35), or the Errors panel that 'See Errors' opens (1.45). A dialog still open from
        the last workflow is closed first: 1.27 keeps an open dialog and does not redraw it for the next."""
        listed = """() => [...document.querySelectorAll('div, section, aside')]
            .map((e) => e.innerText.trim()).filter((t) => t.startsWith('Missing Models'))
            .sort((a, b) => b.length - a.length)[0] || ''"""
        for _ in range(5):
            if not self.page.evaluate(listed):
                break
            self.page.keyboard.press("Escape")
            self.page.wait_for_timeout(300)
        self.page.evaluate("async ([wf, name]) => { await window.app.loadGraphData(wf, true, true, name); }",
                           [workflow, name])
        self.page.wait_for_timeout(1500)
        for label in ("See Errors", "Show missing models"):  # 1.45's overlay, by what it holds
            button = self.page.get_by_role("button", name=label)
            if button.count() and button.first.is_visible():
                button.first.click()
                self.page.wait_for_timeout(1000)
                break
        return self.page.evaluate(listed)

    def use_demo_text_encoder(self) -> int:
        """In the loaded graph, put the demo's stand-in text encoder where a Wan text encoder is loaded
        (CLIPLoader, type wan), every link kept; returns how many were replaced."""
        return self.page.evaluate("""() => {
            const g = window.app.graph, LG = window.LiteGraph;
            let n = 0;
            for (const old of [...g._nodes]) {
                if (old.type !== 'CLIPLoader' || old.widgets.find((w) => w.name === 'type').value !== 'wan') continue;
                const demo = LG.createNode('TempoDemoTextEncoder');
                demo.pos = [...old.pos];
                g.add(demo);
                const links = (old.outputs[0].links || []).map((id) => g.links.get ? g.links.get(id) : g.links[id]);
                for (const l of links) demo.connect(0, g.getNodeById(l.target_id), l.target_slot);
                g.remove(old);
                n += 1;
            }
            return n;
        }""")

    def set_widgets(self, overrides: dict) -> None:
        """Set widget values as an artist does in the editor: {"<title or type>.<input>": value}, a leading '*'
        setting every node of that type."""
        self.page.evaluate("""(overrides) => {
            const nodes = window.app.graph._nodes;
            for (const [key, value] of Object.entries(overrides)) {
                const dot = key.lastIndexOf('.');
                let ref = key.slice(0, dot), name = key.slice(dot + 1), every = ref.startsWith('*');
                if (every) ref = ref.slice(1);
                let found = nodes.filter((n) => n.title === ref && n.type !== ref);
                if (!found.length) found = nodes.filter((n) => n.type === ref);
                if (!found.length || (found.length > 1 && !every)) throw new Error(`no single node '${ref}'`);
                for (const n of found) {
                    const w = (n.widgets || []).find((w) => w.name === name);
                    if (!w) throw new Error(`${ref} has no widget ${name}`);
                    w.value = value;
                }
            }
        }""", overrides)

    def watch_events(self) -> None:
        """Record the server's execution messages for this page (window.tempoEvents)."""
        self.page.evaluate("""async () => {
            const { api } = await import('/scripts/api.js');
            window.tempoEvents = [];
            for (const type of ['execution_start', 'executing', 'progress', 'executed', 'execution_success',
                                'execution_error', 'execution_interrupted'])
                api.addEventListener(type, (e) => window.tempoEvents.push({type, detail: e.detail}));
        }""")

    def click_run(self) -> None:
        """Press the editor's Run button, as an artist does."""
        self.page.get_by_role("button", name="Run", exact=True).first.click()

    def dismiss_messages(self) -> None:
        """Close the editor's message over the canvas (1.45's missing-models and errors overlay)."""
        for label in ("Dismiss",):
            button = self.page.get_by_role("button", name=label)
            if button.count() and button.first.is_visible():
                button.first.click()
                self.page.wait_for_timeout(300)

    def fit(self):
        self.page.evaluate("() => window.app.extensionManager.command.execute('Comfy.Canvas.FitView')")
        self.page.wait_for_timeout(500)

    def screenshot(self, path: str, quality: int | None = None, canvas_only: bool = False):
        kwargs = {"type": "jpeg", "quality": quality or 80} if path.endswith(".jpg") else {}
        if canvas_only:  # the graph alone, without the editor's bars
            box = self.page.evaluate("""() => { const r = window.app.canvasEl.getBoundingClientRect();
                return {x: r.x, y: r.y, width: r.width, height: r.height}; }""")
            kwargs["clip"] = {"x": box["x"] + 60, "y": box["y"] + 75, "width": box["width"] - 60,
                              "height": box["height"] - 75 - 70}  # nor the canvas toolbar at the bottom
        self.page.screenshot(path=path, **kwargs)

    def links_behind_nodes(self, step: int = 6) -> list[dict]:
        """Where a drawn link passes behind a node (title bar included) of the loaded workflow, as the
        editor draws it: the links' own canvas paths (the last segment and each reroute's) are hit-tested
        on a grid of points inside every node but the link's two ends, the stroke as wide as the editor's.
        Each hit: the link, its two ends, the node behind, the first point found and the segment there
        (0 leaves the output)."""
        self.fit()
        found = self.page.evaluate("""(step) => {
            const app = window.app, g = app.graph, LG = window.LiteGraph;
            app.canvas.draw(true, true);
            const ctx = document.createElement('canvas').getContext('2d');
            ctx.lineWidth = app.canvas.connections_width || 3;
            const title = LG.NODE_TITLE_HEIGHT, hits = [], undrawn = [];
            for (const link of g._links.values()) {
                const paths = [link.path];
                let r = link.parentId == null ? null : g.reroutes.get(link.parentId);
                while (r) { paths.push(r.path); r = r.parentId == null ? null : g.reroutes.get(r.parentId); }
                if (!paths.every((p) => p instanceof Path2D)) { undrawn.push(link.id); continue; }
                for (const node of g._nodes) {
                    if (node.id === link.origin_id || node.id === link.target_id) continue;
                    const [x, y] = node.pos, [w, h] = node.size;
                    let hit = null;
                    for (let px = x + 2; px < x + w - 2 && !hit; px += step)
                        for (let py = y - title + 2; py < y + h - 2 && !hit; py += step) {
                            const k = paths.findIndex((p) => p && ctx.isPointInStroke(p, px, py));
                            if (k >= 0) hit = {at: [px, py], segment: paths.length - 1 - k};
                        }
                    if (hit) hits.push({link: link.id, from: link.origin_id, to: link.target_id, behind: node.id, ...hit});
                }
            }
            return {hits, undrawn};
        }""", step)
        if found["undrawn"]:
            raise RuntimeError(f"the editor drew no path for links {found['undrawn']}: cannot tell where they run")
        return found["hits"]

    def queue(self) -> None:
        """Queue the loaded workflow as the Run button does."""
        self.page.evaluate("() => window.app.queuePrompt(0, 1)")

    def api_prompt(self) -> dict:
        """The API prompt the editor would send for the loaded workflow."""
        return self.page.evaluate("async () => (await window.app.graphToPrompt()).output")


def write_thumbnails(url: str, workflows_dir: str, names: list[str], width: int = 960,
                     outputs: dict | None = None) -> list[str]:
    """A fit-to-view picture of each workflow in the editor (nodes drawn in full, not as their
    zoomed-out outlines), ``width`` pixels wide, as ``<name>.jpg`` beside it. ``outputs`` maps a workflow
    to (caption, frames [T, H, W, 3] in 0..1) of what it made: a row of those frames under the graph."""
    from PIL import Image

    written = []
    with Editor(url, {"width": 1920, "height": 1200}, {"LiteGraph.Canvas.MinFontSizeForLOD": 0}) as editor:
        for name in names:
            with open(os.path.join(workflows_dir, name)) as f:
                editor.load(json.load(f), name)
            editor.fit()
            editor.dismiss_messages()
            out = os.path.join(workflows_dir, name[:-len(".json")] + ".jpg")
            editor.screenshot(out + ".png", canvas_only=True)
            with Image.open(out + ".png") as im:
                graph = im.convert("RGB")
            os.remove(out + ".png")
            made = (outputs or {}).get(name)
            if made is None:
                _card(graph, width).save(out, quality=82)
            else:
                _card_with_frames(graph, width, *made).save(out, quality=82)
            written.append(out)
    return written


def _card_with_frames(graph, width: int, caption: str, frames, aspect: float = 1.6):
    """The graph's card over a row of the frames a run of it made, captioned, on the editor's ground."""
    from PIL import Image

    from ..demo.scenes import PAD, frame_strip

    count, label_w = 5, 150
    scale = (width - label_w - count * PAD) / count / frames.shape[2]  # the row fills the card's width
    ground = graph.getpixel((2, 2))
    row = frame_strip([("tempo.py demo's tiny\nmodel made this:\n" + _wrap(caption, 20), frames)],
                      count=count, every=None, scale=scale, label_w=label_w, font_size=13,
                      background=ground, ink=(225, 225, 225))
    height = round(width / aspect)
    top = _card(graph, width, width / (height - row.height))
    card = Image.new("RGB", (width, height), ground)
    card.paste(top, (0, 0))
    card.paste(row, (0, top.height))
    return card


def _wrap(text: str, chars: int) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, chars))


def _card(im, width: int, aspect: float = 1.6):
    """The graph cut out of the empty canvas around it, centred on a card of ``aspect``."""
    from PIL import Image, ImageChops

    bg = Image.new("RGB", im.size, im.getpixel((2, 2)))
    box = ImageChops.difference(im, bg).convert("L").point(lambda v: 255 if v > 40 else 0).getbbox()
    if box:
        pad = 24
        im = im.crop((max(box[0] - pad, 0), max(box[1] - pad, 0), min(box[2] + pad, im.width),
                      min(box[3] + pad, im.height)))
    w, h = max(im.width, round(im.height * aspect)), max(im.height, round(im.width / aspect))
    card = Image.new("RGB", (w, h), bg.getpixel((0, 0)))
    card.paste(im, ((w - im.width) // 2, (h - im.height) // 2))
    return card.resize((width, round(width / aspect)), Image.LANCZOS)
