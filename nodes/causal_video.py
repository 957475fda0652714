"""Causal KV-cache video nodes: loader, sampler (a video stream), stream to mp4 / frames,
and saved text conditioning (to skip loading a 5.7B text encoder on every run)."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field

import torch

import comfy.model_management as mm
import comfy.utils
import folder_paths

from ..samplers import causal, timeline as tl
from ..video.mp4 import Mp4Writer
from ..video.overlap import run_in_order
from .causal_speed import overlap_of, speed_of
from .wan_models import (TAEHV_FOLDERS, WAN_VAE_DECODER, StreamingTAEHVDecoder, StreamingWanDecoder, StreamingWanEncoder,
                         causal_info, causal_runner, load_causal_model, taehv_files)
from . import compat, live as live_page
from .compat import io, ui
from ..loaders.paths import MAX_NAME_CHARS, is_inside, shown
from .common import CAUSAL_WEIGHT_DTYPES, CATEGORY, TempoInputError, model_file_list, output_path, resolve_model_path, \
    check_choice

SUBCAT = CATEGORY + "/causal video"
CAUSAL_FOLDERS = ("diffusion_models", "checkpoints", "diffusers")
CONDITIONING_FOLDER = "tempo_conditioning"
VideoStream = io.Custom("TEMPO_VIDEO_STREAM")
Timeline = io.Custom("TEMPO_PROMPT_TIMELINE")
SWITCHES = ("re-cache", "plain")
DEFAULT_STRENGTH = 0.7  # StreamDiffusionV2's default noise_scale (streamv2v/inference_wo_batch.py, --noise_scale)
# Defaults of the sampler's optional inputs, written once for the schema and for execute().
_SF = causal.PRESETS["Self Forcing"]
DEFAULT_TIMESTEPS = ", ".join(str(t) for t in _SF.timesteps)
DEFAULT_SHIFT = _SF.shift
DEFAULT_CONTEXT_FRAMES = 3
DEFAULT_SINK, DEFAULT_LOCAL_ATTN = _SF.sink_size, _SF.local_attn_size
FRAMES_PER_BLOCK = ("auto", "1", "3")
# cache: the preset's published window, the two inputs (authors' terms), or every frame. "rolling" is
# what workflows saved before the authors' terms hold (sink_frames + window_frames, the block not
# counted); it is read as it was and the node says how to convert.
CACHE_MODES = ("preset", "window", "full")
LEGACY_CACHE = "rolling"


def register_folders():
    if CONDITIONING_FOLDER not in folder_paths.folder_names_and_paths:
        folder_paths.add_model_folder_path(CONDITIONING_FOLDER, os.path.join(folder_paths.models_dir, CONDITIONING_FOLDER))
        folder_paths.folder_names_and_paths[CONDITIONING_FOLDER] = (
            folder_paths.folder_names_and_paths[CONDITIONING_FOLDER][0], {".safetensors"})


register_folders()


class CausalVideoLoader(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="TempoCausalVideoLoader",
            display_name="Tempo Causal Video Loader",
            category=SUBCAT,
            description="Loads a real-time Wan 2.1 video model (Self Forcing, Causal Forcing, CausVid) that makes "
                        "video block by block. Use with Load CLIP (type wan), the Wan VAE and Tempo Causal Video "
                        "Sampler.",
            inputs=[
                io.Combo.Input("model_name", options=model_file_list(CAUSAL_FOLDERS),
                               tooltip="A .pt as released (self_forcing_dmd.pt, CausVid model.pt) or safetensors in "
                                       "models/diffusion_models (or checkpoints), or a diffusers folder."),
                io.Combo.Input("weight_dtype", options=CAUSAL_WEIGHT_DTYPES, default="default",
                               tooltip="default lets ComfyUI pick. fp8: weights in 8 bits, half the memory of bf16; "
                                       "fp8_e4m3fn_fast also runs faster on RTX 40 / H100 GPUs."),
            ],
            outputs=[io.Model.Output(tooltip="Native Wan 2.1 MODEL; its causal sampler is Tempo Causal Video Sampler."),
                     io.String.Output(display_name="info", tooltip="What the file says: family, frames per block.")],
        )

    @classmethod
    def execute(cls, model_name, weight_dtype) -> io.NodeOutput:
        path = resolve_model_path(model_name, CAUSAL_FOLDERS)
        model, info = load_causal_model(path, weight_dtype)
        text = (f"{info['family'] or 'unknown family'}; causal: "
                f"{ {True: 'yes', False: 'NO (not trained for this)', None: 'not stated'}[info['causal']] }; "
                f"frames per block: {info['frames_per_block'] or 'not stated (3 assumed)'}; "
                f"Wan 2.1 {info['config']['dim']}-wide, {info['config']['num_layers']} layers")
        if info["causal"] is False:
            logging.warning(f"Tempo: {model_name} is a non-causal Wan checkpoint: it runs block by block, but it was "
                            "not trained for this and the video will be poor; use a Self Forcing / CausVid / "
                            "Causal Forcing checkpoint")
        return io.NodeOutput(model, text, ui=ui.PreviewText(text))


@dataclass
class CausalVideoPlan:
    """What to generate (checked); nothing runs until a consumer iterates :meth:`blocks`."""

    model: object
    cond: torch.Tensor
    spec: causal.VideoSpec
    width: int                    # pixels
    height: int
    prefix: torch.Tensor | None   # clean latent frames to prefill (VAE units)
    keep_prefix: bool             # the prefix is part of the output (start image) or only context (continuation)
    info: dict = field(default_factory=dict)
    switches: dict = field(default_factory=dict)  # block -> text embedding from that block on
    recache: bool = True
    input_frames: torch.Tensor | None = None      # video-to-video: IMAGE [T, H, W, 3], encoded block by block
    input_latent: torch.Tensor | None = None      # video-to-video: LATENT samples [1, 16, F, h, w] (VAE units)
    report: list = field(default_factory=list)    # where the timeline's switches landed
    clip: object = None                           # a text encoder for prompts sent from the live page

    @property
    def num_blocks(self) -> int:
        return self.spec.num_blocks

    def session(self) -> causal.CausalSession:
        base = self.model.model
        return causal.CausalSession(causal_runner(self.model), self.spec, self.model.load_device,
                                    base.manual_cast_dtype or base.get_dtype(), speed_of(self.model))

    def input_blocks(self, vae=None):
        """Video-to-video: the input's latent blocks in VAE units, one per block as the rollout asks;
        frames are encoded with the Wan VAE's causal cache, so memory does not grow with the input."""
        fpb = self.spec.frames_per_block
        if self.input_latent is not None:
            for b in range(self.num_blocks):
                yield self.input_latent[:1, :, b * fpb:(b + 1) * fpb]
            return
        if vae is None:
            raise TempoInputError("an input video needs the Wan VAE to be encoded; run this stream with 'Tempo Causal "
                                  "Video to MP4' or 'Tempo Causal Video Decode' (their vae encodes it)")
        encoder = StreamingWanEncoder(vae)
        frames, held, fed = self.input_frames, [], 0
        try:
            for _ in range(self.num_blocks):
                while sum(x.shape[2] for x in held) < fpb:  # a ComfyUI 0.18+ encoder may hold frames back
                    if fed == frames.shape[0]:
                        raise TempoInputError("the input video ended before its last block was encoded")
                    end = min(fed + (1 if fed == 0 else 4), frames.shape[0])
                    out = encoder.encode(frames[fed:end], final=end == frames.shape[0])
                    fed = end
                    if out is not None:
                        held.append(out)
                ready = torch.cat(held, dim=2)
                held = [ready[:, :, fpb:]]
                yield ready[:, :, :fpb]
        finally:
            encoder.close()

    def blocks(self, step_callback=None, vae=None, live=None, decode_vae=None):
        """Yield (kind, latent in VAE units): ("prefix", ...) first when there is one, then ("block", ...).
        ``vae`` encodes an input video (video-to-video); ``live(block)`` may return a text embedding to
        switch to from that block (the live page); ``decode_vae``: a VAE loaded beside the model (a
        decode overlapped with the generation never loads models itself)."""
        mm.load_models_gpu([self.model] + ([decode_vae.patcher] if decode_vae is not None else []))
        lf = self.model.model.latent_format
        session = self.session()
        prefix = None if self.prefix is None else lf.process_in(self.prefix.to(session.device, torch.float32))
        raw = source = None
        if self.input_frames is not None or self.input_latent is not None:
            raw = self.input_blocks(vae)
            source = (lf.process_in(x.to(session.device, torch.float32)) for x in raw)
        try:
            for kind, latent in session.run(self.cond, prefix, step_callback, self.switches, self.recache, source,
                                            live):
                yield kind, self.prefix if kind == "prefix" else lf.process_out(latent.float()).cpu()
        finally:
            if raw is not None:
                raw.close()
            mm.soft_empty_cache()


