"""The shipped example workflows, written as compact graphs and built into the editor's format.

``workflows/*.json`` are generated from these specs against a live server's ``/object_info``
(``python tempo.py build-workflows``), so every widget value sits where the editor expects
it; a test checks that the committed files are what the specs build.
"""

from __future__ import annotations

import json
import os

from ..client.local import PACK_ROOT
from ..client.workflow import input_default, input_names, input_spec, spec_type_and_options, widget_names
from .checkpoints import APT_MODEL, CAUSAL_MODEL, EXAMPLE_IMAGE, EXAMPLE_VIDEO, SD15_CKPT, SD15_CONTROLNET, SVD_CKPT, WAN_VAE

WAN_TEXT_ENCODER = "umt5_xxl_fp8_e4m3fn_scaled.safetensors"
VIDEO_PROMPT = "a red fox running through fresh snow in a pine forest, tracking shot, golden hour"
POSITIVE = "a lighthouse on a cliff at dusk, warm light, cinematic photo"
NEGATIVE = "blurry, low quality"


class N:
    """A node of a spec: ``N(id, type, title=None, input=value or (source_id, slot), ...)``."""

    def __init__(self, id: int, node_type: str, title: str | None = None, mode: int = 0, **inputs):
        self.id, self.type, self.title, self.mode, self.inputs = id, node_type, title, mode, inputs


def _sd15_head():
    return [
        N(1, "TempoOneStepImageLoader", ckpt_name=SD15_CKPT, preset="auto"),
        N(2, "CLIPTextEncode", "Positive", text=POSITIVE, clip=(1, 1)),
        N(3, "CLIPTextEncode", "Negative", text=NEGATIVE, clip=(1, 1)),
    ]


def _onestep_tail(first: int, latent: int, strength: float, positive=(2, 0), negative=(3, 0), name="txt2img"):
    """Schedule, sampler, SamplerCustom, decode, save: nodes ``first`` onwards."""
    f = first
    return [
        N(f, "TempoOneStepSigmas", model=(1, 0), steps=1, strength=strength),
        N(f + 1, "TempoOneStepSampler", renoise="auto"),
        N(f + 2, "SamplerCustom", model=(1, 0), add_noise=True, noise_seed=42, cfg=1.0, positive=positive,
          negative=negative, sampler=(f + 1, 0), sigmas=(f, 0), latent_image=(latent, 0)),
        N(f + 3, "VAEDecode", samples=(f + 2, 0), vae=(1, 2)),
        N(f + 4, "SaveImage", filename_prefix=f"tempo/onestep_{name}", images=(f + 3, 0)),
    ]


def onestep_txt2img():
    return "One-step text-to-image with native SamplerCustom: Tempo schedule + Tempo sampler", _sd15_head() + [
        N(4, "EmptyLatentImage", width=512, height=512, batch_size=1),
    ] + _onestep_tail(5, 4, 1.0)


def onestep_img2img():
    return "One-step img2img: the picture is encoded, noised to the strength's timestep and denoised once", \
        _sd15_head() + [
            N(4, "LoadImage", image=EXAMPLE_IMAGE),
            N(5, "ImageScale", upscale_method="bilinear", width=512, height=512, crop="center", image=(4, 0)),
            N(6, "VAEEncode", pixels=(5, 0), vae=(1, 2)),
        ] + _onestep_tail(7, 6, 0.6, name="img2img")


def _controlnet_onestep(name: str):
    """Nodes 1-14: a one-step image guided by a Canny edge map (native ControlNet nodes), saved as ``name``."""
    return _sd15_head() + [
        N(4, "LoadImage", image=EXAMPLE_IMAGE),
        N(5, "ImageScale", upscale_method="bilinear", width=512, height=512, crop="center", image=(4, 0)),
        N(6, "Canny", low_threshold=0.4, high_threshold=0.8, image=(5, 0)),
        N(7, "ControlNetLoader", control_net_name=SD15_CONTROLNET),
        N(8, "ControlNetApplyAdvanced", strength=1.0, start_percent=0.0, end_percent=1.0, positive=(2, 0),
          negative=(3, 0), control_net=(7, 0), image=(6, 0), vae=(1, 2)),
        N(9, "EmptyLatentImage", width=512, height=512, batch_size=1),
    ] + _onestep_tail(10, 9, 1.0, positive=(8, 0), negative=(8, 1), name=name)


