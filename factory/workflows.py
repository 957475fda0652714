"""The shipped example workflows, written as compact graphs and built into the editor's format.

``workflows/*.json`` are generated from these specs against a live server's ``/object_info``
(``python tempo.py build-workflows``), so every widget value sits where the editor expects
it; a test checks that the committed files are what the specs build.
"""

from __future__ import annotations

import json
import os
import tempfile

from ..client.local import PACK_ROOT
from ..client.workflow import input_default, input_names, input_spec, spec_type_and_options, widget_names
from . import released
from .checkpoints import EXAMPLE_IMAGE, EXAMPLE_VIDEO
from .released import (CLIP_VISION_H, HYPER_SD15_1STEP, LIGHTNING_HIGH, LIGHTNING_LOW, LIGHTX2V_I2V_LORA, RCM_1_3B,
                       SD15, SD15_CANNY, SELF_FORCING, SVD_XT, TAEW2_1, WAN21_I2V_14B, WAN22_T2V_HIGH, WAN22_T2V_LOW,
                       WAN_TEXT_ENCODER, WAN_VAE)

BUILT_WITH = "0.27.0"  # the ComfyUI whose /object_info the committed workflows are built from (the newest tested)
VIDEO_PROMPT = "a red fox running through fresh snow in a pine forest, tracking shot, golden hour"
POSITIVE = "a lighthouse on a cliff at dusk, warm light, cinematic photo"
NEGATIVE = "blurry, low quality"


class N:
    """A node of a spec: ``N(id, type, title=None, input=value or (source_id, slot), ...)``."""

    def __init__(self, id: int, node_type: str, title: str | None = None, mode: int = 0, **inputs):
        self.id, self.type, self.title, self.mode, self.inputs = id, node_type, title, mode, inputs


ONESTEP_MODEL = (41, 0)  # SD 1.5 with the Hyper-SD 1-step LoRA, set to its published sampling


def _sd15_head():
    """SD 1.5 from ComfyUI's own Load Checkpoint, the Hyper-SD 1-step LoRA on it (ComfyUI's LoRA loader), and
    Tempo One-Step Preset setting the LoRA's published sampling (TCD, eta 1); the prompts."""
    return [
        N(1, "CheckpointLoaderSimple", ckpt_name=SD15),
        N(40, "LoraLoaderModelOnly", "Hyper-SD 1-step LoRA", model=(1, 0), lora_name=HYPER_SD15_1STEP,
          strength_model=1.0),
        N(41, "TempoOneStepPreset", model=(40, 0), preset="Hyper-SD-TCD"),
        N(2, "CLIPTextEncode", "Positive", text=POSITIVE, clip=(1, 1)),
        N(3, "CLIPTextEncode", "Negative", text=NEGATIVE, clip=(1, 1)),
    ]


def _onestep_tail(first: int, latent: int, strength: float, positive=(2, 0), negative=(3, 0), name="txt2img"):
    """Schedule, sampler, SamplerCustom, decode, save: nodes ``first`` onwards."""
    f = first
    return [
        N(f, "TempoOneStepSigmas", model=ONESTEP_MODEL, steps=1, strength=strength),
        N(f + 1, "TempoOneStepSampler", renoise="auto"),
        N(f + 2, "SamplerCustom", model=ONESTEP_MODEL, add_noise=True, noise_seed=42, cfg=1.0, positive=positive,
          negative=negative, sampler=(f + 1, 0), sigmas=(f, 0), latent_image=(latent, 0)),
        N(f + 3, "VAEDecode", samples=(f + 2, 0), vae=(1, 2)),
        N(f + 4, "SaveImage", filename_prefix=f"tempo/onestep_{name}", images=(f + 3, 0)),
    ]


def onestep_txt2img():
    return "One-step text-to-image with native SamplerCustom: Tempo schedule + Tempo sampler", _sd15_head() + [
        N(4, "EmptyLatentImage", width=512, height=512, batch_size=1),
    ] + _onestep_tail(5, 4, 1.0)


def _generate(f: int, latent: tuple, strength: float, positive=(2, 0), negative=(3, 0), image=False, name="txt2img"):
    """Tempo One-Step Generate, decode, save: nodes ``f`` onwards (the last one saves, unless ``image``)."""
    return [
        N(f, "TempoOneStepGenerate", model=ONESTEP_MODEL, positive=positive, negative=negative, latent=latent,
          seed=42, steps=1, strength=strength, cfg=1.0),
        N(f + 1, "VAEDecode", samples=(f, 0), vae=(1, 2)),
    ] + ([] if image else [N(f + 2, "SaveImage", filename_prefix=f"tempo/onestep_{name}", images=(f + 1, 0))])


