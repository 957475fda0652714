"""ComfyUI side of Wan 2.1: one way to build the native MODEL (for the one-step video loader and the
causal loader alike), the causal runner over it, and the VAE's streaming decode.

The MODEL is ComfyUI's own (``comfy.sd.load_diffusion_model_state_dict``), so whatever ComfyUI's Wan
loaders read runs here too: fp8 storage, fp8_scaled files, custom operations (GGUF), LoRAs applied
by the model patcher. The causal sampler runs ``models.causal_wan.CausalWan`` over that model's
modules, and over ComfyUI's own causal Wan (2026) the same way.
"""

from __future__ import annotations

import functools
import logging
import os

import torch

import comfy.model_management as mm

from ..loaders.files import CheckpointError, flatten_state_dict, read_file, tensor_layout
from ..loaders.wan import read_wan_checkpoint
from ..models.causal_wan import CausalWan, config_from_state_dict
from ..models.taehv import TAEHVDecoder, wan_latent_space
from ..video.wan_stream import StreamingDecoder, StreamingEncoder
from . import compat
from .common import CAUSAL_WEIGHT_DTYPES, FP8_MATMUL, WEIGHT_DTYPES, TempoInputError, check_choice



def comfy_attention(transformer_options: dict | None = None):
    """ComfyUI's attention (xformers, SDPA, sage... as the user configured) on [B, H, L, D], with the
    MODEL's transformer_options, as ComfyUI's own Wan passes them: a per-model override
    (``optimized_attention_override``, set by attention patch nodes) reaches it."""
    options = transformer_options or {}

    def attention(q, k, v, mask=None):
        return compat.optimized_attention(q, k, v, heads=q.shape[1], mask=mask, skip_reshape=True,
                                          skip_output_reshape=True, transformer_options=options)
    return attention


def build_wan_model(sd: dict, dtype: str, name: str, disable_dynamic: bool = False):
    """Native Wan 2.1 MODEL (ModelPatcher) from a state dict in Wan key names, built by ComfyUI."""
    if check_choice(dtype, CAUSAL_WEIGHT_DTYPES, "weight_dtype") == FP8_MATMUL:
        options = {"dtype": torch.float8_e4m3fn, "fp8_optimizations": True}
    else:
        options = {"dtype": WEIGHT_DTYPES[dtype]} if WEIGHT_DTYPES[dtype] else {}
    model = compat.load_diffusion_model_state_dict(sd, options, disable_dynamic)
    if model is None:
        raise TempoInputError(f"ComfyUI could not build a Wan 2.1 model from {name}; its width must be a multiple "
                              "of 128")
    return model


def load_causal_model(path: str, dtype: str = "default", disable_dynamic: bool = False):
    """(ModelPatcher, what the file says) for a causal (or plain) Wan 2.1 checkpoint; ComfyUI can load
    it again by the same call (MultiGPU, Select Model Device, a resident clone for compiling)."""
    sd, info = read_wan_checkpoint(path, causal_only=True)
    cfg = config_from_state_dict(sd)
    name = os.path.basename(os.path.normpath(path))
    patcher = compat.set_reload(build_wan_model(sd, dtype, name, disable_dynamic), load_causal_model, (path, dtype), 0)
    info = dict(info, config=cfg, file=name)
    patcher.model_options["tempo_causal"] = {k: v for k, v in info.items() if k not in ("config", "metadata")}
    logging.info(f"Tempo: loaded {name} as causal Wan 2.1 {cfg['dim']}x{cfg['num_layers']} ({info})")
    return patcher, info


def is_wan21(net) -> bool:
    """A module tree with Wan 2.1's layout (ComfyUI's WanModel, its causal subclass, or ours)."""
    blocks = getattr(net, "blocks", None)
    return (blocks is not None and len(blocks) > 0 and all(hasattr(net, n) for n in
            ("patch_embedding", "text_embedding", "time_embedding", "time_projection", "head"))
            and hasattr(blocks[0], "self_attn") and hasattr(blocks[0], "cross_attn") and hasattr(blocks[0], "modulation"))