MAX_LENGTH = 100000  # the length input's maximum


def _valid_lengths(fpb: int, mode: str, near: int) -> str:
    """The two valid lengths nearest ``near`` (any length up to the input's maximum): whole blocks of
    ``fpb`` latent frames are base + step * n frames, n >= 1."""
    step = 4 * fpb
    base = {"continue": 0, "image": 1}.get(mode, -3)
    top = (MAX_LENGTH - base) // step
    n = (near - base) / step
    picks = sorted({min(max(k, 1), top) for k in (int(n // 1), int(n // 1) + 1)})
    if len(picks) == 1:
        picks.append(min(max(picks[0] + (1 if picks[0] < top else -1), 1), top))
    return " or ".join(str(base + step * k) for k in sorted(set(picks)))


def block_start_frames(mode: str, fpb: int, num_blocks: int) -> list[int]:
    """Each block's first frame in the output video (the Wan VAE: latent 0 -> frame 0, latent j -> 4j-3..4j;
    a continuation's latents give 4 frames each; image-to-video's frame 0 is the start image)."""
    if mode == "continue":
        return [4 * b * fpb for b in range(num_blocks)]
    if mode == "image":
        return [4 * b * fpb + 1 for b in range(num_blocks)]
    return [0 if b == 0 else 4 * b * fpb - 3 for b in range(num_blocks)]


def cache_window(cache: str, preset, sink_size: int, local_attn_size: int, fpb: int,
                 legacy: tuple | None = None) -> tuple[int, int | None, str]:
    """(sink, window in cache terms or None for a full cache, a note for the node) from the cache
    input. ``legacy``: (sink_frames, window_frames) of a workflow saved with the old inputs."""
    if cache == "full":
        return 0, None, ""
    if cache == LEGACY_CACHE:
        sink, window = legacy if legacy is not None else (sink_size, local_attn_size)
        if window < fpb:
            raise TempoInputError(f"window_frames {window} is smaller than one block ({fpb}); use at least {fpb}")
        local = sink + window + fpb
        note = (f"this workflow uses the old cache inputs (cache 'rolling', sink_frames {sink}, window_frames {window}, "
                f"the block not counted); it runs as before, which in the authors' terms is cache 'window' with "
                f"sink_size {sink} and local_attn_size {local}: set those (or cache 'preset') and save the workflow")
        logging.warning("Tempo: " + note)
        return sink, window, note
    if cache == "preset":
        sink_size, local_attn_size = preset.sink_size, preset.local_attn_size
    try:
        return sink_size, causal.window_in_cache_terms(local_attn_size, sink_size, fpb), ""
    except ValueError as e:
        raise TempoInputError(f"{'the preset' if cache == 'preset' else 'local_attn_size'}: {e}") from None


def plan_video(model, positive, width, height, length, seed, schedule, custom_timesteps, shift, frames_per_block,
               cache, sink_size, local_attn_size, start_latent=None, continue_from=None,
               context_frames=DEFAULT_CONTEXT_FRAMES, timeline=None, switch="re-cache", input_video=None,
               input_latent=None, strength=DEFAULT_STRENGTH, clip=None, context_noise=0.0, legacy=None):
    """Check every input and build the plan; raises TempoInputError naming the input and the fix."""
    info = causal_info(model)
    if width % 16 or height % 16:
        raise TempoInputError(f"width and height must be multiples of 16 (the VAE's 8 times the patch's 2); "
                              f"got {width}x{height}: try {width // 16 * 16}x{height // 16 * 16}")
    stated = info.get("frames_per_block")
    check_choice(schedule, [*causal.PRESET_NAMES, "custom"], "schedule")
    check_choice(cache, (*CACHE_MODES, LEGACY_CACHE), "cache")
    check_choice(switch, SWITCHES, "switch")
    preset = causal.PRESETS.get(schedule, _SF)
    fpb = (stated or preset.frames_per_block) \
        if check_choice(frames_per_block, FRAMES_PER_BLOCK, "frames_per_block") == "auto" else int(frames_per_block)
    if stated and fpb != stated:
        raise TempoInputError(f"frames_per_block is {fpb} but {info.get('file')} was trained with {stated} frame(s) "
                              f"per block; set frames_per_block to {stated} (or auto)")
    if not 0 <= context_noise <= 1000:
        raise TempoInputError(f"context_noise {context_noise} is outside [0, 1000] (0, every published setting, "
                              "refills the cache from the clean block)")
    if start_latent is not None and continue_from is not None:
        raise TempoInputError("connect either start_latent (image-to-video) or continue_from (continuation), not both")
    if input_video is not None and input_latent is not None:
        raise TempoInputError("connect either input_video (frames) or input_latent (a Wan latent), not both")
    v2v = input_video is not None or input_latent is not None
    if v2v and (start_latent is not None or continue_from is not None):
        raise TempoInputError("video-to-video (input_video / input_latent) starts from the input's first frame; "
                              "disconnect start_latent and continue_from")
    if positive is not None and timeline is not None:
        raise TempoInputError("connect either positive (one prompt) or timeline (prompts over time), not both")
    if positive is None and timeline is None:
        raise TempoInputError("connect positive (CLIP Text Encode with the Wan text encoder) or a prompt timeline "
                              "('Tempo Prompt Timeline')")
    mode = "image" if start_latent is not None else "continue" if continue_from is not None else \
        "video" if v2v else "text"
    frames = None
    if mode == "video":
        latent_frames, frames = _input_latent_frames(input_video, input_latent, width, height, fpb)
    elif mode == "continue":
        if length % 4 or (length // 4) % fpb:
            raise TempoInputError(f"a continuation adds 4 frames per latent frame in whole blocks of {fpb}: length "
                                  f"{length} does not fit; try {_valid_lengths(fpb, mode, length)}")
        latent_frames = length // 4
    else:
        if (length - 1) % 4:
            raise TempoInputError(f"length {length} is not 1 + 4k (the Wan VAE makes 1 + 4k frames); try "
                                  f"{_valid_lengths(fpb, mode, length)}")
        total = (length - 1) // 4 + 1
        latent_frames = total - 1 if mode == "image" else total
        if latent_frames % fpb or latent_frames == 0:
            raise TempoInputError(f"length {length} gives {latent_frames} latent frame(s) to generate, not whole blocks "
                                  f"of {fpb}; try {_valid_lengths(fpb, mode, length)}")
    prefix = None
    if mode == "image":
        prefix = start_latent["samples"][:, :, :1]
    elif mode == "continue":
        prefix = continue_from["samples"][:, :, -max(1, context_frames):]
    if prefix is not None:
        if prefix.ndim != 5 or prefix.shape[1] != 16:
            raise TempoInputError("the start/continuation latent is not a Wan video latent [1, 16, T, h, w]; encode the "
                                  "start image with VAE Encode and the Wan VAE")
        if tuple(prefix.shape[-2:]) != (height // 8, width // 8):
            raise TempoInputError(f"the {'start image' if mode == 'image' else 'previous clip'} is "
                                  f"{prefix.shape[-1] * 8}x{prefix.shape[-2] * 8} but the video is {width}x{height}; "
                                  "resize it (ImageScale before VAE Encode) or set width/height to match")
        prefix = prefix[:1]
    first = ()
    if schedule == "custom":
        timesteps = causal.parse_timesteps(custom_timesteps)
    else:
        timesteps, shift = preset.timesteps, preset.shift
        if mode != "continue":  # the longer first-block list is for the video's first frames
            first = preset.first_timesteps
    try:
        sigmas = causal.schedule_sigmas(timesteps, shift)
        first_sigmas = causal.schedule_sigmas(first, shift) if first else []
        if v2v:
            sigmas = causal.strength_sigmas(sigmas, strength)
            first_sigmas = causal.strength_sigmas(first_sigmas, strength) if first_sigmas else []
    except ValueError as e:
        raise TempoInputError(f"{'strength' if 'strength' in str(e) else 'custom_timesteps'}: {e}") from None
    sink, window, note = cache_window(cache, preset, sink_size, local_attn_size, fpb, legacy)
    num_blocks = latent_frames // fpb
    switches, report = {}, []
    if timeline is not None:
        if not isinstance(timeline, tl.PromptTimeline):
            raise TempoInputError("timeline is not a prompt timeline; connect 'Tempo Prompt Timeline'")
        starts = block_start_frames(mode, fpb, num_blocks)
        total_frames = {"image": 1 + 4 * latent_frames, "continue": 4 * latent_frames}.get(mode, 1 + 4 * (latent_frames - 1))
        try:
            cond, switches, report = tl.place(timeline, starts, total_frames)
        except ValueError as e:
            raise TempoInputError(f"timeline: {e}") from None
    else:
        cond = positive[0][0]
    for c in [cond, *switches.values()]:
        if c.ndim != 3:
            raise TempoInputError("the conditioning is not text conditioning; use CLIP Text Encode with the Wan text "
                                  "encoder")
    longest = max(c.shape[1] for c in [cond, *switches.values()])
    if longest > causal.TEXT_TOKENS:
        report.append(f"a prompt is {longest} tokens long; the reference pipelines read {causal.TEXT_TOKENS} (their "
                      "tokenizer cuts the rest), so only the first 512 condition the video. 'Tempo Prompt Timeline' "
                      "cuts long prompts before encoding, as the reference does")
        logging.warning("Tempo: " + report[-1])
    if note:
        report.append(note)
    if schedule != "custom" and fpb != preset.frames_per_block:
        fits = [n for n, p in causal.PRESETS.items() if p.frames_per_block == fpb]
        report.append(f"the {schedule} preset was published with {preset.frames_per_block} frame(s) per block and "
                      f"this run makes {fpb}: its denoising list and window are used as they are; the presets "
                      f"published with {fpb}: {', '.join(fits)}")
    spec = causal.VideoSpec(height // 8, width // 8, latent_frames, fpb, tuple(sigmas), seed, sink, window,
                            first_sigmas=tuple(first_sigmas), context_noise=float(context_noise))
    plan = CausalVideoPlan(model, cond[:1], spec, width, height, prefix, mode == "image", dict(info),
                           {b: c[:1] for b, c in switches.items()}, switch == "re-cache", frames,
                           None if input_latent is None else input_latent["samples"], report,
                           clip if clip is not None else getattr(timeline, "encoder", None))
    check_memory(plan)
    return plan


def _input_latent_frames(input_video, input_latent, width, height, fpb) -> tuple:
    """(latent frames to generate, the IMAGE frames or None) for video-to-video; the output is as long
    as the input, trimmed to whole blocks."""
    if input_latent is not None:
        lat = input_latent.get("samples") if isinstance(input_latent, dict) else None
        if lat is None or lat.ndim != 5 or lat.shape[1] != 16:
            raise TempoInputError("input_latent is not a Wan video latent [1, 16, T, h, w]; encode the clip with VAE "
                                  "Encode and the Wan VAE, or connect its frames to input_video")
        size, n = (lat.shape[-1] * 8, lat.shape[-2] * 8), lat.shape[2]
        frames_text = f"{n} latent frame(s)"
    else:
        if not isinstance(input_video, torch.Tensor) or input_video.ndim != 4 or input_video.shape[-1] != 3:
            raise TempoInputError("input_video is not video frames (IMAGE [frames, height, width, 3]); connect the "
                                  "IMAGE output of Load Video / Get Video Components")
        size, t = (input_video.shape[2], input_video.shape[1]), input_video.shape[0]
        n = 1 + (t - 1) // 4
        frames_text = f"{t} frame(s)"
    if size != (width, height):
        raise TempoInputError(f"the input video is {size[0]}x{size[1]} but the output is {width}x{height}; resize the "
                              f"input (Upscale Image to {width}x{height}) or set width/height to {size[0]}x{size[1]}")
    if n < fpb:
        need = f"{1 + 4 * (fpb - 1)} frames" if input_latent is None else f"{fpb} latent frames"
        raise TempoInputError(f"the input video has {frames_text}, too few for one block of {fpb} latent frames; it "
                              f"needs at least {need}")
    latent_frames = n // fpb * fpb
    if latent_frames < n:
        logging.info(f"Tempo: the input's last {n - latent_frames} latent frame(s) do not fill a block of {fpb} and "
                     "are not used")
    return latent_frames, None if input_latent is not None else input_video


def _gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB"


def check_memory(plan: CausalVideoPlan):
    """Refuse, before anything is allocated, a video whose KV cache and working memory cannot fit the
    device even after ComfyUI offloads what it holds there."""
    prefix_frames = 0 if plan.prefix is None else plan.prefix.shape[2]
    session = plan.session()
    spec = plan.spec
    cache = session.cache_bytes(prefix_frames)
    per_pass = spec.frames_per_block
    if plan.switches and plan.recache:  # a re-cache passes the held frames at once
        per_pass = spec.cache_frames(prefix_frames) + spec.frames_per_block
    work = session.activation_bytes(per_pass, prefix_frames)
    # frames a block attends to, itself included (the cache holds the others)
    attended = spec.cache_frames(prefix_frames) + (spec.frames_per_block if spec.window is not None else 0)
    device = plan.model.load_device
    free = mm.get_free_memory(device) + compat.reclaimable_bytes(device)
    if cache + work > 0.8 * free:
        raise TempoInputError(
            f"this video needs about {_gib(cache + work)} ({_gib(cache)} of KV cache, {_gib(work)} working memory "
            f"for {plan.width}x{plan.height}) but only {_gib(free)} can be had on {device}; lower the resolution, or "
            f"set cache to 'window' with a smaller local_attn_size (now {attended})")


def check_vae_memory(plan: CausalVideoPlan, vae):
    """The streamed Wan VAE decode (and encode, for video-to-video) of one latent frame at this size,
    by ComfyUI's own estimates for the Wan VAE, against its device."""
    h, w = plan.height // 8, plan.width // 8
    need = vae.memory_used_decode((1, 16, 1, h, w), vae.vae_dtype)
    if plan.input_frames is not None:
        need = max(need, vae.memory_used_encode((1, 3, 4, plan.height, plan.width), vae.vae_dtype))
    # ComfyUI's Wan VAE estimates are generous (made to choose tiling); a GPU that runs short raises an
    # out-of-memory error the server survives, the CPU's RAM running out kills it: so on a GPU only a
    # decode larger than the whole device is refused, on the CPU one larger than the free RAM.
    cpu = getattr(vae.device, "type", "cpu") == "cpu"
    have = mm.get_free_memory(vae.device) if cpu else mm.get_total_memory(vae.device)
    if need > 0.8 * have:
        raise TempoInputError(
            f"decoding this video with the Wan VAE needs about {_gib(need)} per frame at {plan.width}x{plan.height} "
            f"but {vae.device} has {_gib(have)} {'free' if cpu else 'in all'}; lower the resolution (and upscale the "
            "frames afterwards)")


class CausalVideoSampler(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="TempoCausalVideoSampler",
            display_name="Tempo Causal Video Sampler",
            category=SUBCAT,
            description="Makes a video of any length block by block with a real-time model, remembering earlier "
                        "frames so the motion carries on. Connect 'Tempo Causal Video to MP4' or 'Tempo Causal Video "
                        "Decode'.",
            inputs=[
                io.Model.Input("model", tooltip="A causal Wan 2.1 model from 'Tempo Causal Video Loader' (it knows "
                                                "its block size), or from Load Diffusion Model (then set "
                                                "frames_per_block)."),
                io.Conditioning.Input("positive", optional=True,
                                      tooltip="Your prompt (CLIP Text Encode with the Wan text encoder; no cfg). For "
                                              "prompts that change over time use timeline instead."),
                io.Int.Input("width", default=832, min=16, max=4096, step=16, tooltip="Video width, a multiple of "
                                                                                      "16. 832x480 is the usual "
                                                                                      "size; 416x240 is a quarter of "
                                                                                      "the work on a small GPU."),
                io.Int.Input("height", default=480, min=16, max=4096, step=16, tooltip="Video height, a multiple of "
                                                                                       "16 (480 with width 832; 240 "
                                                                                       "with 416 on a small GPU)."),
                io.Int.Input("length", default=81, min=1, max=MAX_LENGTH, step=4,
                             tooltip="Frames, 1 + 4k in whole blocks: 81 = 5 s at 16 fps = 7 blocks of 3. "
                                     "Continuation: new frames, a multiple of 4 x frames per block."),
                io.Int.Input("seed", default=0, min=0, max=0xFFFFFFFFFFFFFFFF, control_after_generate=True,
                             tooltip="Same seed, same video."),
                io.Combo.Input("schedule", options=[*causal.PRESET_NAMES, "custom"], default="Self Forcing",
                               tooltip="Pick the model you loaded: its published steps, block size and memory window "
                                       "(cache 'preset'). custom: set custom_timesteps and shift."),
                io.Combo.Input("frames_per_block", options=list(FRAMES_PER_BLOCK), default="auto",
                               tooltip="Latent frames made at once: 3 (chunk-wise models) or 1 (frame-wise). auto "
                                       "reads the model file, else the schedule."),
                io.Combo.Input("cache", options=[*CACHE_MODES, LEGACY_CACHE], default="preset",
                               tooltip="Memory of earlier frames. preset: the model's own, fixed. window: sizes "
                                       "below. full: all (grows). Old 'rolling' workflows run, converted."),
                io.Int.Input("sink_size", default=DEFAULT_SINK, min=0, max=64, optional=True,
                             tooltip="cache 'window' only: how many first latent frames stay in memory for good, as "
                                     "an anchor (every preset: 3). Counted in local_attn_size."),
                io.Int.Input("local_attn_size", default=DEFAULT_LOCAL_ATTN, min=1, max=1024, optional=True,
                             tooltip="cache 'window' only: latent frames each block sees, its own and the anchor "
                                     "included: 21 (Self Forcing) or 12 (LongLive). Fixed memory."),
                io.String.Input("custom_timesteps", default=DEFAULT_TIMESTEPS, optional=True,
                                tooltip="Only for schedule 'custom': the steps each block runs, from 1000 down, e.g. "
                                        "'1000, 750, 500, 250' (Self Forcing's)."),
                io.Float.Input("shift", default=DEFAULT_SHIFT, min=0.1, max=100.0, step=0.1, optional=True,
                               tooltip="Only for schedule 'custom': moves the steps towards more noise. 5 as Self "
                                       "Forcing; 1 uses them as typed (as CausVid)."),
                io.Latent.Input("start_latent", optional=True,
                                tooltip="Image-to-video: the start image through VAE Encode (Wan VAE), the same size "
                                        "as the video."),
                io.Latent.Input("continue_from", optional=True,
                                tooltip="To continue a clip: the LATENT output of the earlier MP4 or Decode node; "
                                        "the video goes on from its last frames."),
                io.Int.Input("context_frames", default=DEFAULT_CONTEXT_FRAMES, min=1, max=64, optional=True,
                             tooltip="Continuation: how many last latent frames of the earlier clip it remembers "
                                     "(default 3)."),
                Timeline.Input("timeline", optional=True,
                               tooltip="Prompts over time from 'Tempo Prompt Timeline', instead of positive. Each "
                                       "change starts on the next block (12 frames with blocks of 3)."),
                io.Combo.Input("switch", options=list(SWITCHES), default="re-cache", optional=True,
                               tooltip="At a prompt change: re-cache (LongLive) refreshes the remembered frames: "
                                       "motion carries on, the new prompt shows at once. plain: no refresh."),
                io.Image.Input("input_video", optional=True,
                               tooltip="Video-to-video: frames (Load Video → Get Video Components, scaled to width x "
                                       "height). The output is as long as the input; length is ignored."),
                io.Latent.Input("input_latent", optional=True,
                                tooltip="Video-to-video from a Wan video LATENT (VAE Encode with the Wan VAE) "
                                        "instead of frames."),
                io.Float.Input("strength", default=DEFAULT_STRENGTH, min=0.01, max=1.0, step=0.01, optional=True,
                               tooltip="Video-to-video: how much to change the input. 1 ignores it (text-to-video), "
                                       "lower keeps more. 0.7: StreamDiffusionV2's default."),
                io.Clip.Input("clip", optional=True,
                              tooltip="Optional Wan text encoder, to type new prompts on the live page (/tempo/live) "
                                      "while it plays. Without it the page offers saved prompts."),
                io.Float.Input("context_noise", default=0.0, min=0.0, max=1000.0, step=1.0, optional=True,
                               tooltip="Advanced: how noisy the model is told the frames kept in memory are. 0 as "
                                       "every published model uses; leave at 0."),
            ],
            outputs=[VideoStream.Output(display_name="video", tooltip="A video stream, generated when consumed.")],
            hidden=[io.Hidden.prompt, io.Hidden.unique_id],
        )

    @classmethod
    def execute(cls, model, width, height, length, seed, schedule, frames_per_block, cache,
                sink_size=DEFAULT_SINK, local_attn_size=DEFAULT_LOCAL_ATTN, positive=None,
                custom_timesteps=DEFAULT_TIMESTEPS, shift=DEFAULT_SHIFT, start_latent=None, continue_from=None,
                context_frames=DEFAULT_CONTEXT_FRAMES, timeline=None, switch="re-cache", input_video=None,
                input_latent=None, strength=DEFAULT_STRENGTH, clip=None, context_noise=0.0) -> io.NodeOutput:
        legacy = legacy_cache_inputs(getattr(cls.hidden, "prompt", None), getattr(cls.hidden, "unique_id", None)) \
            if cache == LEGACY_CACHE else None
        plan = plan_video(model, positive, width, height, length, seed, schedule, custom_timesteps, shift,
                          frames_per_block, cache, sink_size, local_attn_size, start_latent, continue_from,
                          context_frames, timeline, switch, input_video, input_latent, strength, clip, context_noise,
                          legacy)
        if not plan.report:
            return io.NodeOutput(plan)
        text = "\n".join(([f"prompt timeline ({switch}):"] if timeline is not None else []) + plan.report)
        logging.info("Tempo: " + text.replace("\n", "; "))
        return io.NodeOutput(plan, ui=ui.PreviewText(text))


def legacy_cache_inputs(prompt, unique_id) -> tuple | None:
    """(sink_frames, window_frames) when this node's API inputs still carry the old names (a workflow
    exported in API format before the authors' terms); None when they do not (an editor workflow's
    old values arrive positionally, in sink_size / local_attn_size)."""
    inputs = ((prompt or {}).get(str(unique_id)) or {}).get("inputs") or {}
    if "sink_frames" not in inputs and "window_frames" not in inputs:
        return None
    values = (inputs.get("sink_frames", 3), inputs.get("window_frames", 18))
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        raise TempoInputError("sink_frames / window_frames of this old workflow come from other nodes; set cache to "
                              "'window' with sink_size = sink_frames and local_attn_size = sink_frames + "
                              "window_frames + frames per block")
    return values


def DECODER_INPUT():
    return io.Combo.Input("decoder", options=[WAN_VAE_DECODER, *taehv_files()], default=WAN_VAE_DECODER, optional=True,
                          tooltip="Wan VAE: full quality. TAEHV tiny decoder (taew2_1.pth, lighttaew2_1 in "
                                  "models/vae_approx): many times faster, softer, for real time.")


class StopRequested(Exception):
    """The live page asked to stop: the video ends after the block being made."""


def stopped_text(done: int, total: int) -> str:
    return f"stopped from the live page after block {done} of {total}"


def finished_ui(stream, result: dict | None = None):
    """What the node shows when its run ends: the video, and a line saying so when the live page stopped it."""
    ui_dict = {} if result is None else ui.PreviewVideo([result]).as_dict()
    if stream.stop_requested:
        ui_dict["text"] = [stopped_text(stream.blocks_done, stream.total_blocks)]
    return ui_dict or None


def run_stream(plan: CausalVideoPlan, vae, on_frames=None, live=None, decoder_name: str = WAN_VAE_DECODER):
    """Generate, decode each block as it finishes, hand frames on; return the LATENT of the clip.

    Progress and previews per block; an interrupt stops at the next block boundary, and the
    KV cache is freed either way. ``live`` (a live.hub.LiveStream) gets each block's frames while
    someone watches, and may stop the video or change its prompt between blocks."""
    from . import live as live_page

    if decoder_name == WAN_VAE_DECODER:
        check_vae_memory(plan, vae)
        decoder = StreamingWanDecoder(vae)
    else:  # TAEHV: a name from a shared workflow, so only a file listed in models/vae_approx
        decoder = StreamingTAEHVDecoder(resolve_model_path(decoder_name, TAEHV_FOLDERS, "decoder"))
    pbar = comfy.utils.ProgressBar(plan.num_blocks)
    latents, done = [], 0
    overlap = overlap_of(plan.model, plan.model.load_device)

    def at_block_start(block, step):
        if step == 0:
            mm.throw_exception_if_processing_interrupted()
            if live is not None:
                if block > 0 and live.stop_requested:
                    raise StopRequested()
                live.block_started()

    def finish(kind, latent, made_at):
        """Decode a finished block and hand its frames on (on the worker when decode overlaps)."""
        nonlocal done
        frames = decoder.decode(latent, load=not overlap)
        if kind == "prefix" and not plan.keep_prefix:
            return  # continuation context: warms the decoder's cache, is not output again
        latents.append(latent)
        if on_frames is not None:
            on_frames(frames)
        if kind == "block":
            done += 1
            if live is not None:
                t0 = time.perf_counter()
                pictures = live_page.jpegs(frames) if live.watching() else None
                live.publish(done - 1, frames.shape[0], pictures, made_at, time.perf_counter() - t0)
            from PIL import Image

            preview = Image.fromarray((frames[-1].numpy() * 255).astype("uint8"))
            pbar.update_absolute(done, plan.num_blocks, ("JPEG", preview, 512))

    made = plan.blocks(at_block_start, vae, None if live is None else live_page.prompt_source(live, plan),
                       decode_vae=vae if overlap and decoder_name == WAN_VAE_DECODER else None)
    try:
        run_in_order(finish, ((kind, latent, time.time()) for kind, latent in made), overlap,
                     device=plan.model.load_device)
    except StopRequested:
        logging.info(f"Tempo: {stopped_text(done, plan.num_blocks)}")
        if live is not None:
            live.event(f"stopped after block {done}")
    finally:
        made.close()
        decoder.close()
    return {"samples": torch.cat(latents, dim=2)}


class CausalVideoToMP4(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="TempoCausalVideoSaveMP4",
            display_name="Tempo Causal Video to MP4",
            category=SUBCAT,
            description="Runs the causal video and saves an H.264 mp4 block by block as it is made, so long videos "
                        "never fill memory. Watch it at /tempo/live. Also outputs the LATENT to continue the clip.",
            inputs=[
                VideoStream.Input("video", tooltip="From 'Tempo Causal Video Sampler'."),
                io.Vae.Input("vae", tooltip="The Wan 2.1 VAE (Load VAE: wan_2.1_vae.safetensors); keep it connected "
                                            "even with a TAEHV decoder."),
                io.String.Input("filename_prefix", default="tempo/causal", tooltip="Output file name prefix, inside "
                                                                                   "ComfyUI's output folder."),
                io.Float.Input("fps", default=16.0, min=1.0, max=120.0, step=1.0, tooltip="Playback speed: Wan 2.1 "
                                                                                          "models are made for 16 "
                                                                                          "fps (81 frames = 5 s)."),
                io.Int.Input("crf", default=19, min=0, max=51, tooltip="H.264 quality: lower is better and bigger; "
                                                                       "19 by default."),
                DECODER_INPUT(),
            ],
            outputs=[io.Latent.Output(tooltip="The clip's latent video (feed continue_from of the next job).")],
            hidden=[io.Hidden.unique_id, io.Hidden.prompt, io.Hidden.extra_pnginfo],
            is_output_node=True,
        )

    @classmethod
    def execute(cls, video, vae, filename_prefix, fps, crf, decoder=WAN_VAE_DECODER) -> io.NodeOutput:
        full_dir, filename, counter, subfolder = output_path(filename_prefix, video.width, video.height)
        os.makedirs(full_dir, exist_ok=True)
        name = f"{filename}_{counter:05}_.mp4"
        path = os.path.join(full_dir, name)
        # the workflow goes into the file as ComfyUI's Save Video writes it, so it drags back into the editor
        metadata = compat.saved_metadata(getattr(cls.hidden, "prompt", None), getattr(cls.hidden, "extra_pnginfo", None))
        writer = Mp4Writer(path, video.width, video.height, fps, crf, metadata)
        stream = live_page.open_stream(video, f"{subfolder}/{name}".lstrip("/"), fps, getattr(cls.hidden, "unique_id", None))
        try:
            latent = run_stream(video, vae, writer.write, stream, decoder)
        except BaseException as e:
            writer.close()
            if os.path.exists(path) and writer.frames == 0:
                os.remove(path)
            stream.finish("failed", str(e) or type(e).__name__, path if os.path.exists(path) else None)
            raise
        writer.close()
        stream.finish("stopped" if stream.stop_requested else "finished", video=path)
        result = {"filename": name, "subfolder": subfolder, "type": "output", "format": "video/h264-mp4",
                  "frame_count": writer.frames}
        return io.NodeOutput(latent, ui=finished_ui(stream, result))


class CausalVideoDecode(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="TempoCausalVideoDecode",
            display_name="Tempo Causal Video Decode",
            category=SUBCAT,
            description="Runs the causal video and returns all its frames (IMAGE) and LATENT, decoding each block as "
                        "it is made; for ComfyUI's own video nodes. All frames stay in memory.",
            inputs=[VideoStream.Input("video", tooltip="From 'Tempo Causal Video Sampler'."),
                    io.Vae.Input("vae", tooltip="The Wan 2.1 VAE (Load VAE: wan_2.1_vae.safetensors); keep it "
                                                "connected even with a TAEHV decoder."), DECODER_INPUT()],
            outputs=[io.Image.Output(tooltip="All frames, in memory."), io.Latent.Output()],
            hidden=[io.Hidden.unique_id],
        )

    @classmethod
    def execute(cls, video, vae, decoder=WAN_VAE_DECODER) -> io.NodeOutput:
        frames = []
        stream = live_page.open_stream(video, "frames in memory", 16.0, getattr(cls.hidden, "unique_id", None))
        try:
            latent = run_stream(video, vae, frames.append, stream, decoder)
        except BaseException as e:
            stream.finish("failed", str(e) or type(e).__name__)
            raise
        stream.finish("stopped" if stream.stop_requested else "finished")
        return io.NodeOutput(torch.cat(frames, 0), latent, ui=finished_ui(stream))


class SaveConditioning(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="TempoSaveConditioning",
            display_name="Tempo Save Conditioning",
            category=CATEGORY + "/utils",
            description="Saves an encoded prompt to models/tempo_conditioning/, so later jobs can reuse it without "
                        "loading the text encoder (Wan's umT5-XXL is 5.7B parameters).",
            inputs=[io.Conditioning.Input("conditioning", tooltip="From CLIP Text Encode."),
                    io.String.Input("name", default="prompt", tooltip="File name, without extension (letters, "
                                                                      "digits, - _ . only).")],
            outputs=[],
            is_output_node=True,
        )

    @classmethod
    def execute(cls, conditioning, name) -> io.NodeOutput:
        from safetensors.torch import save_file

        safe = "".join(c for c in name if c.isalnum() or c in "-_.")[:MAX_NAME_CHARS] or "prompt"
        folder = folder_paths.get_folder_paths(CONDITIONING_FOLDER)[0]
        os.makedirs(folder, exist_ok=True)
        path = os.path.join(folder, safe + ".safetensors")
        if not is_inside(path, [folder]):  # a symlink in the folder pointing elsewhere
            raise TempoInputError(f"cannot save '{shown(safe)}' in models/{CONDITIONING_FOLDER}/; choose another name")
        tensors = {f"cond.{i}": c[0].contiguous().cpu() for i, c in enumerate(conditioning)}
        save_file(tensors, path)
        return io.NodeOutput(ui=ui.PreviewText(f"saved {safe}.safetensors"))


class LoadConditioning(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="TempoLoadConditioning",
            display_name="Tempo Load Conditioning",
            category=CATEGORY + "/utils",
            description="Loads a prompt saved by 'Tempo Save Conditioning', so no text encoder needs loading.",
            inputs=[io.Combo.Input("name", options=folder_paths.get_filename_list(CONDITIONING_FOLDER),
                                   tooltip="A saved prompt in models/tempo_conditioning/.")],
            outputs=[io.Conditioning.Output()],
        )

    @classmethod
    def execute(cls, name) -> io.NodeOutput:
        from ..loaders.files import read_file

        sd, _ = read_file(resolve_model_path(name, (CONDITIONING_FOLDER,), "saved conditioning"))
        return io.NodeOutput([[sd[k], {}] for k in sorted(sd, key=lambda k: int(k.split(".")[1]))])


NODES = [CausalVideoLoader, CausalVideoSampler, CausalVideoToMP4, CausalVideoDecode, SaveConditioning, LoadConditioning]