def onestep_img2img():
    return "One-step img2img: the picture is encoded, noised to the strength's timestep and denoised once", \
        _sd15_head() + [
            N(4, "LoadImage", image=EXAMPLE_IMAGE),
            N(5, "ImageScale", upscale_method="bilinear", width=512, height=512, crop="center", image=(4, 0)),
            N(6, "VAEEncode", pixels=(5, 0), vae=(1, 2)),
        ] + _generate(7, (6, 0), 0.6, name="img2img")


def _controlnet_onestep(name: str, image: bool = False):
    """A one-step image guided by a Canny edge map (native ControlNet nodes; ComfyUI scales the edge map to the
    latent's size, center-cropped): nodes 1-11."""
    return _sd15_head() + [
        N(4, "LoadImage", image=EXAMPLE_IMAGE),
        N(6, "Canny", low_threshold=0.4, high_threshold=0.8, image=(4, 0)),
        N(7, "ControlNetLoader", control_net_name=SD15_CANNY),
        N(8, "ControlNetApplyAdvanced", strength=1.0, start_percent=0.0, end_percent=1.0, positive=(2, 0),
          negative=(3, 0), control_net=(7, 0), image=(6, 0), vae=(1, 2)),
        N(9, "EmptyLatentImage", width=512, height=512, batch_size=1),
    ] + _generate(10, (9, 0), 1.0, positive=(8, 0), negative=(8, 1), image=image, name=name)


def onestep_controlnet():
    return ("One-step ControlNet: native ControlNetLoader + ControlNetApplyAdvanced on a Canny edge map",
            _controlnet_onestep("controlnet"))


