// Tempo's editor extension: what the artist sees on Tempo nodes.
// - Text a Tempo node reports (which preset a loader chose and why, where a prompt switch landed) is
//   shown on the node, in a read-only box, as ComfyUI's own Preview Any shows its text.
// - Tempo Causal Video to MP4 shows the finished video: the per-block previews it sends while it runs
//   would otherwise stay and outrank the video (the frontend prefers a node's stored preview).
// - The nodes that run a causal video have a "watch live" button: it opens the live page (play, stop,
//   type a prompt) on the stream this node is making, or the list of streams before a run.
import { app } from "../../scripts/app.js";
import { api } from "../../scripts/api.js";
import { ComfyWidgets } from "../../scripts/widgets.js";

const INFO = "tempo_info";
const VIDEO_NODES = new Set(["TempoCausalVideoSaveMP4"]);
const STREAM_NODES = new Set(["TempoCausalVideoSaveMP4", "TempoCausalVideoDecode"]);
export const LIVE_BUTTON = "watch live";
const LIVE_ROUTE = "/tempo/live/";
const LIVE_TEXT = "watch live: "; // the progress text a running node sends (nodes/live.py send_link)
const liveLinks = new Map(); // node id -> the live page of the stream it makes

function liveUrl(node) {
  return (api.api_base || "") + (liveLinks.get(String(node.id)) || LIVE_ROUTE);
}

api.addEventListener("progress_text", (e) => {
  const { nodeId, text } = e.detail || {};
  if (typeof text === "string" && text.startsWith(LIVE_TEXT)) liveLinks.set(String(nodeId), text.slice(LIVE_TEXT.length));
});

function dropWidget(node, name) {
  const i = node.widgets?.findIndex((w) => w.name === name) ?? -1;
  if (i > -1) {
    node.widgets[i].onRemove?.();
    node.widgets.splice(i, 1);
  }
}

function showText(node, text) {
  let w = node.widgets?.find((w) => w.name === INFO);
  if (!w) {
    w = ComfyWidgets["STRING"](node, INFO, ["STRING", { multiline: true }], app).widget;
    w.element.readOnly = true;
    w.serialize = false; // not saved in the workflow
    w.options = { ...(w.options || {}), serialize: false }; // not sent as an input
    const [width, height] = node.size;
    const min = node.computeSize();
    node.setSize([Math.max(width, min[0]), Math.max(height, min[1])]);
  }
  w.value = text;
}

app.registerExtension({
  name: "Tempo.NodeUI",
  async beforeRegisterNodeDef(nodeType, nodeData) {
    if (!nodeData.name?.startsWith("Tempo")) return;
    if (STREAM_NODES.has(nodeData.name)) {
      const onNodeCreated = nodeType.prototype.onNodeCreated;
      nodeType.prototype.onNodeCreated = function () {
        onNodeCreated?.apply(this, arguments);
        const w = this.addWidget("button", LIVE_BUTTON, null, () => window.open(liveUrl(this), "_blank"));
        w.serialize = false; // not saved in the workflow, not sent as an input
        w.options = { ...(w.options || {}), serialize: false };
      };
    }
    const onExecuted = nodeType.prototype.onExecuted;
    nodeType.prototype.onExecuted = function (message) {
      onExecuted?.apply(this, arguments);
      const t = message?.text;
      if (t !== undefined && t !== null) showText(this, Array.isArray(t) ? t.join("\n") : String(t));
      if (VIDEO_NODES.has(nodeData.name)) {
        const key = this.graph && this.graph.isRootGraph === false ? `${this.graph.id}:${this.id}` : String(this.id);
        if (app.nodePreviewImages) delete app.nodePreviewImages[key];
        this.imgs = undefined;
        dropWidget(this, "$$canvas-image-preview");
        dropWidget(this, "$$comfy_animation_preview");
      }
      this.setDirtyCanvas?.(true, true);
    };
  },
});
