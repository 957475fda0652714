"""Causal KV-cache video nodes: loader, sampler (a video stream), stream to mp4 / frames,
and saved text conditioning (to skip loading a 5.7B text encoder on every run)."""

from __future__ import annotations

import dataclasses
import logging
import os
from dataclasses import dataclass, field

import torch

import comfy.model_management as mm

from ..errors import TempoError
from ..samplers import causal, causal_plan, timeline as tl
from ..samplers.causal_plan import CACHE_MODES, DEFAULT_STRENGTH, FRAMES_PER_BLOCK, LEGACY_CACHE, MAX_LENGTH, SWITCHES
from ..video.mp4 import Mp4Writer
from .causal_speed import speed_of
from .causal_stream import StreamRunner, finished_ui
from .wan_models import (WAN_VAE_DECODER, encoded_blocks,
                         causal_info, causal_runner, load_causal_model, taehv_files, text_width)
from . import compat, live as live_page
from .compat import io, ui
from .common import CAUSAL_CATEGORY, CAUSAL_WEIGHT_DTYPES, TempoInputError, encode_wan_prompt, model_file_list, \
    name_problem_at_queue, output_path, resolve_model_path, widget_problem

SUBCAT = CAUSAL_CATEGORY
CAUSAL_FOLDERS = ("diffusion_models", "checkpoints", "diffusers")
VideoStream = io.Custom("TEMPO_VIDEO_STREAM")
Timeline = io.Custom("TEMPO_PROMPT_TIMELINE")
# The sampler's defaults, written once (the core's settings) for the schema.
_DEFAULTS = causal_plan.CausalSettings()


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
    def validate_inputs(cls, model_name=None):
        return name_problem_at_queue(model_name, CAUSAL_FOLDERS) or True

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
        yield from encoded_blocks(vae, self.input_frames, fpb, self.num_blocks)

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
            for kind, latent in session.run(self.cond, prefix=prefix, step_callback=step_callback,
                                            switches=self.switches, recache=self.recache, source=source, live=live):
                # on the model's device: the consumer moves it (on the decode worker when decode overlaps), so
                # the block loop never waits for a block to reach the host
                yield kind, self.prefix if kind == "prefix" else lf.process_out(latent.float())
        finally:
            if raw is not None:
                raw.close()
            mm.soft_empty_cache()


def settings_of(widgets: dict) -> causal_plan.CausalSettings:
    """The sampler's widget values (by input name) as the core's settings."""
    names = {f.name for f in dataclasses.fields(causal_plan.CausalSettings)}
    return causal_plan.CausalSettings(**{k: v for k, v in widgets.items() if k in names})


def plan_video(model, positive=None, start_latent=None, continue_from=None, timeline=None, input_video=None,
               input_latent=None, clip=None, **widgets):
    """Check every input and build the plan; raises TempoInputError naming the input and the fix. The rules
    of the run are the core's (samplers/causal_plan.py); here: what the inputs connected are, and tensors."""
    settings = settings_of(widgets)
    info = causal_info(model)
    mode = _mode(positive=positive, timeline=timeline, start_latent=start_latent, continue_from=continue_from,
                 input_video=input_video, input_latent=input_latent)
    try:
        frames, counted = _input_length(input_video, input_latent, settings) if mode == "video" else (None, "frame")
        run = causal_plan.plan(settings, mode, stated_fpb=info.get("frames_per_block"),
                               file=info.get("file") or "the checkpoint", input_frames=frames, input_counted=counted)
    except TempoError as e:
        raise TempoInputError(str(e)) from None
    prefix = _prefix(mode, start_latent, continue_from, settings)
    cond, switches, report = _conditioning(positive, timeline, run, text_width(model))
    report += list(run.notes)
    for note in run.notes:
        logging.warning("Tempo: " + note)
    plan = CausalVideoPlan(model=model, cond=cond[:1], spec=run.spec, width=settings.width, height=settings.height,
                           prefix=prefix, keep_prefix=mode == "image", info=dict(info),
                           switches={b: c[:1] for b, c in switches.items()}, recache=settings.switch == "re-cache",
                           input_frames=input_video if input_latent is None else None,
                           input_latent=None if input_latent is None else input_latent["samples"], report=report,
                           clip=clip if clip is not None else getattr(timeline, "encoder", None))
    check_memory(plan)
    return plan


def _mode(*, positive, timeline, start_latent, continue_from, input_video, input_latent) -> str:
    """Which run the connected inputs ask for; contradictory connections are refused."""
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
    return "image" if start_latent is not None else "continue" if continue_from is not None else \
        "video" if v2v else "text"


