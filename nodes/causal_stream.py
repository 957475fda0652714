"""Running a causal video plan: each block decoded as it finishes (the Wan VAE's causal cache, or a TAEHV
file), its frames handed on (an mp4 writer, a list), the node's progress bar and preview, the live page's
frames, stop and prompt requests, decode overlapped with the next block where it helps. One small class;
the rules of the run are the plan's (nodes/causal_video.py, samplers/causal_plan.py)."""

from __future__ import annotations

import logging
import time

import torch

import comfy.model_management as mm
import comfy.utils

from ..video.overlap import run_in_order
from . import live as live_page
from .causal_speed import overlap_of
from .common import TempoInputError, resolve_model_path
from .compat import ui
from .wan_models import TAEHV_FOLDERS, WAN_VAE_DECODER, StreamingTAEHVDecoder, StreamingWanDecoder


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


class StreamRunner:
    """One run of a plan. ``on_frames(frames)`` takes each block's frames [N, H, W, 3]; ``live`` (a
    live.streams.LiveStream) gets them while someone watches and may stop the video or change its prompt
    between blocks. An interrupt stops at the next block; the cache and decoder are freed either way."""

    def __init__(self, plan, vae, on_frames=None, live=None, decoder_name: str = WAN_VAE_DECODER):
        self.plan, self.vae, self.on_frames, self.live = plan, vae, on_frames, live
        self.wan_vae = decoder_name == WAN_VAE_DECODER
        if self.wan_vae:
            check_vae_memory(plan, vae)
            self.decoder = StreamingWanDecoder(vae)
        else:  # TAEHV: a name from a shared workflow, so only a file listed in models/vae_approx
            self.decoder = StreamingTAEHVDecoder(resolve_model_path(decoder_name, TAEHV_FOLDERS, "decoder"))
        self.overlap = overlap_of(plan.model, plan.model.load_device)
        self.pbar = comfy.utils.ProgressBar(plan.num_blocks)
        self.latents, self.done = [], 0

    def run(self) -> dict:
        live = self.live
        made = self.plan.blocks(self.at_block_start, self.vae,
                                None if live is None else live_page.prompt_source(live, self.plan),
                                decode_vae=self.vae if self.overlap and self.wan_vae else None)
        try:
            run_in_order(self.finish, ((kind, latent, time.time()) for kind, latent in made), self.overlap,
                         device=self.plan.model.load_device)
        except StopRequested:
            logging.info(f"Tempo: {stopped_text(self.done, self.plan.num_blocks)}")
            if live is not None:
                live.event(f"stopped after block {self.done}")
        finally:
            made.close()
            self.decoder.close()
        return {"samples": torch.cat(self.latents, dim=2)}

    def at_block_start(self, block: int, step: int):
        """Before each network pass: the user's interrupt, and the live page's stop, between blocks."""
        if step:
            return
        mm.throw_exception_if_processing_interrupted()
        if self.live is not None:
            if block > 0 and self.live.stop_requested:
                raise StopRequested()
            self.live.block_started()

    def finish(self, kind: str, latent, made_at: float):
        """Decode a finished block and hand its frames on (on the worker when decode overlaps); a cancel pressed
        meanwhile is honoured before the decode, which can take the longest."""
        mm.throw_exception_if_processing_interrupted()
        frames = self.decoder.decode(latent, load=not self.overlap)
        if kind == "prefix" and not self.plan.keep_prefix:
            return  # continuation context: warms the decoder's cache, is not output again
        self.latents.append(latent.cpu())
        if self.on_frames is not None:
            self.on_frames(frames)
        if kind == "block":
            self.done += 1
            self.show(frames, made_at)

    def show(self, frames, made_at: float):
        """The live page's frames (while someone watches), the node's progress and preview."""
        if self.live is not None:
            t0 = time.perf_counter()
            pictures = live_page.jpegs(frames) if self.live.watching() else None
            self.live.publish(self.done - 1, frames.shape[0], pictures, made_at, time.perf_counter() - t0)
        from PIL import Image

        preview = Image.fromarray((frames[-1].numpy() * 255).astype("uint8"))
        self.pbar.update_absolute(self.done, self.plan.num_blocks, ("JPEG", preview, 512))


def _gib(n: float) -> str:
    return f"{n / 2**30:.1f} GiB"


def check_vae_memory(plan, vae):
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
