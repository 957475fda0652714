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
from .checkpoints import (APT_MODEL, CAUSAL_MODEL, EXAMPLE_IMAGE, EXAMPLE_VIDEO, LIGHTNING_HIGH_LORA, LIGHTNING_LOW_LORA,
                          LIGHTX2V_I2V_LORA, RCM_MODEL, SD15_CKPT, SD15_CONTROLNET, SVD_CKPT, TAEHV_DEMO, WAN21_I2V_BASE,
                          WAN22_HIGH, WAN22_LOW, WAN_VAE)

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


def causal_realtime():
    return ("Real-time causal text-to-video: Tempo Causal Speed writes the KV cache in place, runs the layers "
            "compiled and decodes each block on a worker while the next is made; the TAEHV tiny decoder keeps up "
            "with the generator. The live page plays it as it is made"), _causal_head() + [
        N(5, "TempoCausalSpeed", model=(1, 0), in_place_cache=True, attention="auto", compile="layers",
          overlap_decode="auto"),
        N(6, "TempoCausalVideoSampler", model=(5, 0), positive=(3, 0), width=832, height=480, length=81, seed=42,
          schedule="Self Forcing", frames_per_block="auto", cache="full"),
        N(7, "TempoCausalVideoSaveMP4", video=(6, 0), vae=(4, 0), filename_prefix="tempo/causal_realtime", fps=16.0,
          crf=19, decoder=TAEHV_DEMO),
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


def _video_tail(first: int, samples: tuple, vae: tuple, name: str):
    return [
        N(first, "VAEDecode", samples=samples, vae=vae),
        N(first + 1, "CreateVideo", images=(first, 0), fps=16.0),
        N(first + 2, "SaveVideo", video=(first + 1, 0), filename_prefix=f"tempo/{name}", format="mp4", codec="h264"),
    ]


def lightning_t2v_two_experts():
    return ("Wan 2.2 A14B text-to-video in 4 steps with the Lightning LoRAs: the high-noise expert for the steps "
            "above t = 875, the low-noise expert for the rest, in one Tempo Two-Expert Generate"), [
        N(1, "UNETLoader", "High-noise expert", unet_name=WAN22_HIGH, weight_dtype="default"),
        N(2, "UNETLoader", "Low-noise expert", unet_name=WAN22_LOW, weight_dtype="default"),
        N(3, "LoraLoaderModelOnly", "Lightning LoRA (high noise)", model=(1, 0), lora_name=LIGHTNING_HIGH_LORA,
          strength_model=1.0),
        N(4, "LoraLoaderModelOnly", "Lightning LoRA (low noise)", model=(2, 0), lora_name=LIGHTNING_LOW_LORA,
          strength_model=1.0),
        N(5, "TempoOneStepPreset", "Preset (high noise)", model=(3, 0), preset="Wan2.2-Lightning T2V"),
        N(6, "TempoOneStepPreset", "Preset (low noise)", model=(4, 0), preset="Wan2.2-Lightning T2V"),
        N(7, "CLIPLoader", clip_name=WAN_TEXT_ENCODER, type="wan", device="default"),
        N(8, "CLIPTextEncode", "Prompt", text=VIDEO_PROMPT, clip=(7, 0)),
        N(9, "VAELoader", vae_name=WAN_VAE),
        N(10, "EmptyHunyuanLatentVideo", width=832, height=480, length=81, batch_size=1),
        N(11, "TempoTwoExpertGenerate", model_high=(5, 0), model_low=(6, 0), positive=(8, 0), latent=(10, 0),
          seed=42, steps=4, cfg=1.0),
    ] + _video_tail(12, (11, 0), (9, 0), "lightning_t2v")


def lightx2v_i2v_lora():
    return ("lightx2v's 4-step LoRA on a Wan 2.1 image-to-video base loaded by ComfyUI's own Load Diffusion Model: "
            "the start image through WanImageToVideo, four steps with fresh noise between them"), [
        N(1, "UNETLoader", "Wan 2.1 I2V base", unet_name=WAN21_I2V_BASE, weight_dtype="default"),
        N(2, "LoraLoaderModelOnly", "lightx2v 4-step LoRA", model=(1, 0), lora_name=LIGHTX2V_I2V_LORA,
          strength_model=1.0),
        N(3, "TempoOneStepPreset", model=(2, 0), preset="lightx2v Wan 2.1"),
        N(4, "CLIPLoader", clip_name=WAN_TEXT_ENCODER, type="wan", device="default"),
        N(5, "CLIPTextEncode", "Prompt", text=VIDEO_PROMPT, clip=(4, 0)),
        N(6, "CLIPTextEncode", "Negative (unused at cfg 1)", text="", clip=(4, 0)),
        N(7, "VAELoader", vae_name=WAN_VAE),
        N(8, "LoadImage", image=EXAMPLE_IMAGE),
        N(9, "WanImageToVideo", positive=(5, 0), negative=(6, 0), vae=(7, 0), start_image=(8, 0), width=832,
          height=480, length=81, batch_size=1),
        N(10, "TempoOneStepGenerate", model=(3, 0), positive=(9, 0), latent=(9, 2), seed=42, steps=4, strength=1.0,
          cfg=1.0),
    ] + _video_tail(11, (10, 0), (7, 0), "lightx2v_i2v")


def rcm_t2v_4step():
    return ("rCM few-step text-to-video: an rCM .pt as released (net. keys) in 4 steps, TrigFlow times as sigmas, "
            "fresh noise between steps"), [
        N(1, "TempoOneStepVideoLoader", model_name=RCM_MODEL, weight_dtype="default", timestep=0.0, shift=0.0),
        N(2, "TempoOneStepPreset", model=(1, 0), preset="rCM"),
        N(3, "CLIPLoader", clip_name=WAN_TEXT_ENCODER, type="wan", device="default"),
        N(4, "CLIPTextEncode", "Prompt", text=VIDEO_PROMPT, clip=(3, 0)),
        N(5, "VAELoader", vae_name=WAN_VAE),
        N(6, "EmptyHunyuanLatentVideo", width=832, height=480, length=77, batch_size=1),
        N(7, "TempoOneStepGenerate", model=(2, 0), positive=(4, 0), latent=(6, 0), seed=42, steps=4, strength=1.0,
          cfg=1.0),
    ] + _video_tail(8, (7, 0), (5, 0), "rcm_t2v")


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
    "01 One-step text to image.json": onestep_txt2img,
    "02 One-step image to image.json": onestep_img2img,
    "03 One-step ControlNet from edges.json": onestep_controlnet,
    "04 One-step batch of four.json": onestep_batch,
    "05 Causal text to video, streamed to mp4.json": causal_t2v_mp4,
    "06 Causal 40-second video, rolling cache.json": causal_long_rolling,
    "07 Causal image to video.json": causal_i2v,
    "08 Causal clip and its continuation.json": causal_continue,
    "09 Causal video that follows a prompt timeline.json": causal_prompt_timeline,
    "10 Causal video to video restyle.json": causal_v2v,
    "11 One-step text to video (APT, Wan 2.1).json": apt_t2v_mp4,
    "12 SVD image to video in one step.json": svd_onestep,
    "13 SVD image to video in four steps.json": svd_4step,
    "14 One-step image animated by SVD.json": svd_from_onestep_image,
    "15 ControlNet start frame animated by SVD.json": svd_controlnet_start,
    "16 Wan 2.2 Lightning text to video, two experts.json": lightning_t2v_two_experts,
    "17 lightx2v image to video, LoRA on a core loader.json": lightx2v_i2v_lora,
    "18 rCM text to video in 4 steps.json": rcm_t2v_4step,
    "19 Causal real-time stream, fast settings.json": causal_realtime,
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


# Layout: left-to-right stages, each a titled group; within a stage, columns by dependency.
STAGES = ("Load", "Condition", "Sample", "Decode and save")
_SAMPLE = {"TempoOneStepSigmas", "TempoOneStepSampler", "TempoTCDSampler", "SamplerCustom", "TempoOneStepGenerate",
           "TempoTwoExpertGenerate",
           "TempoCausalVideoSampler", "KSampler"}
_SAVE = {"VAEDecode", "SaveImage", "PreviewImage", "CreateVideo", "SaveVideo", "TempoCausalVideoSaveMP4",
         "TempoCausalVideoDecode", "SaveLatent"}
_LOAD = {"LoadImage", "LoadVideo", "TempoLoadConditioning", "CheckpointLoaderSimple"}
STAGE_COLORS = {"Load": "#3f789e", "Condition": "#8a8a3f", "Sample": "#a1309b", "Decode and save": "#3f8a5a"}
GAP_X, GAP_Y, GROUP_GAP, PAD, TITLE_H = 50, 70, 90, 24, 84
SLOT_STEP, ROW_GAP = 20, 120
LANE_TOP, LANE_STEP, LANE_GAP, TITLE_BAR, CLIMB_SWING = 44, 16, 30, 30, 0.14  # a row's first lane below its group titles; lanes apart; more gap after a column a lane climbs from (at least, and per pixel climbed); a node's title bar
WIDGET_H, SLOT_H, MULTILINE_H = 26, 22, 110
PREVIEW_HEIGHT = {"LoadImage": 320, "LoadVideo": 360}  # the editor shows the picked file under the widgets


def stage_of(node_type: str) -> int:
    if node_type.endswith("Loader") or node_type in _LOAD:
        return 0
    if node_type in _SAMPLE:
        return 2
    if node_type in _SAVE:
        return 3
    return 1


def _node_size(n: N, info: dict, widgets: list, n_inputs: int, n_outputs: int) -> list[int]:
    """A size that shows every widget's label and value (the editor widens a node only to its title)."""
    chars = len(n.title or info.get("display_name") or n.type) + 4
    height = 34 + SLOT_H * max(n_inputs, n_outputs)
    for name, _ in widgets:
        value = n.inputs.get(name, input_default(info, name))
        if isinstance(value, tuple):
            continue
        kind, options = spec_type_and_options(input_spec(info, name))
        if kind == "STRING" and options.get("multiline"):
            height += MULTILINE_H
            continue
        chars = max(chars, len(name) + len(f"{value:g}" if isinstance(value, float) else str(value)) + 6)
        height += WIDGET_H
    return [int(min(max(7.2 * chars + 40, 280), 560)), max(int(height + 12), PREVIEW_HEIGHT.get(n.type, 0))]


def layout(nodes: list[N]) -> dict:
    """{node id: (phase, stage, column)}: its stage, its phase (a stage that feeds an earlier stage
    starts a new phase, one row lower: an image made, then animated), and its column inside the
    stage (the longest dependency path there)."""
    by_id = {n.id: n for n in nodes}
    deps = {n.id: [v[0] for v in n.inputs.values() if isinstance(v, tuple)] for n in nodes}
    phase, sub = {}, {}

    def place(i):
        if i in phase:
            return
        for d in deps[i]:
            place(d)
        st = stage_of(by_id[i].type)
        phase[i] = max([phase[d] + (1 if stage_of(by_id[d].type) > st else 0) for d in deps[i]] or [0])

    for n in nodes:
        place(n.id)
    for i in reversed(list(phase)):  # a node sits with the first phase that uses it (SVD's loader, its CFG)
        users = [m.id for m in nodes if i in deps[m.id]]
        later = min((phase[u] for u in users), default=phase[i])
        if later > phase[i] and all(stage_of(by_id[u].type) >= stage_of(by_id[i].type)
                                    for u in users if phase[u] == later):
            phase[i] = later
    for i in phase:  # columns inside a stage (phase holds the nodes in dependency order)
        sub[i] = max([sub[d] + 1 for d in deps[i] if phase[d] == phase[i]
                      and stage_of(by_id[d].type) == stage_of(by_id[i].type)] or [0])
    return {n.id: (phase[n.id], stage_of(n.type), sub[n.id]) for n in nodes}


def build_ui(description: str, nodes: list[N], object_info: dict, note: str = "", models: list | None = None) -> dict:
    """An editor-format workflow (version 0.4) for ``nodes``: stages left to right in titled groups,
    a note saying what the workflow needs, and the model files the editor can offer to download."""
    links, ui_nodes = [], {}
    by_id = {n.id: n for n in nodes}
    keys = layout(nodes)
    for col, n in enumerate(sorted(nodes, key=lambda n: (keys[n.id], n.id))):
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
        outputs = [{"name": oname, "type": otype if isinstance(otype, str) else "COMBO", "links": [], "slot_index": i}
                   for i, (oname, otype) in enumerate(zip(info.get("output_name") or info["output"], info["output"]))]
        slot_inputs = sum(1 for i in inputs if "widget" not in i)
        ui_nodes[n.id] = {
            "id": n.id, "type": n.type, "pos": [0, 0], "size": _node_size(n, info, widgets, slot_inputs, len(outputs)),
            "flags": {}, "order": col, "mode": n.mode, "inputs": inputs, "outputs": outputs,
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
    groups, reroutes, extensions = _place(nodes, keys, ui_nodes, links)
    all_nodes = list(ui_nodes.values())
    last_id = max(by_id)
    if note:
        top = min(g["bounding"][1] for g in groups)
        all_nodes.append({"id": last_id + 1, "type": "MarkdownNote", "pos": [0, top - 40 - _note_height(note)],
                          "size": [760, _note_height(note)], "flags": {}, "order": len(all_nodes), "mode": 0,
                          "inputs": [], "outputs": [], "title": "What this workflow needs",
                          "properties": {}, "widgets_values": [note], "color": "#432", "bgcolor": "#653"})
        last_id += 1
    wf = {"last_node_id": last_id, "last_link_id": len(links), "nodes": all_nodes,
          "links": links, "groups": groups, "config": {},
          "extra": {"info": {"description": description, "generated_by": "Tempo factory/workflows.py"}},
          "version": 0.4}
    if reroutes:  # the editor's own link reroutes (drawing only: the prompt is the same without them)
        wf["extra"].update(reroutes=reroutes, linkExtensions=extensions)
    if models:
        wf["models"] = models
    return wf


def _note_height(note: str) -> int:
    return 50 + 17 * sum(1 + len(line) // 120 for line in note.splitlines())


def _place(nodes: list[N], keys: dict, ui_nodes: dict, links: list) -> tuple[list[dict], list[dict]]:
    """Positions for every node, one titled group per stage (and phase), and the reroutes that keep
    links out from behind nodes: a link between neighbouring columns runs in the gap between them;
    one that would cross a node runs up (or down) its source's gap to a lane of its own above the
    row (or between rows), along it, and down the gap before its target."""
    groups_of: dict = {}
    for n in nodes:
        ph, st, sub = keys[n.id]
        groups_of.setdefault((ph, st), {}).setdefault(sub, []).append(n.id)
    columns = []  # node ids per column, top to bottom
    column_of = {}
    for gkey in sorted(groups_of):
        for sub in sorted(groups_of[gkey]):
            for i in groups_of[gkey][sub]:
                column_of[i] = len(columns)
            columns.append(sorted(groups_of[gkey][sub]))
    spans = _columns_x(groups_of, ui_nodes, column_of, {})
    sources = {}
    for _, src, src_slot, dst, dst_slot, _ in links:
        sources.setdefault(dst, []).append((src, src_slot))
    for c in columns:  # top to bottom in the order of what feeds them (fewer crossing links)
        def feed_y(i):  # sources in earlier columns are placed (y > 0); later ones are not counted
            ys = [ui_nodes[s]["pos"][1] + SLOT_STEP * k for s, k in sources.get(i, []) if ui_nodes[s]["pos"][1]]
            return sum(ys) / len(ys) if ys else 0.0
        c.sort(key=lambda i: (feed_y(i), i))
        y = TITLE_H
        for i in c:
            ui_nodes[i]["pos"][1] = y
            y += ui_nodes[i]["size"][1] + GAP_Y
    phase_of = {n.id: keys[n.id][0] for n in nodes}
    lanes: dict = {}
    row_top, height = _stack_rows(nodes, phase_of, ui_nodes, lanes)
    routed = [link for link in links if _crosses_a_node(link, ui_nodes, column_of, phase_of)]
    extra = {}
    if routed:  # a link that climbs from its source to a lane swings out, the more the higher it climbs:
        for link in routed:  # a wider gap after its column (the editor's spline overshoots ~12% of the climb)
            y = ui_nodes[link[1]]["pos"][1] - row_top[phase_of[link[1]]]
            climb = y if phase_of[link[1]] == phase_of[link[3]] else height[phase_of[link[1]]] - y + ROW_GAP
            col = column_of[link[1]]
            extra[col] = max(extra.get(col, LANE_GAP), int(CLIMB_SWING * climb) + 2 * PAD - GAP_X)
        spans = _columns_x(groups_of, ui_nodes, column_of, extra)
        routed = [link for link in links if _crosses_a_node(link, ui_nodes, column_of, phase_of)]
    for link in routed:  # a lane per routed link, in the row of its target (above its nodes)
        lanes.setdefault(phase_of[link[3]], []).append(link[0])
    if routed:  # the rows make room for their lanes, and the nodes move down with them
        for n in nodes:
            ui_nodes[n.id]["pos"][1] -= row_top[phase_of[n.id]]
        row_top, height = _stack_rows(nodes, phase_of, ui_nodes, lanes)
    reroutes, extensions = [], []
    for link in routed:
        lid, src, src_slot, dst, dst_slot, _ = link
        ph = phase_of[dst]
        lane = row_top[ph] + LANE_TOP + LANE_STEP * lanes[ph].index(lid)
        if phase_of[src] != ph:  # down to the target's row: the lane runs in the gap above it
            lane = row_top[ph] - ROW_GAP // 2 - LANE_STEP * lanes[ph].index(lid)
        (sx, _), (sw, _) = ui_nodes[src]["pos"], ui_nodes[src]["size"]
        first = {"id": len(reroutes) + 1, "pos": [sx + sw + (GAP_X + extra.get(column_of[src], LANE_GAP)) / 2, lane],
                 "linkIds": [lid]}
        last = {"id": len(reroutes) + 2, "parentId": first["id"],
                "pos": [ui_nodes[dst]["pos"][0] - GAP_X / 2, lane], "linkIds": [lid]}
        reroutes += [first, last]
        extensions.append({"id": lid, "parentId": last["id"]})
    groups, seen = [], {}
    for gkey, gx, gend in spans:  # the groups of a row are as tall as its tallest
        stage = STAGES[gkey[1]]
        seen[stage] = seen.get(stage, 0) + 1
        title = stage if seen[stage] == 1 else f"{stage} ({seen[stage]})"
        groups.append({"id": len(groups) + 1, "title": title,
                       "bounding": [gx, row_top[gkey[0]], gend - gx, height[gkey[0]] + PAD],
                       "color": STAGE_COLORS[stage], "font_size": 24, "flags": {}})
    return groups, reroutes, extensions


def _columns_x(groups_of: dict, ui_nodes: dict, column_of: dict, extra_gap: dict) -> list:
    """Stages left to right in each row, their columns as wide as their widest node, ``extra_gap``
    more after the columns it names; returns each group's (key, left, right)."""
    x, spans, row = 0, [], 0
    for gkey in sorted(groups_of):
        cols = groups_of[gkey]
        if gkey[0] != row:  # a new phase starts a new row of stages, below
            row, x = gkey[0], 0
        gx = x
        x += PAD
        for sub in sorted(cols):
            width = max(ui_nodes[i]["size"][0] for i in cols[sub])
            for i in cols[sub]:
                ui_nodes[i]["pos"][0] = x
                ui_nodes[i]["size"][0] = width
            x += width + GAP_X + extra_gap.get(column_of[cols[sub][0]], 0)
        x -= extra_gap.get(column_of[cols[max(cols)][0]], 0)  # the group's gap is wide enough
        x += PAD - GAP_X
        spans.append((gkey, gx, x))
        x += GROUP_GAP
    return spans


def _stack_rows(nodes: list[N], phase_of: dict, ui_nodes: dict, lanes: dict) -> tuple[dict, dict]:
    """Rows of phases one below the other, each lowered by its lanes; returns each row's top and height."""
    height = {}  # of each row (phase), from its top
    for n in nodes:
        ph = phase_of[n.id]
        ui_nodes[n.id]["pos"][1] += LANE_STEP * len(lanes.get(ph, ()))
        height[ph] = max(height.get(ph, 0), ui_nodes[n.id]["pos"][1] + ui_nodes[n.id]["size"][1])
    row_top, y = {}, 0
    for ph in sorted(height):
        row_top[ph], y = y, y + height[ph] + PAD + ROW_GAP + LANE_STEP * len(lanes.get(ph + 1, ()))
    for n in nodes:
        ui_nodes[n.id]["pos"][1] += row_top[phase_of[n.id]]
    return row_top, height


def _slot_y(node: dict, slot: int, output: bool) -> float:
    """Roughly where the editor draws a slot: outputs and linked inputs one per slot row from the top;
    an input that is a widget sits at its widget's row below them."""
    if output:
        return node["pos"][1] + SLOT_H * (slot + 0.7)
    slots = [i for i in node["inputs"] if "widget" not in i]
    inp = node["inputs"][slot]
    if "widget" not in inp:
        return node["pos"][1] + SLOT_H * (slots.index(inp) + 0.7)
    rows = max(len(slots), len(node["outputs"]))
    widgets = [i for i in node["inputs"] if "widget" in i]
    return node["pos"][1] + SLOT_H * rows + WIDGET_H * (widgets.index(inp) + 0.5)


def _crosses_a_node(link: list, ui_nodes: dict, column_of: dict, phase_of: dict) -> bool:
    """Would the editor's spline for ``link`` (horizontal tangents at both ends, control points a
    quarter of the distance out) pass behind a node, with a margin? A link between neighbouring
    columns of a row stays in the gap between them and never does."""
    _, src, src_slot, dst, dst_slot, _ = link
    if phase_of[src] == phase_of[dst] and column_of[dst] == column_of[src] + 1:
        return False
    a = (ui_nodes[src]["pos"][0] + ui_nodes[src]["size"][0], _slot_y(ui_nodes[src], src_slot, True))
    b = (ui_nodes[dst]["pos"][0], _slot_y(ui_nodes[dst], dst_slot, False))
    d = 0.25 * ((b[0] - a[0]) ** 2 + (b[1] - a[1]) ** 2) ** 0.5
    points = []
    for k in range(65):
        t = k / 64
        u = 1 - t
        points.append((u ** 3 * a[0] + 3 * u * u * t * (a[0] + d) + 3 * u * t * t * (b[0] - d) + t ** 3 * b[0],
                       u ** 3 * a[1] + 3 * u * u * t * a[1] + 3 * u * t * t * b[1] + t ** 3 * b[1]))
    margin = 24
    for i, node in ui_nodes.items():
        if i in (src, dst):
            continue
        (x, y), (w, h) = node["pos"], node["size"]
        if any(x - margin <= px <= x + w + margin and y - TITLE_BAR - margin <= py <= y + h + margin for px, py in points):
            return True
    return False


# What each file a workflow names is, where it goes, and the real file to pick (the shipped widgets
# name the demo's files, so `python tempo.py demo` runs every workflow as it is).
HF = "https://huggingface.co/"
WAN_REPACK = HF + "Comfy-Org/Wan_2.1_ComfyUI_repackaged/resolve/main/split_files/"
WAN22_REPACK = HF + "Comfy-Org/Wan_2.2_ComfyUI_Repackaged/resolve/main/split_files/"
MODEL_FILES = {
    SD15_CKPT: ("checkpoints", "a one-step SD 1.5 checkpoint (DMD2's SD 1.5 model, tianweiy/DMD2 on Hugging Face), or "
                "any SD 1.5 checkpoint with an LCM / Hyper-SD LoRA set by Tempo One-Step Preset", None),
    SD15_CONTROLNET: ("controlnet", "control_v11p_sd15_canny_fp16.safetensors",
                      HF + "comfyanonymous/ControlNet-v1-1_fp16_safetensors/resolve/main/"
                           "control_v11p_sd15_canny_fp16.safetensors"),
    CAUSAL_MODEL: ("diffusion_models", "self_forcing_dmd.pt (gdhe17/Self-Forcing on Hugging Face, checkpoints/), or a "
                   "CausVid / Causal Forcing / LongLive file", None),
    APT_MODEL: ("diffusion_models", "a one-step Wan 2.1 video DiT (APT-style; no public APT weights exist)", None),
    SVD_CKPT: ("checkpoints", "svd_xt.safetensors",
               HF + "stabilityai/stable-video-diffusion-img2vid-xt/resolve/main/svd_xt.safetensors"),
    WAN_VAE: ("vae", "wan_2.1_vae.safetensors", WAN_REPACK + "vae/wan_2.1_vae.safetensors"),
    WAN22_HIGH: ("diffusion_models", "wan2.2_t2v_high_noise_14B_fp8_scaled.safetensors",
                 WAN22_REPACK + "diffusion_models/wan2.2_t2v_high_noise_14B_fp8_scaled.safetensors"),
    WAN22_LOW: ("diffusion_models", "wan2.2_t2v_low_noise_14B_fp8_scaled.safetensors",
                WAN22_REPACK + "diffusion_models/wan2.2_t2v_low_noise_14B_fp8_scaled.safetensors"),
    LIGHTNING_HIGH_LORA: ("loras", "high_noise_model.safetensors",
                          HF + "lightx2v/Wan2.2-Lightning/resolve/main/Wan2.2-T2V-A14B-4steps-lora-rank64-Seko-V1.1/"
                               "high_noise_model.safetensors"),
    LIGHTNING_LOW_LORA: ("loras", "low_noise_model.safetensors",
                         HF + "lightx2v/Wan2.2-Lightning/resolve/main/Wan2.2-T2V-A14B-4steps-lora-rank64-Seko-V1.1/"
                              "low_noise_model.safetensors"),
    WAN21_I2V_BASE: ("diffusion_models", "wan2.1_i2v_480p_14B_fp8_scaled.safetensors",
                     WAN_REPACK + "diffusion_models/wan2.1_i2v_480p_14B_fp8_scaled.safetensors"),
    LIGHTX2V_I2V_LORA: ("loras", "wan2.1_i2v_lora_rank64_lightx2v_4step.safetensors",
                        HF + "lightx2v/Wan2.1-Distill-Loras/resolve/main/wan2.1_i2v_lora_rank64_lightx2v_4step.safetensors"),
    RCM_MODEL: ("diffusion_models", "rCM_Wan2.1_T2V_1.3B_480p.pt (or the 14B files; NVlabs/rcm README, as released: "
                "the .pt loads as it is)", None),
    TAEHV_DEMO: ("vae_approx", "taew2_1.pth (madebyollin/taehv: the tiny decoder for Wan 2.1 latents)",
                 "https://github.com/madebyollin/taehv/raw/main/taew2_1.pth"),
    WAN_TEXT_ENCODER: ("text_encoders", "umt5_xxl_fp8_e4m3fn_scaled.safetensors",
                       WAN_REPACK + "text_encoders/umt5_xxl_fp8_e4m3fn_scaled.safetensors"),
}
# What else to know about a file, said in the note after it.
FILE_HINTS = {
    LIGHTNING_HIGH_LORA: "of Wan2.2-T2V-A14B-4steps-lora-rank64-Seko-V1.1 (the low-noise LoRA has the same name in that "
                         "folder: rename them)",
    LIGHTNING_LOW_LORA: "of the same folder",
    WAN21_I2V_BASE: "; for real Wan 2.1 I2V also wire CLIPVisionLoader (clip_vision_h) and CLIPVisionEncode into "
                    "WanImageToVideo's clip_vision_output (Wan 2.2 I2V needs none)",
}
SMALL_MACHINE = {
    "TempoCausalVideoSampler": "Tempo Causal Video Sampler: width x height (832x480 is what the models were trained "
                               "at; 416x240 is a quarter of the work) and length (33 frames is 3 blocks); cache "
                               "'window' with a smaller local_attn_size holds less",
    "EmptyHunyuanLatentVideo": "EmptyHunyuanLatentVideo: width, height and length",
    "WanImageToVideo": "WanImageToVideo: width, height and length",
    "SVD_img2vid_Conditioning": "ImageScale and SVD_img2vid_Conditioning: width x height (512x288) and video_frames (14)",
    "EmptyLatentImage": "Empty Latent Image: batch_size (512x512 is SD 1.5's own size)",
}


def workflow_note(nodes: list[N]) -> str:
    """The note a workflow carries: the files it names, where they go, what to lower on a small machine."""
    lines = ["**Model files** (the widgets name the demo's files: `python tempo.py demo` makes them; for real "
             "pictures pick these):", ""]
    seen = set()
    for n in nodes:
        for value in n.inputs.values():
            if isinstance(value, str) and value in MODEL_FILES and value not in seen:
                seen.add(value)
                folder, real, url = MODEL_FILES[value]
                where = f" ([download]({url}))" if url else ""
                hint = FILE_HINTS.get(value, "")
                lines.append(f"- `{value}` in `models/{folder}/`: {real}{' ' + hint if hint and not hint.startswith(';') else hint}{where}")
    tips = [SMALL_MACHINE[n.type] for n in nodes if n.type in SMALL_MACHINE]
    if tips:
        lines += ["", "**On a small GPU or the CPU**, lower: " + "; ".join(dict.fromkeys(tips)) + "."]
    return "\n".join(lines)


def workflow_models(nodes: list[N]) -> list[dict]:
    """The editor's model metadata: the missing-models dialog offers a download only for a .safetensors
    file on Hugging Face (or civitai) in a folder it knows, so other files (a .pth on GitHub) stay in
    the note alone."""
    out = []
    for n in nodes:
        for value in n.inputs.values():
            if isinstance(value, str) and value in MODEL_FILES and MODEL_FILES[value][2] \
                    and MODEL_FILES[value][2].startswith(HF) and MODEL_FILES[value][1].endswith(".safetensors"):
                folder, real, url = MODEL_FILES[value]
                entry = {"name": real, "url": url, "directory": folder}
                if entry not in out:
                    out.append(entry)
    return out


def build_all(object_info: dict, out_dir: str | None = None) -> dict[str, dict]:
    """Every shipped workflow from its spec, written to ``out_dir`` (None: workflows/; "": nowhere)."""
    out_dir = os.path.join(PACK_ROOT, "workflows") if out_dir is None else out_dir
    built = {}
    for name, spec in SPECS.items():
        description, nodes = spec()
        built[name] = build_ui(description, nodes, object_info, workflow_note(nodes), workflow_models(nodes))
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
    build.add_argument("--thumbnails", action="store_true",
                       help="also write each workflow's template thumbnail (workflows/<name>.jpg): the graph as "
                            "the editor shows it, fit to view (a private ComfyUI with the demo models, system "
                            "Chromium and playwright)")
    build.set_defaults(func=_build_command)


def _build_command(args) -> int:
    from ..client import ComfyServer, parse_headers

    built = build_all(ComfyServer(args.server, parse_headers(args.header)).object_info())
    print("\n".join(f"wrote workflows/{n}" for n in built))
    if args.thumbnails:
        from ..client.local import LocalComfyUI
        from ..demo import run as demo
        from .editor import write_thumbnails

        demo.ensure_demo_models(demo.DEMO_MODELS)
        with LocalComfyUI(models=[demo.DEMO_MODELS]) as local:
            for path in write_thumbnails(local.url, os.path.join(PACK_ROOT, "workflows"), list(built)):
                print(f"wrote {os.path.relpath(path, PACK_ROOT)}")
    return 0