def causal_info(model) -> dict:
    """What is known of a MODEL's causal training: from Tempo's loader, or from ComfyUI's own model
    class for a Wan 2.1 model loaded by ComfyUI's loaders."""
    info = model.model_options.get("tempo_causal")
    if info is not None:
        return info
    net = getattr(getattr(model, "model", None), "diffusion_model", None)
    if not is_wan21(net):
        raise TempoInputError("this MODEL is not a Wan 2.1 model; load a causal Wan checkpoint (Self Forcing, CausVid, "
                              "Causal Forcing) with 'Tempo Causal Video Loader' or ComfyUI's own model loader")
    native = compat.WAN21_CausalAR is not None and isinstance(model.model, compat.WAN21_CausalAR)
    return {"family": "ComfyUI causal Wan" if native else None, "causal": True if native else None,
            "frames_per_block": None, "file": "a MODEL loaded by ComfyUI"}


def text_width(model):
    """How wide the text conditioning is that a Wan MODEL reads (4096, umT5-XXL's), or None when
    its text input is not a plain linear layer."""
    emb = getattr(getattr(getattr(model, "model", None), "diffusion_model", None), "text_embedding", None)
    try:
        return int(emb[0].in_features)
    except (TypeError, IndexError, AttributeError):
        return None


def causal_runner(model) -> CausalWan:
    """The causal forward over a Wan MODEL's own modules, with ComfyUI's attention and the MODEL's
    transformer_options."""
    return CausalWan(model.model.diffusion_model,
                     attention=comfy_attention(model.model_options.get("transformer_options")))


class StreamingWanDecoder:
    """Decodes latent blocks one after another with the Wan VAE's causal feature cache kept
    between them, so the frames equal decoding the whole latent video at once."""

    def __init__(self, vae):
        self.vae = vae
        self.net = wan_vae_net(vae)
        self.stream = StreamingDecoder(self.net.decoder, compat.wan_decoder_cache_layers(self.net.decoder))

    def decode(self, latent: torch.Tensor, load: bool = True) -> torch.Tensor:
        """latent [B, 16, F, h, w] in VAE units -> frames [B*T, H, W, 3] in 0..1. ``load=False``: the VAE
        was loaded beside the diffusion model already (a decode on a worker thread loads nothing)."""
        if load:
            mm.load_models_gpu([self.vae.patcher])
        dev, dtype = self.vae.device, self.vae.vae_dtype
        with torch.no_grad():
            out = self.stream.decode(self.net.conv2(latent.to(dev, dtype))).float()
        out = self.vae.process_output(out).clamp(0, 1)  # [B, 3, T, H, W]
        return out.movedim(1, -1).reshape(-1, out.shape[-2], out.shape[-1], 3).cpu()

    def close(self):
        self.stream.close()


WAN_VAE_DECODER = "Wan VAE"
TAEHV_FOLDERS = ("vae_approx",)


def taehv_files() -> list[str]:
    """The Wan 2.1 TAEHV decoders in ComfyUI's vae_approx folder, known by their weights (a renamed
    taew2_1.pth is listed too; the image models' taesd files are not)."""
    import folder_paths

    return [n for n in folder_paths.get_filename_list("vae_approx")
            if taehv_space(folder_paths.get_full_path("vae_approx", n)) is not None]


def taehv_space(path: str | None) -> str | None:
    """:func:`models.taehv.wan_latent_space` of a file, read once per file version (the list is asked
    for on every /object_info)."""
    if not path or not os.path.isfile(path):
        return None
    st = os.stat(path)
    return _taehv_space(path, st.st_mtime_ns, st.st_size)


@functools.lru_cache(maxsize=256)
def _taehv_space(path: str, mtime: int, size: int) -> str | None:
    return wan_latent_space(os.path.basename(path), tensor_layout(path))