def onestep_batch():
    return "A batch of images in one step with the one-node Tempo One-Step Generate", _sd15_head()[:4] + [
        N(3, "EmptyLatentImage", width=512, height=512, batch_size=4),
        N(4, "TempoOneStepGenerate", model=ONESTEP_MODEL, positive=(2, 0), latent=(3, 0), seed=42, steps=1,
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
    return [N(1, "TempoCausalVideoLoader", model_name=SELF_FORCING, weight_dtype="default")] + _wan_text_and_vae()


TEXT_ENCODER = (2, 0)  # the causal sampler's clip input: prompts typed on the live page are encoded with it


def causal_t2v_mp4():
    return "Causal text-to-video (Self Forcing), streamed block by block to an H.264 mp4", _causal_head() + [
        N(5, "TempoCausalVideoSampler", model=(1, 0), clip=TEXT_ENCODER, positive=(3, 0), width=832, height=480, length=81, seed=42,
          schedule="Self Forcing", frames_per_block="auto", cache="full"),
        N(6, "TempoCausalVideoSaveMP4", video=(5, 0), vae=(4, 0), filename_prefix="tempo/causal_t2v", fps=16.0, crf=19),
    ]


def causal_realtime():
    return ("Real-time causal text-to-video: Tempo Causal Speed writes the KV cache in place, runs the layers "
            "compiled and decodes each block on a worker while the next is made; the TAEHV tiny decoder keeps up "
            "with the generator. The live page plays it as it is made"), _causal_head() + [
        N(5, "TempoCausalSpeed", model=(1, 0), in_place_cache=True, attention="auto", compile="layers",
          overlap_decode="auto"),
        N(6, "TempoCausalVideoSampler", model=(5, 0), clip=TEXT_ENCODER, positive=(3, 0), width=832, height=480, length=81, seed=42,
          schedule="Self Forcing", frames_per_block="auto", cache="full"),
        N(7, "TempoCausalVideoSaveMP4", video=(6, 0), vae=(4, 0), filename_prefix="tempo/causal_realtime", fps=16.0,
          crf=19, decoder=TAEW2_1),
    ]


def causal_long_rolling():
    return ("A 40-second causal video with a rolling KV cache of the trained context (each block attends to 21 latent "
            "frames: 3 sink frames, the latest ones and itself): memory stays constant however long it runs"), \
        _causal_head() + [
        N(5, "TempoCausalVideoSampler", model=(1, 0), clip=TEXT_ENCODER, positive=(3, 0), width=832, height=480, length=633, seed=42,
          schedule="Self Forcing", frames_per_block="auto", cache="preset"),
        N(6, "TempoCausalVideoSaveMP4", video=(5, 0), vae=(4, 0), filename_prefix="tempo/causal_long", fps=16.0, crf=19),
    ]


def causal_i2v():
    return "Causal image-to-video: the start image is encoded and prefills the KV cache", _causal_head() + [
        N(5, "LoadImage", image=EXAMPLE_IMAGE),
        N(6, "ImageScale", upscale_method="bilinear", width=832, height=480, crop="center", image=(5, 0)),
        N(7, "VAEEncode", pixels=(6, 0), vae=(4, 0)),
        N(8, "TempoCausalVideoSampler", model=(1, 0), clip=TEXT_ENCODER, positive=(3, 0), width=832, height=480, length=85, seed=42,
          schedule="Self Forcing", frames_per_block="auto", cache="preset",
          start_latent=(7, 0)),
        N(9, "TempoCausalVideoSaveMP4", video=(8, 0), vae=(4, 0), filename_prefix="tempo/causal_i2v", fps=16.0, crf=19),
    ]


def causal_continue():
    return ("Continuation: a clip, then a second clip whose cache is prefilled with the first one's last latent "
            "frames; the final latent is saved so a later job can extend it again"), _causal_head() + [
        N(5, "TempoCausalVideoSampler", "Clip 1", model=(1, 0), clip=TEXT_ENCODER, positive=(3, 0), width=832, height=480, length=81,
          seed=42, schedule="Self Forcing", frames_per_block="auto", cache="preset"),
        N(6, "TempoCausalVideoSaveMP4", "Save clip 1", video=(5, 0), vae=(4, 0), filename_prefix="tempo/causal_clip1",
          fps=16.0, crf=19),
        N(7, "TempoCausalVideoSampler", "Clip 2", model=(1, 0), clip=TEXT_ENCODER, positive=(3, 0), width=832, height=480, length=84,
          seed=43, schedule="Self Forcing", frames_per_block="auto", cache="preset",
          continue_from=(6, 0), context_frames=3),
        N(8, "TempoCausalVideoSaveMP4", "Save clip 2", video=(7, 0), vae=(4, 0), filename_prefix="tempo/causal_clip2",
          fps=16.0, crf=19),
        N(9, "SaveLatent", samples=(8, 0), filename_prefix="tempo/causal_clip2"),
    ]


TIMELINE_TEXT = ("0: a red fox trots through fresh snow in a pine forest, tracking shot, golden hour\n"
                 "10: the red fox stops and looks up as snow starts falling, tracking shot, golden hour\n"
                 "20: the red fox runs off between the pine trees into the falling snow, tracking shot, golden hour")


def causal_prompt_timeline():
    return ("A 30-second rolling causal video that follows three prompts (0 s, 10 s, 20 s) typed into one Tempo "
            "Prompt Timeline; at each switch the cache is re-computed under the new prompt (LongLive), so the motion "
            "carries on"), _causal_head()[:2] + [
        N(4, "VAELoader", vae_name=WAN_VAE),
        N(3, "TempoPromptTimeline", "Prompts over time", clip=TEXT_ENCODER, text=TIMELINE_TEXT, units="seconds",
          fps=16.0),
        N(5, "TempoCausalVideoSampler", model=(1, 0), clip=TEXT_ENCODER, timeline=(3, 0), switch="re-cache", width=832,
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
        N(8, "TempoCausalVideoSampler", model=(1, 0), clip=TEXT_ENCODER, positive=(3, 0), input_video=(7, 0), strength=0.7, width=832,
          height=480, length=81, seed=42, schedule="Self Forcing", frames_per_block="auto", cache="preset"),
        N(9, "TempoCausalVideoSaveMP4", video=(8, 0), vae=(4, 0), filename_prefix="tempo/causal_v2v", fps=16.0, crf=19),
    ]


def onestep_t2v_mp4():
    return ("One-step text-to-video: rCM's released Wan 2.1 1.3B file (published for 1 to 4 steps) in one step, "
            "the APT way of sampling a one-step video DiT, saved with native CreateVideo + SaveVideo"), [
        N(1, "TempoOneStepVideoLoader", model_name=RCM_1_3B, weight_dtype="default", timestep=0.0, shift=0.0),
        N(10, "TempoOneStepPreset", model=(1, 0), preset="rCM"),
    ] + _wan_text_and_vae() + [
        N(5, "EmptyHunyuanLatentVideo", width=832, height=480, length=77, batch_size=1),
        N(6, "TempoOneStepGenerate", model=(10, 0), positive=(3, 0), latent=(5, 0), seed=42, steps=1, strength=1.0,
          cfg=1.0),
        N(7, "VAEDecode", samples=(6, 0), vae=(4, 0)),
        N(8, "CreateVideo", images=(7, 0), fps=16.0),
        N(9, "SaveVideo", video=(8, 0), filename_prefix="tempo/onestep_t2v", format="mp4", codec="h264"),
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
        N(1, "UNETLoader", "High-noise expert", unet_name=WAN22_T2V_HIGH, weight_dtype="default"),
        N(2, "UNETLoader", "Low-noise expert", unet_name=WAN22_T2V_LOW, weight_dtype="default"),
        N(3, "LoraLoaderModelOnly", "Lightning LoRA (high noise)", model=(1, 0), lora_name=LIGHTNING_HIGH,
          strength_model=1.0),
        N(4, "LoraLoaderModelOnly", "Lightning LoRA (low noise)", model=(2, 0), lora_name=LIGHTNING_LOW,
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
        N(1, "UNETLoader", "Wan 2.1 I2V base", unet_name=WAN21_I2V_14B, weight_dtype="default"),
        N(2, "LoraLoaderModelOnly", "lightx2v 4-step LoRA", model=(1, 0), lora_name=LIGHTX2V_I2V_LORA,
          strength_model=1.0),
        N(3, "TempoOneStepPreset", model=(2, 0), preset="lightx2v Wan 2.1"),
        N(4, "CLIPLoader", clip_name=WAN_TEXT_ENCODER, type="wan", device="default"),
        N(5, "CLIPTextEncode", "Prompt", text=VIDEO_PROMPT, clip=(4, 0)),
        N(6, "CLIPTextEncode", "Negative (unused at cfg 1)", text="", clip=(4, 0)),
        N(7, "VAELoader", vae_name=WAN_VAE),
        N(8, "LoadImage", image=EXAMPLE_IMAGE),
        N(14, "CLIPVisionLoader", clip_name=CLIP_VISION_H),
        N(15, "CLIPVisionEncode", clip_vision=(14, 0), image=(8, 0), crop="none"),
        N(9, "WanImageToVideo", positive=(5, 0), negative=(6, 0), vae=(7, 0), clip_vision_output=(15, 0),
          start_image=(8, 0), width=832, height=480, length=81, batch_size=1),
        N(10, "TempoOneStepGenerate", model=(3, 0), positive=(9, 0), latent=(9, 2), seed=42, steps=4, strength=1.0,
          cfg=1.0),
    ] + _video_tail(11, (10, 0), (7, 0), "lightx2v_i2v")


def rcm_t2v_4step():
    return ("rCM few-step text-to-video: an rCM .pt as released (net. keys) in 4 steps, TrigFlow times as sigmas, "
            "fresh noise between steps"), [
        N(1, "TempoOneStepVideoLoader", model_name=RCM_1_3B, weight_dtype="default", timestep=0.0, shift=0.0),
        N(2, "TempoOneStepPreset", model=(1, 0), preset="rCM"),
        N(3, "CLIPLoader", clip_name=WAN_TEXT_ENCODER, type="wan", device="default"),
        N(4, "CLIPTextEncode", "Prompt", text=VIDEO_PROMPT, clip=(3, 0)),
        N(5, "VAELoader", vae_name=WAN_VAE),
        N(6, "EmptyHunyuanLatentVideo", width=832, height=480, length=77, batch_size=1),
        N(7, "TempoOneStepGenerate", model=(2, 0), positive=(4, 0), latent=(6, 0), seed=42, steps=4, strength=1.0,
          cfg=1.0),
    ] + _video_tail(8, (7, 0), (5, 0), "rcm_t2v")


def _svd_tail(first: int, image: tuple, steps: int, cfg: float, name: str):
    """SVD image-to-video from ``image``: conditioning (which scales the start image to the video's size
    itself), the one-step core (per-frame linear CFG where cfg > 1), mp4. fps 7 in ComfyUI's node reaches
    the UNet as fps_id 6 (ComfyUI passes fps - 1), the value of Stability's reference script and of
    diffusers' default; augmentation 0.02 as there too."""
    f = first
    model = (f, 0) if cfg <= 1 else (f + 3, 0)
    return [
        N(f, "TempoSVDLoader", ckpt_name=SVD_XT, preset="auto", weight_dtype="default"),
        N(f + 2, "SVD_img2vid_Conditioning", clip_vision=(f, 1), init_image=image, vae=(f, 2), width=1024,
          height=576, video_frames=25, motion_bucket_id=127, fps=7, augmentation_level=0.02),
    ] + ([N(f + 3, "VideoLinearCFGGuidance", model=(f, 0), min_cfg=1.0)] if cfg > 1 else []) + [
        N(f + 4, "TempoOneStepGenerate", model=model, positive=(f + 2, 0), negative=(f + 2, 1),
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
    ] + _generate(5, (4, 0), 1.0, image=True) + _svd_tail(10, (6, 0), 1, 1.0, "svd_image")


def svd_controlnet_start():
    return ("A ControlNet-guided one-step start frame (Canny edges), animated by SVD",
            _controlnet_onestep("svd_cn", image=True) + _svd_tail(15, (11, 0), 1, 1.0, "svd_cn"))


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
    "11 One-step text to video (rCM, Wan 2.1).json": onestep_t2v_mp4,
    "12 SVD image to video in one step.json": svd_onestep,
    "13 SVD image to video in four steps.json": svd_4step,
    "14 One-step image animated by SVD.json": svd_from_onestep_image,
    "15 ControlNet start frame animated by SVD.json": svd_controlnet_start,
    "16 Wan 2.2 Lightning text to video, two experts.json": lightning_t2v_two_experts,
    "17 lightx2v image to video, LoRA on a core loader.json": lightx2v_i2v_lora,
    "18 rCM text to video in 4 steps.json": rcm_t2v_4step,
    "19 Causal real-time stream, fast settings.json": causal_realtime,
}


# Layout: left-to-right stages, each a titled group; within a stage, columns by dependency.
STAGES = ("Load", "Condition", "Sample", "Decode and save")
_SAMPLE = {"TempoOneStepSigmas", "TempoOneStepSampler", "TempoTCDSampler", "SamplerCustom", "TempoOneStepGenerate",
           "TempoTwoExpertGenerate",
           "TempoCausalVideoSampler", "KSampler"}
_SAVE = {"VAEDecode", "SaveImage", "PreviewImage", "CreateVideo", "SaveVideo", "TempoCausalVideoSaveMP4",
         "TempoCausalVideoDecode", "SaveLatent"}
# Load: the files and what readies a model for sampling (its LoRAs, its sampling preset, speed options)
NOTE = "MarkdownNote"  # the editor's own note node (frontend only: no /object_info entry)
_LOAD = {NOTE, "LoadImage", "LoadVideo", "TempoLoadConditioning", "CheckpointLoaderSimple", "LoraLoaderModelOnly",
         "TempoOneStepPreset", "TempoCausalSpeed", "VideoLinearCFGGuidance"}
STAGE_COLORS = {"Load": "#3f789e", "Condition": "#8a8a3f", "Sample": "#a1309b", "Decode and save": "#3f8a5a"}
GAP_X, GAP_Y, GROUP_GAP, PAD, TITLE_H = 42, 36, 32, 16, 72
MAX_ROW_W, MIN_NODE_W, MAX_NODE_W = 1800, 224, 280  # a row's widest (build_ui tries several); a node's
FIT_CANVAS = (1536, 922)  # the editor's canvas in a 1600x1000 window (frontend 1.27 with its side bar: the smallest)
SLOT_STEP, ROW_GAP = 20, 76
LANE_TOP, LANE_STEP, LANE_GAP, TITLE_BAR, CLIMB_SWING = 44, 16, 30, 30, 0.14  # a row's first lane below its group titles; lanes apart; more gap after a column a lane climbs from (at least, and per pixel climbed); a node's title bar
WIDGET_H, SLOT_H, MULTILINE_H = 24, 20, 100
EDITOR_WIDGETS = {"TempoCausalVideoSaveMP4": 1, "TempoCausalVideoDecode": 1}  # web/tempo_ui.js: 'watch live'
PREVIEW_HEIGHT = {"LoadImage": 340, "LoadVideo": 360}
PREVIEW_WIDTH = {"LoadVideo": 364}  # a 16:9 video's player widens the node  # the editor shows the picked file under the widgets


def stage_of(node_type: str) -> int:
    if node_type.endswith("Loader") or node_type in _LOAD:
        return 0
    if node_type in _SAMPLE:
        return 2
    if node_type in _SAVE:
        return 3
    return 1


def _node_size(n: N, info: dict, widgets: list, n_inputs: int, n_outputs: int) -> list[int]:
    """The node's body as the editor sizes it (LGraphNode.computeSize, frontends 1.27-1.45: 20 px a slot row,
    24 a widget row, 14 more), with room for a prompt box (MULTILINE_H) and a picked image (PREVIEW_HEIGHT),
    and wide enough for most widget values (longer ones are cut short with an ellipsis, whole on hover)."""
    title = n.title or info.get("display_name") or n.type
    chars = 0
    height = 14 + SLOT_H * max(n_inputs, n_outputs)
    for name, extra in widgets:
        value = n.inputs.get(name, input_default(info, name))
        if isinstance(value, tuple):
            continue
        kind, options = spec_type_and_options(input_spec(info, name))
        if kind == "STRING" and options.get("multiline"):
            height += MULTILINE_H
            continue
        chars = max(chars, len(name) + len(f"{value:g}" if isinstance(value, float) else str(value)) + 6)
        height += WIDGET_H * (1 + extra)
    height += WIDGET_H * EDITOR_WIDGETS.get(n.type, 0)
    per_char = 7.6 if " " in title else 9.0  # the editor's title font (measured: CamelCase titles run wider)
    width = max(6.5 * chars + 30, per_char * len(title) + 44, MIN_NODE_W)  # the editor widens a node to its title
    return [max(int(min(width, MAX_NODE_W)), PREVIEW_WIDTH.get(n.type, 0)), max(int(height), PREVIEW_HEIGHT.get(n.type, 0))]


def layout(nodes: list[N], stack: bool = False, heights: dict | None = None, spread: int = 1) -> dict:
    """{node id: (phase, stage, column)}: its stage, its phase (a stage that feeds an earlier stage
    starts a new phase, one row lower: an image made, then animated), and its column inside the
    stage (the longest dependency path there). ``stack``: a chain (a checkpoint, its LoRA, its preset: each
    the only one of its stage to read the last) stands in one column, one under the other. ``spread``: the
    loaders that read nothing (and the note) are shared out over that many columns, the shortest first
    (``heights``: each node's)."""
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
    def group(i):
        return phase[i], stage_of(by_id[i].type)

    for i in phase:  # columns inside a stage (phase holds the nodes in dependency order)
        inside = [d for d in deps[i] if group(d) == group(i)]
        users = [m.id for m in nodes if inside and inside[0] in deps[m.id] and group(m.id) == group(i)]
        if stack and len(set(inside)) == 1 and users == [i]:
            sub[i] = sub[inside[0]]  # under the node it reads
        else:
            sub[i] = max([sub[d] + 1 for d in inside] or [0])
    if spread > 1 and heights:
        free = [i for i in phase if group(i)[1] == 0 and not any(group(d) == group(i) for d in deps[i])
                and not any(group(m.id) == group(i) and i in deps[m.id] for m in nodes)]
        tall: dict = {}
        for i in phase:
            if i not in free:
                tall[(group(i), sub[i])] = tall.get((group(i), sub[i]), 0) + heights[i]
        for i in sorted(free, key=lambda i: -heights[i]):
            # the note (it feeds nothing) where the least stands; a loader as far right as its height allows,
            # so its links to later stages pass no column of its own stage
            cols = range(spread) if by_id[i].type == NOTE else range(spread - 1, -1, -1)
            col = min(cols, key=lambda c: tall.get((group(i), c), 0))
            sub[i] = col
            tall[(group(i), col)] = tall.get((group(i), col), 0) + heights[i]
    return {n.id: (phase[n.id], stage_of(n.type), sub[n.id]) for n in nodes}


def wrap_rows(nodes: list[N], keys: dict, ui_nodes: dict) -> dict:
    """The layout's keys with each row of stages wrapped to at most MAX_ROW_W wide (a new row takes on
    where the last one stopped, and a stage may continue there as '(2)'), so that the editor's fit to
    view opens every workflow at a zoom where nodes show their text."""
    widths: dict = {}
    for n in nodes:
        widths[keys[n.id]] = max(widths.get(keys[n.id], 0), ui_nodes[n.id]["size"][0])
    row_of, row, x, group = {}, 0, 0, None
    for key in sorted(widths):  # phase by phase, stage by stage, column by column: one flow, wrapped
        w = widths[key] + GAP_X + (GROUP_GAP + 2 * PAD if key[:2] != group else 0)
        if x and x + w > MAX_ROW_W:
            row, x = row + 1, GROUP_GAP + 2 * PAD
            w = widths[key] + GAP_X
        row_of[key], x, group = row, x + w, key[:2]
    return {i: (row_of[k], k[1], k[2]) for i, k in keys.items()}


def build_ui(description: str, nodes: list[N], object_info: dict, note: str = "", models: list | None = None) -> dict:
    """An editor-format workflow (version 0.4) for ``nodes``: stages left to right in titled groups,
    a note saying what the workflow needs, and the model files the editor can offer to download."""
    links, ui_nodes = [], {}
    by_id = {n.id: n for n in nodes}
    if note:  # the note is laid out with the loaders, at the foot of the first column
        nodes = nodes + [N(max(by_id) + 1, NOTE, "What this workflow needs", text=note)]
    keys = layout(nodes)
    for col, n in enumerate(sorted(nodes, key=lambda n: (keys[n.id], n.id))):
        if n.type == NOTE:
            ui_nodes[n.id] = {"id": n.id, "type": NOTE, "pos": [0, 0], "size": [MAX_NODE_W, _note_height(note)],
                              "flags": {}, "order": col, "mode": 0, "inputs": [], "outputs": [], "title": n.title,
                              "properties": {}, "widgets_values": [note], "color": "#432", "bgcolor": "#653"}
            continue
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
    groups, reroutes, extensions = _most_readable(nodes, keys, ui_nodes, links)
    all_nodes = list(ui_nodes.values())
    wf = {"last_node_id": max(n.id for n in nodes), "last_link_id": len(links), "nodes": all_nodes,
          "links": links, "groups": groups, "config": {},
          "extra": {"info": {"description": description, "generated_by": "Tempo factory/workflows.py"}},
          "version": 0.4}
    if reroutes:  # the editor's own link reroutes (drawing only: the prompt is the same without them)
        wf["extra"].update(reroutes=reroutes, linkExtensions=extensions)
    if models:
        wf["models"] = models
    return wf


def _most_readable(nodes: list[N], keys: dict, ui_nodes: dict, links: list) -> tuple:
    """The placement (``_place``) whose rows, wrapped at some width, the editor's fit to view shows largest:
    its zoom is 0.75 x the canvas over the nodes' bounds, the smaller of width and height (frontend
    litegraphService fitView). Each width is tried."""
    import copy

    best = None
    heights = {i: n["size"][1] + TITLE_BAR + GAP_Y for i, n in ui_nodes.items()}
    for width, stack, spread in [(w, s, k) for w in range(1000, 4001, 50) for s in (False, True) for k in (1, 2, 3)]:
        trial = copy.deepcopy(ui_nodes)
        global MAX_ROW_W
        MAX_ROW_W = width
        placed = _place(nodes, wrap_rows(nodes, layout(nodes, stack, heights, spread), trial), trial,
                        copy.deepcopy(links))
        xs = [(n["pos"][0], n["pos"][0] + n["size"][0]) for n in trial.values()]
        ys = [(n["pos"][1] - TITLE_BAR, n["pos"][1] + n["size"][1]) for n in trial.values()]
        w = max(b for _, b in xs) - min(a for a, _ in xs)
        h = max(b for _, b in ys) - min(a for a, _ in ys)
        zoom = min(FIT_CANVAS[0] / w, FIT_CANVAS[1] / h)
        if best is None or zoom > best[0] + 1e-9:
            best = (zoom, trial, placed)
    ui_nodes.update(best[1])
    return best[2]


def _note_height(note: str) -> int:
    """What the editor's markdown note needs at MAX_NODE_W wide (about 37 characters a line, links shown as
    their text)."""
    import re

    shown = [re.sub(r"\[([^]]*)\]\([^)]*\)", r"\1", line).replace("`", "").replace("**", "") for line in note.splitlines()]
    return 40 + 18 * sum(1 + len(line) // 37 for line in shown)


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
    above = {dst: src for _, src, _, dst, _, _ in links if keys[src] == keys[dst]}  # a chain stacked in a column
    for c in columns:  # top to bottom in the order of what feeds them (fewer crossing links)
        def feed_y(i):  # sources in earlier columns are placed (y > 0); later ones are not counted
            ys = [ui_nodes[s]["pos"][1] + SLOT_STEP * k for s, k in sources.get(i, []) if ui_nodes[s]["pos"][1]]
            return sum(ys) / len(ys) if ys else 0.0

        def chain(i):  # (its chain's first node, how far down the chain)
            depth = 0
            while i in above:
                i, depth = above[i], depth + 1
            return i, depth
        c.sort(key=lambda i: (feed_y(chain(i)[0]), chain(i)[0], chain(i)[1]))
        y = TITLE_H
        for i in c:
            ui_nodes[i]["pos"][1] = y
            y += ui_nodes[i]["size"][1] + GAP_Y
    phase_of = {n.id: keys[n.id][0] for n in nodes}
    lanes: dict = {}
    row_top, height = _stack_rows(nodes, phase_of, ui_nodes, lanes)
    stacked = [link for link in links if link[3] in above and above[link[3]] == link[1]]
    routed = [link for link in links if link not in stacked and _crosses_a_node(link, ui_nodes, column_of, phase_of)]
    extra = {}
    if routed:  # a link that climbs from its source to a lane swings out, the more the higher it climbs:
        for link in routed:  # a wider gap after its column (the editor's spline overshoots ~12% of the climb)
            y = ui_nodes[link[1]]["pos"][1] - row_top[phase_of[link[1]]]
            climb = y if phase_of[link[1]] == phase_of[link[3]] else height[phase_of[link[1]]] - y + ROW_GAP
            col = column_of[link[1]]
            extra[col] = max(extra.get(col, LANE_GAP), int(CLIMB_SWING * climb) + 2 * PAD - GAP_X)
            # and comes down from it to its target: as wide a gap before the target's column
            drop = ui_nodes[link[3]]["pos"][1] - row_top[phase_of[link[3]]] + (0 if climb == y else ROW_GAP)
            before = column_of[link[3]] - 1
            if before >= 0 and before != col:
                extra[before] = max(extra.get(before, LANE_GAP), int(CLIMB_SWING * drop) + 2 * PAD - GAP_X)
        spans = _columns_x(groups_of, ui_nodes, column_of, extra)
        routed = [link for link in links if link not in stacked and _crosses_a_node(link, ui_nodes, column_of, phase_of)]
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
        before = extra.get(column_of[dst] - 1, LANE_GAP) if column_of[dst] - 1 != column_of[src] else LANE_GAP
        last = {"id": len(reroutes) + 2, "parentId": first["id"],
                "pos": [ui_nodes[dst]["pos"][0] - (GAP_X + before) / 2, lane], "linkIds": [lid]}
        reroutes += [first, last]
        extensions.append({"id": lid, "parentId": last["id"]})
    for lid, src, _, dst, _, _ in stacked:  # down to the next node of the column: out right, along the gap, in left
        (x, y), (w, h) = ui_nodes[src]["pos"], ui_nodes[src]["size"]
        gap = y + h + (ui_nodes[dst]["pos"][1] - TITLE_BAR - y - h) / 2
        first = {"id": len(reroutes) + 1, "pos": [x + w + GAP_X / 2, gap], "linkIds": [lid]}
        last = {"id": len(reroutes) + 2, "parentId": first["id"], "pos": [x - GAP_X / 2 + 4, gap], "linkIds": [lid]}
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
        last_extra = extra_gap.get(column_of[cols[max(cols)][0]], 0)
        x -= last_extra  # the gap between groups holds it, widened where it is not wide enough
        x += PAD - GAP_X
        spans.append((gkey, gx, x))
        x += GROUP_GAP + max(0, GAP_X + last_extra - 2 * PAD - GROUP_GAP)
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


SMALL_MACHINE = {
    "TempoCausalVideoSampler": "the sampler's width x height (416x240 is a quarter of the work) and length",
    "EmptyHunyuanLatentVideo": "the empty video's width, height and length",
    "WanImageToVideo": "WanImageToVideo's width, height and length",
    "SVD_img2vid_Conditioning": "the SVD size (512x288) and video_frames (14)",
    "EmptyLatentImage": "the batch size",
}


def files_of(nodes: list[N]) -> list[released.Released]:
    """The released files a workflow's widgets name, in the order they appear."""
    seen = {}
    for n in nodes:
        for value in n.inputs.values():
            if isinstance(value, str) and value in released.FILES:
                seen.setdefault(value, released.FILES[value])
    return list(seen.values())


def workflow_note(nodes: list[N]) -> str:
    """The note a workflow carries: each file it names, linked, and its folder; what to lower on a small
    machine."""
    lines = ["**Models** (the editor offers the missing ones):"]
    for f in files_of(nodes):
        lines.append(f"- [{f.name}]({f.url}) → `models/{f.folder}/`" + ("" if f.dialog_downloads else " (fetch it yourself)"))
    tips = [SMALL_MACHINE[n.type] for n in nodes if n.type in SMALL_MACHINE]
    if tips:
        lines += ["", "**Small GPU or CPU:** lower " + "; ".join(dict.fromkeys(tips)) + "."]
    return "\n".join(lines)


def workflow_models(nodes: list[N]) -> list[dict]:
    """The editor's model metadata (the missing-models dialog): every released file the workflow names,
    with its URL and folder. Editors that cannot download a file (a .pt, a GitHub link) still list it
    as missing; the note links it."""
    return [f.model_entry() for f in files_of(nodes)]


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

    server = ComfyServer(args.server, parse_headers(args.header))
    version = server.get_json("/system_stats")["system"].get("comfyui_version")
    if version != BUILT_WITH:
        print(f"warning: the shipped workflows are built against ComfyUI {BUILT_WITH}; this server is {version} "
              "(its nodes' outputs and widgets may differ); set BUILT_WITH if the newest tested ComfyUI changed")
    built = build_all(server.object_info())
    print("\n".join(f"wrote workflows/{n}" for n in built))
    if args.thumbnails:
        from ..client.local import LocalComfyUI
        from ..demo import run as demo
        from .editor import write_thumbnails

        demo.ensure_demo_models(demo.DEMO_MODELS)
        with tempfile.TemporaryDirectory() as tmp:
            # every released file a workflow names is listed (the demo swaps its own text encoder for umT5-XXL,
            # which it lacks): the editor marks no loader as missing, as an artist who has the files sees it
            listed = os.path.join(tmp, "listed")
            for f in released.FILES.values():
                if not os.path.exists(os.path.join(demo.DEMO_MODELS, f.folder, f.name)):
                    os.makedirs(os.path.join(listed, f.folder), exist_ok=True)
                    open(os.path.join(listed, f.folder, f.name), "wb").close()
            with LocalComfyUI(models=[demo.DEMO_MODELS, listed], extra_nodes=[demo.DEMO_NODES]) as local:
                local_server = ComfyServer(local.url)  # the example inputs, so Load Image shows its picture
                local_server.upload_image(demo.EXAMPLE_IMAGE, demo.checkpoints.EXAMPLE_IMAGE)
                local_server.upload_image(demo.EXAMPLE_VIDEO, demo.checkpoints.EXAMPLE_VIDEO)
                outputs = _demo_videos(local_server, os.path.join(tmp, "out"))
                for path in write_thumbnails(local.url, os.path.join(PACK_ROOT, "workflows"), list(built),
                                             outputs=outputs):
                    print(f"wrote {os.path.relpath(path, PACK_ROOT)}")
    return 0


def _demo_videos(server, out_dir: str) -> dict:
    """The videos ``tempo.py demo`` makes with the causal workflows (its trained demo model), by workflow:
    (caption, frames), for their thumbnails."""
    from ..demo import run as demo
    from ..demo.scenes import read_mp4

    videos = {}
    for name, overrides in demo.DEMO_WORKFLOWS:
        if not demo.made_by_the_trained_model(overrides):
            continue
        files = demo.run_workflow(server, name, overrides, os.path.join(out_dir, name[:-len(".json")]),
                                  log=print, progress=False)
        mp4s = [f for f in files if f.endswith(".mp4")]
        if mp4s:
            videos[name] = (demo.caption(overrides), read_mp4(mp4s[0]))
    return videos