def onestep_controlnet():
    return ("One-step ControlNet: native ControlNetLoader + ControlNetApplyAdvanced on a Canny edge map",
            _controlnet_onestep("controlnet"))


def onestep_batch():
    return "A batch of images in one step with the one-node Tempo One-Step Generate", [
        N(1, "TempoOneStepImageLoader", ckpt_name=SD15_CKPT, preset="auto"),
        N(2, "CLIPTextEncode", "Positive", text=POSITIVE, clip=(1, 1)),
        N(3, "EmptyLatentImage", width=512, height=512, batch_size=4),
        N(4, "TempoOneStepGenerate", model=(1, 0), positive=(2, 0), latent=(3, 0), seed=42, steps=1,
          strength=1.0, cfg=1.0),
        N(5, "VAEDecode", samples=(4, 0), vae=(1, 2)),
        N(6, "SaveImage", filename_prefix="tempo/onestep_batch", images=(5, 0)),
    ]


def _wan_text_and_vae():
    """Nodes 2-4: the native Wan text encoder, the prompt, the Wan VAE."""
    return [
        N(2, "CLIPLoader", clip_name=WAN_TEXT_ENCODER, type="wan", device="default"),
        N(3, "CLIPTextEncode", "Prompt", text=VIDEO_PROMPT, clip=(2, 0)),
        N(4, "VAELoader", vae_name=WAN_VAE),
    ]


def _causal_head():
    return [N(1, "TempoCausalVideoLoader", model_name=CAUSAL_MODEL, weight_dtype="default")] + _wan_text_and_vae()


def causal_t2v_mp4():
    return "Causal text-to-video (Self Forcing), streamed block by block to an H.264 mp4", _causal_head() + [
        N(5, "TempoCausalVideoSampler", model=(1, 0), positive=(3, 0), width=832, height=480, length=81, seed=42,
          schedule="Self Forcing", frames_per_block="auto", cache="full"),
        N(6, "TempoCausalVideoSaveMP4", video=(5, 0), vae=(4, 0), filename_prefix="tempo/causal_t2v", fps=16.0, crf=19),
    ]


def causal_long_rolling():
    return ("A 40-second causal video with a rolling KV cache of the trained context (each block attends to 21 latent "
            "frames: 3 sink frames, the latest ones and itself): memory stays constant however long it runs"), \
        _causal_head() + [
        N(5, "TempoCausalVideoSampler", model=(1, 0), positive=(3, 0), width=832, height=480, length=633, seed=42,
          schedule="Self Forcing", frames_per_block="auto", cache="preset"),
        N(6, "TempoCausalVideoSaveMP4", video=(5, 0), vae=(4, 0), filename_prefix="tempo/causal_long", fps=16.0, crf=19),
    ]


def causal_i2v():
    return "Causal image-to-video: the start image is encoded and prefills the KV cache", _causal_head() + [
        N(5, "LoadImage", image=EXAMPLE_IMAGE),
        N(6, "ImageScale", upscale_method="bilinear", width=832, height=480, crop="center", image=(5, 0)),
        N(7, "VAEEncode", pixels=(6, 0), vae=(4, 0)),
        N(8, "TempoCausalVideoSampler", model=(1, 0), positive=(3, 0), width=832, height=480, length=85, seed=42,
          schedule="Self Forcing", frames_per_block="auto", cache="preset",
          start_latent=(7, 0)),
        N(9, "TempoCausalVideoSaveMP4", video=(8, 0), vae=(4, 0), filename_prefix="tempo/causal_i2v", fps=16.0, crf=19),
    ]


def causal_continue():
    return ("Continuation: a clip, then a second clip whose cache is prefilled with the first one's last latent "
            "frames; the final latent is saved so a later job can extend it again"), _causal_head() + [
        N(5, "TempoCausalVideoSampler", "Clip 1", model=(1, 0), positive=(3, 0), width=832, height=480, length=81,
          seed=42, schedule="Self Forcing", frames_per_block="auto", cache="preset"),
        N(6, "TempoCausalVideoSaveMP4", "Save clip 1", video=(5, 0), vae=(4, 0), filename_prefix="tempo/causal_clip1",
          fps=16.0, crf=19),
        N(7, "TempoCausalVideoSampler", "Clip 2", model=(1, 0), positive=(3, 0), width=832, height=480, length=84,
          seed=43, schedule="Self Forcing", frames_per_block="auto", cache="preset",
          continue_from=(6, 0), context_frames=3),
        N(8, "TempoCausalVideoSaveMP4", "Save clip 2", video=(7, 0), vae=(4, 0), filename_prefix="tempo/causal_clip2",
          fps=16.0, crf=19),
        N(9, "SaveLatent", samples=(8, 0), filename_prefix="tempo/causal_clip2"),
    ]