class StreamingTAEHVDecoder:
    """The tiny TAEHV decoder, block by block, with the same interface as StreamingWanDecoder.
    madebyollin's taew2_1 decodes the diffusion model's own latents (the latent format's process_in
    of ComfyUI's LATENT); lightx2v's lighttaew2_1 decodes the LATENT as it is (as ComfyUI's own VAE
    loader treats the two, comfy/sd.py 0.8.0); which one a file is: :func:`taehv_space`."""

    def __init__(self, path: str):
        name = os.path.basename(path)
        try:
            raw, _ = read_file(path)
            self.model = TAEHVDecoder.from_state_dict(flatten_state_dict(raw, path), compat.ops.disable_weight_init)
        except (CheckpointError, ValueError) as e:
            raise TempoInputError(f"{name}: {e}") from None
        if self.model.latent_channels != 16:
            raise TempoInputError(f"{name} decodes {self.model.latent_channels}-channel latents (Wan 2.2 5B); causal "
                                  "video is Wan 2.1 (16 channels): pick taew2_1")
        self.scale = compat.latent_formats.Wan21() if taehv_space(path) == "diffusion" else None
        self.device = mm.get_torch_device()
        self.dtype = torch.float16 if self.device.type == "cuda" else torch.float32
        self.model.to(self.device, self.dtype).eval()
        self.stream = self.model.stream()

    def decode(self, latent: torch.Tensor, load: bool = True) -> torch.Tensor:
        """latent [B, 16, F, h, w] in VAE units -> frames [B*T, H, W, 3] in 0..1 (``load``: nothing to load)."""
        x = latent if self.scale is None else self.scale.process_in(latent)
        with torch.no_grad():
            out = self.stream.decode(x.to(self.device, self.dtype)).float()
        return out.movedim(1, -1).reshape(-1, out.shape[-2], out.shape[-1], 3).cpu()

    def close(self):
        self.model = self.stream = None
        mm.soft_empty_cache()


def wan_vae_net(vae):
    net = vae.first_stage_model
    if not all(hasattr(net, n) for n in ("encoder", "decoder", "conv1", "conv2")):
        raise TempoInputError("this VAE is not the Wan 2.1 VAE; load wan_2.1_vae with 'Load VAE'")
    return net


class StreamingWanEncoder:
    """Encodes video frames piece by piece with the Wan VAE's causal feature cache kept between
    pieces, so the latents equal VAE Encode of the whole clip (ComfyUI's own encode feeds the first
    frame alone and then four at a time; so does this)."""

    def __init__(self, vae):
        self.vae, self.net = vae, wan_vae_net(vae)
        self.stream = StreamingEncoder(self.net.encoder, **compat.wan_encoder_stream(self.net))

    def encode(self, frames: torch.Tensor, final: bool = False):
        """frames [T, H, W, 3] in 0..1 -> latent [1, 16, n, h, w] in VAE units (None until frames complete
        one); ``final``: these are the clip's last frames."""
        mm.load_models_gpu([self.vae.patcher])
        x = self.vae.process_input(frames.movedim(-1, 0).unsqueeze(0)).to(self.vae.device, self.vae.vae_dtype)
        with torch.no_grad():
            out = self.stream.encode(x, final)
            return None if out is None else self.net.conv1(out).chunk(2, dim=1)[0].float()

    def close(self):
        self.stream.close()


def encoded_blocks(vae, frames: torch.Tensor, frames_per_block: int, num_blocks: int):
    """Video frames [T, H, W, 3] as latent blocks of ``frames_per_block`` latent frames (VAE units), one
    at a time as a rollout asks: the first frame alone, then four at a time, the clip's last call
    marked final (a ComfyUI 0.18+ encoder holds lone frames back until then), so memory does not grow
    with the input and the latents equal VAE Encode of the whole clip."""
    encoder = StreamingWanEncoder(vae)
    held, fed = [], 0
    try:
        for _ in range(num_blocks):
            while sum(x.shape[2] for x in held) < frames_per_block:
                if fed == frames.shape[0]:
                    raise TempoInputError("the input video ended before its last block was encoded")
                end = min(fed + (1 if fed == 0 else 4), frames.shape[0])
                out = encoder.encode(frames[fed:end], final=end == frames.shape[0])
                fed = end
                if out is not None:
                    held.append(out)
            ready = torch.cat(held, dim=2)
            held = [ready[:, :, frames_per_block:]]
            yield ready[:, :, :frames_per_block]
    finally:
        encoder.close()