def _input_length(input_video, input_latent, settings) -> tuple[int, str]:
    """Video-to-video: (the input's length, counted in "frame"s or "latent" frames), its size checked."""
    if input_latent is not None:
        lat = input_latent.get("samples") if isinstance(input_latent, dict) else None
        if lat is None or lat.ndim != 5 or lat.shape[1] != 16:
            raise TempoInputError("input_latent is not a Wan video latent [1, 16, T, h, w]; encode the clip with VAE "
                                  "Encode and the Wan VAE, or connect its frames to input_video")
        size, length, counted = (lat.shape[-1] * 8, lat.shape[-2] * 8), lat.shape[2], "latent"
    else:
        if not isinstance(input_video, torch.Tensor) or input_video.ndim != 4 or input_video.shape[-1] != 3:
            raise TempoInputError("input_video is not video frames (IMAGE [frames, height, width, 3]); connect the "
                                  "IMAGE output of Load Video / Get Video Components")
        size, length, counted = (input_video.shape[2], input_video.shape[1]), input_video.shape[0], "frame"
    w, h = settings.width, settings.height
    if size != (w, h):
        raise TempoInputError(f"the input video is {size[0]}x{size[1]} but the output is {w}x{h}; resize the input "
                              f"(Upscale Image to {w}x{h}) or set width/height to {size[0]}x{size[1]}")
    return length, counted