TIMELINE_PROMPTS = [
    (0.0, "a red fox trots through fresh snow in a pine forest, tracking shot, golden hour"),
    (10.0, "the red fox stops and looks up as snow starts falling, tracking shot, golden hour"),
    (20.0, "the red fox runs off between the pine trees into the falling snow, tracking shot, golden hour"),
]


def causal_prompt_timeline():
    nodes = [N(1, "TempoCausalVideoLoader", model_name=CAUSAL_MODEL, weight_dtype="default"),
             N(2, "CLIPLoader", clip_name=WAN_TEXT_ENCODER, type="wan", device="default"),
             N(4, "VAELoader", vae_name=WAN_VAE)]
    previous = None
    for i, (start, text) in enumerate(TIMELINE_PROMPTS):
        nid = 10 + 2 * i
        nodes.append(N(nid, "CLIPTextEncode", f"Prompt {i + 1}", text=text, clip=(2, 0)))
        add = dict(conditioning=(nid, 0), start=start, units="seconds", fps=16.0, label=text.split(",")[0])
        if previous is not None:
            add["timeline"] = (previous, 0)
        nodes.append(N(nid + 1, "TempoPromptTimelineAdd", f"Timeline {i + 1}", **add))
        previous = nid + 1
    return ("A 30-second rolling causal video that follows three prompts (0 s, 10 s, 20 s); at each switch the cache "
            "is re-computed under the new prompt (LongLive), so the motion carries on"), nodes + [
        N(5, "TempoCausalVideoSampler", model=(1, 0), timeline=(previous, 0), switch="re-cache", width=832,
          height=480, length=489, seed=42, schedule="Self Forcing", frames_per_block="auto", cache="preset"),
        N(6, "TempoCausalVideoSaveMP4", video=(5, 0), vae=(4, 0), filename_prefix="tempo/causal_timeline", fps=16.0,
          crf=19),
    ]


def causal_v2v():
    return ("Streaming video-to-video: a clip (Load Video) is encoded block by block, noised to the strength and "
            "restyled by the prompt with the KV cache; the output is as long as the input"), _causal_head() + [
        N(5, "LoadVideo", file=EXAMPLE_VIDEO),
        N(6, "GetVideoComponents", video=(5, 0)),
        N(7, "ImageScale", upscale_method="bilinear", width=832, height=480, crop="center", image=(6, 0)),
        N(8, "TempoCausalVideoSampler", model=(1, 0), positive=(3, 0), input_video=(7, 0), strength=0.7, width=832,
          height=480, length=81, seed=42, schedule="Self Forcing", frames_per_block="auto", cache="preset"),
        N(9, "TempoCausalVideoSaveMP4", video=(8, 0), vae=(4, 0), filename_prefix="tempo/causal_v2v", fps=16.0, crf=19),
    ]


def apt_t2v_mp4():
    return "APT-style one-step text-to-video: one forward pass of a Wan 2.1 DiT, saved with native CreateVideo + SaveVideo", [
        N(1, "TempoOneStepVideoLoader", model_name=APT_MODEL, weight_dtype="default", timestep=0.0, shift=0.0),
    ] + _wan_text_and_vae() + [
        N(5, "EmptyHunyuanLatentVideo", width=832, height=480, length=49, batch_size=1),
        N(6, "TempoOneStepGenerate", model=(1, 0), positive=(3, 0), latent=(5, 0), seed=42, steps=1, strength=1.0,
          cfg=1.0),
        N(7, "VAEDecode", samples=(6, 0), vae=(4, 0)),
        N(8, "CreateVideo", images=(7, 0), fps=16.0),
        N(9, "SaveVideo", video=(8, 0), filename_prefix="tempo/apt_t2v", format="mp4", codec="h264"),
    ]


