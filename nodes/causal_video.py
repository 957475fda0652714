"""Causal KV-cache video nodes: loader, sampler (a video stream), stream to mp4 / frames,
and saved text conditioning (to skip loading a 5.7B text encoder on every run)."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field

import torch

import comfy.model_management as mm
import comfy.utils
import folder_paths

from ..samplers import causal
from ..video.mp4 import Mp4Writer
from .wan_models import StreamingWanDecoder, causal_info, causal_runner, load_causal_model
from .compat import io, ui
from ..loaders.paths import MAX_NAME_CHARS, is_inside, shown
from .common import WEIGHT_DTYPES, CATEGORY, TempoInputError, model_file_list, output_path, resolve_model_path, \
    check_choice

SUBCAT = CATEGORY + "/causal video"
CAUSAL_FOLDERS = ("diffusion_models", "checkpoints", "diffusers")
CONDITIONING_FOLDER = "tempo_conditioning"
VideoStream = io.Custom("TEMPO_VIDEO_STREAM")
# Defaults of the sampler's optional inputs, written once for the schema and for execute().
_SF_TIMESTEPS, _SF_SHIFT = causal.SCHEDULES["Self Forcing"]
DEFAULT_TIMESTEPS = ", ".join(str(t) for t in _SF_TIMESTEPS)
DEFAULT_SHIFT = _SF_SHIFT
DEFAULT_CONTEXT_FRAMES = 3
FRAMES_PER_BLOCK = ("auto", "1", "3")


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
            description="Loads a causal Wan 2.1 video model (Self Forcing / Causal Forcing .pt, CausVid model.pt, "
                        "ComfyUI safetensors repackages, diffusers Wan transformers) for block-by-block generation "
                        "with a KV cache. Works with the native Wan text encoder (Load CLIP, type wan) and Wan VAE.",
            inputs=[
                io.Combo.Input("model_name", options=model_file_list(CAUSAL_FOLDERS),
                               tooltip="File in models/diffusion_models (or checkpoints), or a diffusers folder "
                                       "in models/diffusers."),
                io.Combo.Input("weight_dtype", options=list(WEIGHT_DTYPES), default="default",
                               tooltip="Weight precision; fp8 stores weights in 8 bits and computes in bf16."),
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

    @property
    def num_blocks(self) -> int:
        return self.spec.num_blocks

    def session(self) -> causal.CausalSession:
        base = self.model.model
        return causal.CausalSession(causal_runner(self.model), self.spec, self.model.load_device,
                                    base.manual_cast_dtype or base.get_dtype())

    def blocks(self, step_callback=None):
        """Yield (kind, latent in VAE units): ("prefix", ...) first when there is one, then ("block", ...)."""
        mm.load_models_gpu([self.model])
        lf = self.model.model.latent_format
        session = self.session()
        prefix = None if self.prefix is None else lf.process_in(self.prefix.to(session.device, torch.float32))
        try:
            for kind, latent in session.run(self.cond, prefix, step_callback):
                yield kind, self.prefix if kind == "prefix" else lf.process_out(latent.float()).cpu()
        finally:
            mm.soft_empty_cache()


def _valid_lengths(fpb: int, mode: str, near: int) -> str:
    if mode == "continue":
        vals = [4 * fpb * n for n in range(1, 400)]
    elif mode == "image":
        vals = [1 + 4 * fpb * n for n in range(1, 400)]
    else:
        vals = [4 * fpb * n - 3 for n in range(1, 400)]
    vals.sort(key=lambda v: abs(v - near))
    return " or ".join(str(v) for v in sorted(vals[:2]))


def plan_video(model, positive, width, height, length, seed, schedule, custom_timesteps, shift, frames_per_block,
               cache, sink_frames, window_frames, start_latent=None, continue_from=None, context_frames=DEFAULT_CONTEXT_FRAMES):
    """Check every input and build the plan; raises TempoInputError naming the input and the fix."""
    info = causal_info(model)
    if width % 16 or height % 16:
        raise TempoInputError(f"width and height must be multiples of 16 (the VAE's 8 times the patch's 2); "
                              f"got {width}x{height}: try {width // 16 * 16}x{height // 16 * 16}")
    stated = info.get("frames_per_block")
    check_choice(schedule, [*causal.SCHEDULES, "custom"], "schedule")
    check_choice(cache, ("rolling", "full"), "cache")
    fpb = (stated or 3) if check_choice(frames_per_block, FRAMES_PER_BLOCK, "frames_per_block") == "auto" \
        else int(frames_per_block)
    if stated and fpb != stated:
        raise TempoInputError(f"frames_per_block is {fpb} but {info.get('file')} was trained with {stated} frame(s) "
                              f"per block; set frames_per_block to {stated} (or auto)")
    if start_latent is not None and continue_from is not None:
        raise TempoInputError("connect either start_latent (image-to-video) or continue_from (continuation), not both")
    mode = "image" if start_latent is not None else "continue" if continue_from is not None else "text"
    if mode == "continue":
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
    if schedule == "custom":
        timesteps = causal.parse_timesteps(custom_timesteps)
    else:
        timesteps, shift = causal.SCHEDULES[schedule]
    try:
        sigmas = causal.schedule_sigmas(timesteps, shift)
    except ValueError as e:
        raise TempoInputError(f"custom_timesteps: {e}") from None
    window = None if cache == "full" else window_frames
    if window is not None and window < fpb:
        raise TempoInputError(f"window_frames {window_frames} is smaller than one block ({fpb}); use at least {fpb}")
    cond = positive[0][0]
    if cond.ndim != 3:
        raise TempoInputError("positive is not text conditioning; use CLIP Text Encode with the Wan text encoder")
    spec = causal.VideoSpec(height // 8, width // 8, latent_frames, fpb, tuple(sigmas), seed, sink_frames, window)
    plan = CausalVideoPlan(model, cond[:1], spec, width, height, prefix, mode == "image", dict(info))
    check_memory(plan)
    return plan


def check_memory(plan: CausalVideoPlan):
    prefix_frames = 0 if plan.prefix is None else plan.prefix.shape[2]
    need = plan.session().cache_bytes(prefix_frames)
    free = mm.get_free_memory(plan.model.load_device)
    if need > 0.8 * free:
        raise TempoInputError(
            f"the KV cache for this video needs {need / 2**30:.1f} GiB but only {free / 2**30:.1f} GiB are free; set "
            f"cache to 'rolling' with a smaller window_frames (now "
            f"{plan.spec.window or plan.spec.cache_frames(prefix_frames)}), or lower the resolution")


class CausalVideoSampler(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="TempoCausalVideoSampler",
            display_name="Tempo Causal Video Sampler",
            category=SUBCAT,
            description="Block-by-block causal generation with a KV cache, for any length: each block is denoised over "
                        "a few timesteps with fresh re-noising, then written to the cache by a clean pass. Outputs a "
                        "video stream: connect 'Tempo Causal Video to MP4' (streams to disk) or 'Tempo Causal Video "
                        "Decode' (frames in memory).",
            inputs=[
                io.Model.Input("model", tooltip="A causal Wan 2.1 MODEL: from 'Tempo Causal Video Loader' (which reads how "
                                                "it was trained), or from ComfyUI's own Load Diffusion Model (then "
                                                "set frames_per_block)."),
                io.Conditioning.Input("positive", tooltip="Text conditioning from the Wan text encoder (no CFG)."),
                io.Int.Input("width", default=832, min=16, max=4096, step=16, tooltip="Multiple of 16."),
                io.Int.Input("height", default=480, min=16, max=4096, step=16, tooltip="Multiple of 16."),
                io.Int.Input("length", default=81, min=1, max=100000, step=4,
                             tooltip="Frames: 1 + 4k whose latent frames fill whole blocks (81 = 21 latent frames = "
                                     "7 blocks of 3). For a continuation: new frames, a multiple of 4 x frames per block."),
                io.Int.Input("seed", default=0, min=0, max=0xFFFFFFFFFFFFFFFF, control_after_generate=True,
                             tooltip="Same seed, same video."),
                io.Combo.Input("schedule", options=[*causal.SCHEDULES, "custom"], default="Self Forcing",
                               tooltip="Denoising list and shift of the family, as the authors' configs give them "
                                       "(Self Forcing [1000,750,500,250] warped by shift 5; CausVid [1000,757,522] "
                                       "as written)."),
                io.Combo.Input("frames_per_block", options=list(FRAMES_PER_BLOCK), default="auto",
                               tooltip="Latent frames per block: 3 chunk-wise, 1 frame-wise; auto reads the checkpoint."),
                io.Combo.Input("cache", options=["rolling", "full"], default="rolling",
                               tooltip="rolling: sink + window frames, constant memory for any length; full: every "
                                       "frame (what the 81-frame models were trained with)."),
                io.Int.Input("sink_frames", default=3, min=0, max=64,
                             tooltip="Rolling cache: first latent frames kept for good."),
                io.Int.Input("window_frames", default=18, min=1, max=1024,
                             tooltip="Rolling cache: most recent latent frames kept (3 + 18 = the trained 21)."),
                io.String.Input("custom_timesteps", default=DEFAULT_TIMESTEPS, optional=True,
                                tooltip="Only for schedule 'custom': timesteps from 1000 down."),
                io.Float.Input("shift", default=DEFAULT_SHIFT, min=0.1, max=100.0, step=0.1, optional=True,
                               tooltip="Only for schedule 'custom': sigma' = s*sigma / (1 + (s-1)*sigma)."),
                io.Latent.Input("start_latent", optional=True,
                                tooltip="Image-to-video: the start image through VAE Encode (Wan VAE)."),
                io.Latent.Input("continue_from", optional=True,
                                tooltip="Continuation: the LATENT of a previous clip; its last frames prefill the cache."),
                io.Int.Input("context_frames", default=DEFAULT_CONTEXT_FRAMES, min=1, max=64, optional=True,
                             tooltip="Continuation: how many last latent frames of the previous clip prefill the cache."),
            ],
            outputs=[VideoStream.Output(display_name="video", tooltip="A video stream, generated when consumed.")],
        )

    @classmethod
    def execute(cls, model, positive, width, height, length, seed, schedule, frames_per_block, cache, sink_frames,
                window_frames, custom_timesteps=DEFAULT_TIMESTEPS, shift=DEFAULT_SHIFT, start_latent=None,
                continue_from=None, context_frames=DEFAULT_CONTEXT_FRAMES) -> io.NodeOutput:
        return io.NodeOutput(plan_video(model, positive, width, height, length, seed, schedule, custom_timesteps,
                                        shift, frames_per_block, cache, sink_frames, window_frames, start_latent,
                                        continue_from, context_frames))


def run_stream(plan: CausalVideoPlan, vae, on_frames=None):
    """Generate, decode each block as it finishes, hand frames on; return the LATENT of the clip.

    Progress and previews per block; an interrupt stops at the next block boundary, and the
    KV cache is freed either way."""
    decoder = StreamingWanDecoder(vae)
    pbar = comfy.utils.ProgressBar(plan.num_blocks)
    latents, done = [], 0

    def at_block_start(block, step):
        if step == 0:
            mm.throw_exception_if_processing_interrupted()

    try:
        for kind, latent in plan.blocks(at_block_start):
            frames = decoder.decode(latent)
            if kind == "prefix" and not plan.keep_prefix:
                continue  # continuation context: warms the decoder's cache, is not output again
            latents.append(latent)
            if on_frames is not None:
                on_frames(frames)
            if kind == "block":
                done += 1
                from PIL import Image

                preview = Image.fromarray((frames[-1].numpy() * 255).astype("uint8"))
                pbar.update_absolute(done, plan.num_blocks, ("JPEG", preview, 512))
    finally:
        decoder.close()
    return {"samples": torch.cat(latents, dim=2)}


class CausalVideoToMP4(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="TempoCausalVideoSaveMP4",
            display_name="Tempo Causal Video to MP4",
            category=SUBCAT,
            description="Runs a causal video stream and writes H.264 mp4 as blocks finish (decoded with the Wan VAE's "
                        "causal cache), so a long video never sits in memory whole. Also outputs the LATENT (for "
                        "continuing the clip in another job).",
            inputs=[
                VideoStream.Input("video", tooltip="From 'Tempo Causal Video Sampler'."),
                io.Vae.Input("vae", tooltip="The Wan 2.1 VAE (Load VAE: wan_2.1_vae)."),
                io.String.Input("filename_prefix", default="tempo/causal", tooltip="Output file prefix."),
                io.Float.Input("fps", default=16.0, min=1.0, max=120.0, step=1.0, tooltip="Wan 2.1 plays at 16 fps."),
                io.Int.Input("crf", default=19, min=0, max=51, tooltip="H.264 quality: lower is better and larger."),
            ],
            outputs=[io.Latent.Output(tooltip="The clip's latent video (feed continue_from of the next job).")],
            is_output_node=True,
        )

    @classmethod
    def execute(cls, video, vae, filename_prefix, fps, crf) -> io.NodeOutput:
        full_dir, filename, counter, subfolder = output_path(filename_prefix, video.width, video.height)
        os.makedirs(full_dir, exist_ok=True)
        name = f"{filename}_{counter:05}_.mp4"
        path = os.path.join(full_dir, name)
        writer = Mp4Writer(path, video.width, video.height, fps, crf)
        try:
            latent = run_stream(video, vae, writer.write)
        except BaseException:
            writer.close()
            if os.path.exists(path) and writer.frames == 0:
                os.remove(path)
            raise
        writer.close()
        result = {"filename": name, "subfolder": subfolder, "type": "output", "format": "video/h264-mp4",
                  "frame_count": writer.frames}
        return io.NodeOutput(latent, ui=ui.PreviewVideo([result]))


class CausalVideoDecode(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="TempoCausalVideoDecode",
            display_name="Tempo Causal Video Decode",
            category=SUBCAT,
            description="Runs a causal video stream and returns its frames (IMAGE) and LATENT, decoding each block with "
                        "the Wan VAE's causal cache while generating; for chaining with native video nodes.",
            inputs=[VideoStream.Input("video", tooltip="From 'Tempo Causal Video Sampler'."),
                    io.Vae.Input("vae", tooltip="The Wan 2.1 VAE.")],
            outputs=[io.Image.Output(tooltip="All frames, in memory."), io.Latent.Output()],
        )

    @classmethod
    def execute(cls, video, vae) -> io.NodeOutput:
        frames = []
        latent = run_stream(video, vae, frames.append)
        return io.NodeOutput(torch.cat(frames, 0), latent)


class SaveConditioning(io.ComfyNode):
    @classmethod
    def define_schema(cls):
        return io.Schema(
            node_id="TempoSaveConditioning",
            display_name="Tempo Save Conditioning",
            category=CATEGORY + "/utils",
            description="Saves text conditioning to models/tempo_conditioning/, so later jobs can load it without the "
                        "text encoder (umT5-XXL is 5.7B parameters).",
            inputs=[io.Conditioning.Input("conditioning", tooltip="From CLIP Text Encode."),
                    io.String.Input("name", default="prompt", tooltip="File name (no extension).")],
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
            description="Loads text conditioning saved by 'Tempo Save Conditioning' (no text encoder needed).",
            inputs=[io.Combo.Input("name", options=folder_paths.get_filename_list(CONDITIONING_FOLDER),
                                   tooltip="File in models/tempo_conditioning/.")],
            outputs=[io.Conditioning.Output()],
        )

    @classmethod
    def execute(cls, name) -> io.NodeOutput:
        from ..loaders.files import read_file

        sd, _ = read_file(resolve_model_path(name, (CONDITIONING_FOLDER,), "saved conditioning"))
        return io.NodeOutput([[sd[k], {}] for k in sorted(sd, key=lambda k: int(k.split(".")[1]))])


NODES = [CausalVideoLoader, CausalVideoSampler, CausalVideoToMP4, CausalVideoDecode, SaveConditioning, LoadConditioning]