def _prefix(mode: str, start_latent, continue_from, settings):
    """The clean latent frames written to the cache first: the start image's, or the previous clip's last."""
    if mode == "image":
        prefix = start_latent["samples"][:, :, :1]
    elif mode == "continue":
        prefix = continue_from["samples"][:, :, -max(1, settings.context_frames):]
    else:
        return None
    if prefix.ndim != 5 or prefix.shape[1] != 16:
        raise TempoInputError("the start/continuation latent is not a Wan video latent [1, 16, T, h, w]; encode the "
                              "start image with VAE Encode and the Wan VAE")
    if tuple(prefix.shape[-2:]) != (settings.height // 8, settings.width // 8):
        raise TempoInputError(f"the {'start image' if mode == 'image' else 'previous clip'} is "
                              f"{prefix.shape[-1] * 8}x{prefix.shape[-2] * 8} but the video is "
                              f"{settings.width}x{settings.height}; resize it (ImageScale before VAE Encode) or set "
                              "width/height to match")
    return prefix[:1]


def _conditioning(positive, timeline, run, width) -> tuple:
    """(the first prompt's embedding, {block: embedding from it on}, what to tell the node). Each
    embedding must be as wide as the model's text input (``width``); a timeline's typed prompts are
    encoded only once every prompt has a block."""
    switches, report = {}, []
    if timeline is not None:
        if not isinstance(timeline, tl.PromptTimeline):
            raise TempoInputError("timeline is not a prompt timeline; connect 'Tempo Prompt Timeline'")
        for e in timeline.entries:
            if e.cond is not None:
                _check_text(e.cond, width, f"the timeline's prompt at {e.asked} ('{tl.short(e.label)}')")
        try:
            cond, switches, report = tl.place(timeline, list(run.block_starts), run.total_frames,
                                              encode=_encoder(timeline.encoder, width))
        except ValueError as e:
            raise TempoInputError(f"timeline: {e}") from None
    else:
        try:
            cond = positive[0][0]
        except (TypeError, IndexError, KeyError):
            cond = None
        _check_text(cond, width, "positive")
    longest = max(c.shape[1] for c in [cond, *switches.values()])
    if longest > causal.TEXT_TOKENS:
        report.append(f"a prompt is {longest} tokens long; the reference pipelines read {causal.TEXT_TOKENS} (their "
                      "tokenizer cuts the rest), so only the first 512 condition the video. 'Tempo Prompt Timeline' "
                      "cuts long prompts before encoding, as the reference does")
        logging.warning("Tempo: " + report[-1])
    return cond, switches, report


def _check_text(cond, width, what: str):
    """``cond`` is text conditioning [batch, tokens, width] that this model reads."""
    if not isinstance(cond, torch.Tensor) or cond.ndim != 3:
        raise TempoInputError(f"{what} is not text conditioning; use CLIP Text Encode with the Wan text encoder")
    if width is not None and cond.shape[-1] != width:
        raise TempoInputError(f"{what} is text conditioning {cond.shape[-1]} wide, but this model reads {width} wide "
                              f"(Wan's umT5-XXL text encoder); it was made by another text encoder (an SD CLIP gives "
                              "768): encode it with Load CLIP, type wan, umt5_xxl_fp8_e4m3fn_scaled.safetensors")


def _encoder(clip, width):
    """encode(text) for a timeline's typed prompts, each checked as the model's text input."""
    if clip is None:
        return None

    def encode(text: str) -> torch.Tensor:
        cond = encode_wan_prompt(clip, text)[0][0]
        _check_text(cond, width, f"the timeline's prompt '{tl.short(text)}'")
        return cond[:1]

    return encode


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


# The sampler's inputs, in the order the editor shows them.
def _model_and_prompt() -> list:
    """The model and the one prompt."""
    return [
        io.Model.Input("model", tooltip="A causal Wan 2.1 model from 'Tempo Causal Video Loader' (it knows its block "
                                        "size), or from Load Diffusion Model (then set frames_per_block)."),
        io.Conditioning.Input("positive", optional=True,
                              tooltip="Your prompt (CLIP Text Encode with the Wan text encoder; no cfg). For prompts "
                                      "that change over time use timeline instead."),
    ]


def _video_size() -> list:
    """The video's size, length and noise seed."""
    return [
        io.Int.Input("width", default=832, min=16, max=4096, step=16,
                     tooltip="Video width, a multiple of 16. 832x480 is the usual size; 416x240 is a quarter of the "
                             "work on a small GPU."),
        io.Int.Input("height", default=480, min=16, max=4096, step=16,
                     tooltip="Video height, a multiple of 16 (480 with width 832; 240 with 416 on a small GPU)."),
        io.Int.Input("length", default=81, min=1, max=MAX_LENGTH, step=4,
                     tooltip="Frames, 1 + 4k in whole blocks: 81 = 5 s at 16 fps = 7 blocks of 3. Continuation: new "
                             "frames, a multiple of 4 x frames per block."),
        io.Int.Input("seed", default=0, min=0, max=0xFFFFFFFFFFFFFFFF, control_after_generate=True,
                     tooltip="Same seed, same video."),
    ]


def _schedule_and_memory() -> list:
    """How each block is made, and how much of the video the model remembers."""
    return [
        io.Combo.Input("schedule", options=[*causal.CAUSAL_PRESET_NAMES, "custom"], default="Self Forcing",
                       tooltip="Pick the model you loaded: its published steps, block size and memory window (cache "
                               "'preset'). custom: set custom_timesteps and shift."),
        io.Combo.Input("frames_per_block", options=list(FRAMES_PER_BLOCK), default="auto",
                       tooltip="Latent frames made at once: 3 (chunk-wise models) or 1 (frame-wise). auto reads the "
                               "model file, else the schedule."),
        io.Combo.Input("cache", options=[*CACHE_MODES, LEGACY_CACHE], default="preset",
                       tooltip="Memory of earlier frames. preset: the model's own, fixed. window: sizes below. full: "
                               "all (grows). Old 'rolling' workflows run, converted."),
        io.Int.Input("sink_size", default=_DEFAULTS.sink_size, min=0, max=64, optional=True,
                     tooltip="cache 'window' only: how many first latent frames stay in memory for good, as an "
                             "anchor (every preset: 3). Counted in local_attn_size."),
        io.Int.Input("local_attn_size", default=_DEFAULTS.local_attn_size, min=1, max=1024, optional=True,
                     tooltip="cache 'window' only: latent frames each block sees, its own and the anchor included: "
                             "21 (Self Forcing) or 12 (LongLive). Fixed memory."),
        io.String.Input("custom_timesteps", default=_DEFAULTS.custom_timesteps, optional=True,
                        tooltip="Only for schedule 'custom': the steps each block runs, from 1000 down, e.g. '1000, "
                                "750, 500, 250' (Self Forcing's)."),
        io.Float.Input("shift", default=_DEFAULTS.shift, min=0.1, max=100.0, step=0.1, optional=True,
                       tooltip="Only for schedule 'custom': moves the steps towards more noise. 5 as Self Forcing; 1 "
                               "uses them as typed (as CausVid)."),
    ]


def _start_and_continue() -> list:
    """Image-to-video and continuation."""
    return [
        io.Latent.Input("start_latent", optional=True,
                        tooltip="Image-to-video: the start image through VAE Encode (Wan VAE), the same size as the "
                                "video."),
        io.Latent.Input("continue_from", optional=True,
                        tooltip="To continue a clip: the LATENT output of the earlier MP4 or Decode node; the video "
                                "goes on from its last frames."),
        io.Int.Input("context_frames", default=_DEFAULTS.context_frames, min=1, max=64, optional=True,
                     tooltip="Continuation: how many last latent frames of the earlier clip it remembers (default 3)."),
    ]


def _steering() -> list:
    """Prompts over time, video-to-video, prompts typed on the live page, the memory's timestep."""
    return [
        Timeline.Input("timeline", optional=True,
                       tooltip="Prompts over time from 'Tempo Prompt Timeline', instead of positive. Each change "
                               "starts on the next block (12 frames with blocks of 3)."),
        io.Combo.Input("switch", options=list(SWITCHES), default="re-cache", optional=True,
                       tooltip="At a prompt change: re-cache (LongLive) refreshes the remembered frames: motion "
                               "carries on, the new prompt shows at once. plain: no refresh."),
        io.Image.Input("input_video", optional=True,
                       tooltip="Video-to-video: frames (Load Video → Get Video Components, scaled to width x "
                               "height). The output is as long as the input; length is ignored."),
        io.Latent.Input("input_latent", optional=True,
                        tooltip="Video-to-video from a Wan video LATENT (VAE Encode with the Wan VAE) instead of "
                                "frames."),
        io.Float.Input("strength", default=DEFAULT_STRENGTH, min=0.01, max=1.0, step=0.01, optional=True,
                       tooltip="Video-to-video: how much to change the input. 1 ignores it (text-to-video), lower "
                               "keeps more. 0.7: StreamDiffusionV2's default."),
        io.Clip.Input("clip", optional=True,
                      tooltip="Optional Wan text encoder, to type new prompts on the live page (/tempo/live) while "
                              "it plays. Without it the page offers saved prompts."),
        io.Float.Input("context_noise", default=0.0, min=0.0, max=1000.0, step=1.0, optional=True,
                       tooltip="Advanced: how noisy the model is told the frames kept in memory are. 0 as every "
                               "published model uses; leave at 0."),
    ]


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
            inputs=[*_model_and_prompt(), *_video_size(), *_schedule_and_memory(), *_start_and_continue(),
                    *_steering()],
            outputs=[VideoStream.Output(display_name="video", tooltip="A video stream, generated when consumed.")],
            hidden=[io.Hidden.prompt, io.Hidden.unique_id],
        )

    @classmethod
    def validate_inputs(cls, **widgets):
        """What is wrong with the widgets alone (sizes, choices, the cache window, a custom schedule), said as
        the job is queued, before any model loads; linked inputs are checked when the node runs."""
        problem = widget_problem(cls, widgets)
        if problem is None:
            try:
                causal_plan.check_settings(settings_of({k: v for k, v in widgets.items()
                                                        if not isinstance(v, (list, tuple))}))
            except TempoError as e:
                problem = str(e)
        return True if problem is None else problem

    @classmethod
    def execute(cls, model, **inputs) -> io.NodeOutput:
        if inputs.get("cache") == LEGACY_CACHE:
            inputs["legacy"] = legacy_cache_inputs(getattr(cls.hidden, "prompt", None),
                                                   getattr(cls.hidden, "unique_id", None))
        plan = plan_video(model, **inputs)
        if not plan.report:
            return io.NodeOutput(plan)
        header = [f"prompt timeline ({inputs.get('switch', 're-cache')}):"] if inputs.get("timeline") is not None else []
        text = "\n".join(header + plan.report)
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


def run_stream(plan: CausalVideoPlan, vae, on_frames=None, live=None, decoder_name: str = WAN_VAE_DECODER):
    """Make the video, hand each block's frames on as it finishes; the LATENT of the clip
    (:class:`nodes.causal_stream.StreamRunner`)."""
    return StreamRunner(plan, vae, on_frames, live, decoder_name).run()


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
                io.String.Input("filename_prefix", default="tempo/causal",
                                tooltip="Output file name prefix, inside ComfyUI's output folder."),
                io.Float.Input("fps", default=16.0, min=1.0, max=120.0, step=1.0,
                               tooltip="Playback speed: Wan 2.1 models are made for 16 fps (81 frames = 5 s)."),
                io.Int.Input("crf", default=19, min=0, max=51,
                             tooltip="H.264 quality: lower is better and bigger; 19 by default."),
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
        writer = Mp4Writer(path, video.width, video.height, fps=fps, crf=crf, metadata=metadata)
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


NODES = [CausalVideoLoader, CausalVideoSampler, CausalVideoToMP4, CausalVideoDecode]