def _svd_tail(first: int, image: tuple, steps: int, cfg: float, name: str):
    """SVD image-to-video from ``image``: conditioning, per-frame linear CFG, one-step core, mp4.
    fps 7 in ComfyUI's node reaches the UNet as fps_id 6 (ComfyUI passes fps - 1), the value of
    Stability's reference script and of diffusers' default; augmentation 0.02 as there too."""
    f = first
    return [
        N(f, "TempoSVDLoader", ckpt_name=SVD_CKPT, preset="auto", weight_dtype="default"),
        N(f + 1, "ImageScale", upscale_method="bilinear", width=1024, height=576, crop="center", image=image),
        N(f + 2, "SVD_img2vid_Conditioning", clip_vision=(f, 1), init_image=(f + 1, 0), vae=(f, 2), width=1024,
          height=576, video_frames=25, motion_bucket_id=127, fps=7, augmentation_level=0.02),
        N(f + 3, "VideoLinearCFGGuidance", model=(f, 0), min_cfg=1.0),
        N(f + 4, "TempoOneStepGenerate", model=(f + 3, 0), positive=(f + 2, 0), negative=(f + 2, 1),
          latent=(f + 2, 2), seed=42, steps=steps, strength=1.0, cfg=cfg),
        N(f + 5, "VAEDecode", samples=(f + 4, 0), vae=(f, 2)),
        N(f + 6, "CreateVideo", images=(f + 5, 0), fps=7.0),
        N(f + 7, "SaveVideo", video=(f + 6, 0), filename_prefix=f"tempo/{name}", format="mp4", codec="h264"),
    ]


def svd_onestep():
    return "SVD image-to-video in one step (25 frames at 1024x576)", [
        N(1, "LoadImage", image=EXAMPLE_IMAGE)] + _svd_tail(2, (1, 0), 1, 1.0, "svd_onestep")


def svd_4step():
    return "SVD image-to-video in four Euler steps with per-frame linear CFG (1.0 to 2.5)", [
        N(1, "LoadImage", image=EXAMPLE_IMAGE)] + _svd_tail(2, (1, 0), 4, 2.5, "svd_4step")


def svd_from_onestep_image():
    return "A one-step image becomes the start frame of a one-step SVD clip", _sd15_head() + [
        N(4, "EmptyLatentImage", width=512, height=512, batch_size=1),
    ] + _onestep_tail(5, 4, 1.0, name="svd_start")[:-1] + _svd_tail(10, (8, 0), 1, 1.0, "svd_from_image")


def svd_controlnet_start():
    return ("A ControlNet-guided one-step start frame (Canny edges), animated by SVD",
            _controlnet_onestep("svd_cn")[:-1] + _svd_tail(15, (13, 0), 1, 1.0, "svd_controlnet"))


SPECS = {
    "onestep_txt2img.json": onestep_txt2img,
    "onestep_img2img.json": onestep_img2img,
    "onestep_controlnet.json": onestep_controlnet,
    "onestep_batch.json": onestep_batch,
    "causal_t2v_mp4.json": causal_t2v_mp4,
    "causal_long_rolling.json": causal_long_rolling,
    "causal_i2v.json": causal_i2v,
    "causal_continue.json": causal_continue,
    "causal_prompt_timeline.json": causal_prompt_timeline,
    "causal_v2v.json": causal_v2v,
    "apt_t2v_mp4.json": apt_t2v_mp4,
    "svd_onestep.json": svd_onestep,
    "svd_4step.json": svd_4step,
    "svd_from_onestep_image.json": svd_from_onestep_image,
    "svd_controlnet_start.json": svd_controlnet_start,
}


def use_saved_conditioning(api: dict, name: str) -> dict:
    """Replace every Wan text encoder branch (CLIPLoader type wan -> CLIPTextEncode) of an API prompt
    with 'Tempo Load Conditioning' of a saved file. The demo and the tests do this because the Wan
    text encoder (umT5-XXL, 5.7B parameters) does not fit a small machine; the rest of the graph
    runs as shipped."""
    api = {k: dict(v, inputs=dict(v["inputs"])) for k, v in api.items()}
    loaders = [k for k, v in api.items() if v["class_type"] == "CLIPLoader" and v["inputs"].get("type") == "wan"]
    for k, v in list(api.items()):
        if v["class_type"] == "CLIPTextEncode" and isinstance(v["inputs"].get("clip"), list) \
                and v["inputs"]["clip"][0] in loaders:
            api[k] = {"class_type": "TempoLoadConditioning", "inputs": {"name": name},
                      "_meta": {"title": (v.get("_meta") or {}).get("title", "Prompt") + " (saved)"}}
    for k in loaders:
        del api[k]
    return api


def build_ui(description: str, nodes: list[N], object_info: dict) -> dict:
    """An editor-format workflow (version 0.4) for ``nodes``, laid out left to right."""
    links, ui_nodes = [], {}
    by_id = {n.id: n for n in nodes}
    for col, n in enumerate(nodes):
        info = object_info[n.type]
        widgets = widget_names(info)
        widget_set = {w for w, _ in widgets}
        order = input_names(info)
        all_inputs = [name for s in ("required", "optional") for name in order.get(s, [])]
        unknown = set(n.inputs) - set(all_inputs)
        if unknown:
            raise ValueError(f"{n.type} has no inputs {sorted(unknown)}")
        inputs = []
        for name in all_inputs:
            value = n.inputs.get(name)
            spec = input_spec(info, name)
            kind, _ = spec_type_and_options(spec)
            linked = isinstance(value, tuple)
            if name in widget_set and not linked:
                continue
            entry = {"name": name, "type": kind, "link": None}
            if name in widget_set:
                entry["widget"] = {"name": name}
            inputs.append(entry)
        values = []
        for name, extra in widgets:
            value = n.inputs.get(name, input_default(info, name))
            values.append(None if isinstance(value, tuple) else value)
            if extra:
                kind, _ = spec_type_and_options(input_spec(info, name))
                values.append("fixed" if kind == "INT" else "image")
        ui_nodes[n.id] = {
            "id": n.id, "type": n.type, "pos": [50 + 330 * col, 100 + 60 * (col % 2)], "size": [300, 120],
            "flags": {}, "order": col, "mode": n.mode, "inputs": inputs,
            "outputs": [{"name": oname, "type": otype if isinstance(otype, str) else "COMBO", "links": [],
                         "slot_index": i}
                        for i, (oname, otype) in enumerate(zip(info.get("output_name") or info["output"],
                                                                info["output"]))],
            "properties": {"Node name for S&R": n.type}, "widgets_values": values,
        }
        if n.title:
            ui_nodes[n.id]["title"] = n.title
    for n in nodes:
        for slot, inp in enumerate(ui_nodes[n.id]["inputs"]):
            value = n.inputs.get(inp["name"])
            if not isinstance(value, tuple):
                continue
            src, src_slot = value
            if src not in by_id:
                raise ValueError(f"node {n.id} input {inp['name']} links to missing node {src}")
            lid = len(links) + 1
            out = ui_nodes[src]["outputs"][src_slot]
            links.append([lid, src, src_slot, n.id, slot, out["type"]])
            inp["link"] = lid
            out["links"].append(lid)
    return {"last_node_id": max(by_id), "last_link_id": len(links), "nodes": list(ui_nodes.values()),
            "links": links, "groups": [], "config": {},
            "extra": {"info": {"description": description, "generated_by": "Tempo factory/workflows.py"}},
            "version": 0.4}


def build_all(object_info: dict, out_dir: str | None = None) -> dict[str, dict]:
    out_dir = out_dir or os.path.join(PACK_ROOT, "workflows")
    built = {}
    for name, spec in SPECS.items():
        description, nodes = spec()
        built[name] = build_ui(description, nodes, object_info)
    if out_dir:
        for name, wf in built.items():
            with open(os.path.join(out_dir, name), "w") as f:
                json.dump(wf, f, indent=1)
                f.write("\n")
    return built


def add_command(sub):
    """``build-workflows`` (for developers) on tempo.py's command line."""
    from ..client.cli import add_server_args

    build = sub.add_parser("build-workflows", help="(developers) regenerate workflows/*.json from factory/workflows.py")
    add_server_args(build)
    build.set_defaults(func=_build_command)


def _build_command(args) -> int:
    from ..client import ComfyServer, parse_headers

    built = build_all(ComfyServer(args.server, parse_headers(args.header)).object_info())
    print("\n".join(f"wrote workflows/{n}" for n in built))
    return 0
