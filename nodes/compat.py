"""Every ComfyUI internal the pack reaches into, in one module, with the releases each branch serves.

The adapters in ``nodes/`` import ComfyUI's internals from here and nowhere else, so a rename in a
new ComfyUI is a one-line change. CI runs the ComfyUI tiers against 0.3.64 (October 2025) and
0.8.0 (2026); the spring-2026 Wan VAE cache branch is covered by a unit test with a stand-in
decoder (tests/wan_vae_2026.py), as neither snapshot has it.

Stable public APIs every pack uses (``folder_paths``, ``comfy.utils``, ``comfy.model_management``,
``comfy.sd``'s loaders) are imported where they are used.
"""

from __future__ import annotations

import logging

# V3 node API: the pinned version, present from 0.3.64 on ('latest' is the one ComfyUI still moves).
from comfy_api.v0_0_2 import ComfyExtension, io, ui  # noqa: F401

import comfy.ldm.wan.vae as _wan_vae
import comfy.model_base as _model_base
import comfy.model_detection as _model_detection
import comfy.model_patcher as _model_patcher
import comfy.model_sampling as model_sampling  # noqa: F401  CONST, EPS, V_PREDICTION, X0, ModelSamplingDiscrete(Flow), reshape_sigma
import comfy.samplers as _samplers
import comfy.latent_formats as latent_formats  # noqa: F401  Wan21 (process_in: the diffusion model's latent space)
import comfy.ops as ops  # noqa: F401  disable_weight_init: the layers ComfyUI builds its own models from
import comfy.supported_models as _supported_models
from comfy.ldm.modules.attention import optimized_attention  # noqa: F401  0.3.64 .. 0.8.0: same name and signature

# Model classes and detection (0.3.64 .. 0.8.0 unchanged).
ModelType = _model_base.ModelType
BaseModel = _model_base.BaseModel
WAN21 = _model_base.WAN21
# ComfyUI's own causal Wan (2026, after 0.8.0: comfy/ldm/wan/ar_model.py); None where absent.
WAN21_CausalAR = getattr(_model_base, "WAN21_CausalAR", None)
detect_unet_config = _model_detection.detect_unet_config
SD15 = _supported_models.SD15
SD20 = _supported_models.SD20
SDXL = _supported_models.SDXL
SVD_img2vid = _supported_models.SVD_img2vid
WAN21_T2V = _supported_models.WAN21_T2V
WAN21_I2V = _supported_models.WAN21_I2V
WAN22_T2V = _supported_models.WAN22_T2V  # Wan 2.2 TI2V 5B (48-channel Wan22 latent); the A14B experts are WAN21_*
ModelPatcher = _model_patcher.ModelPatcher
# Custom samplers: KSAMPLER(fn, extra_options), fn(model, x, sigmas, extra_args, callback, disable).
KSAMPLER = _samplers.KSAMPLER


def wan_decoder_cache_layers(decoder) -> int:
    """Number of causal-cache slots of a Wan 2.1 VAE decoder.

    * 0.3.64 .. 0.8.0: ``count_conv3d``; ``Decoder3d.forward`` returns a tensor.
    * spring 2026 on (ComfyUI issue #13394): ``count_cache_layers``; ``Decoder3d.forward`` returns a
      list of chunks and caches only the current call's frames. ``video.wan_stream`` handles both.
    """
    count = getattr(_wan_vae, "count_cache_layers", None)
    api = "count_cache_layers (2026: chunk lists)"
    if count is None:
        count = _wan_vae.count_conv3d
        api = "count_conv3d (0.3.64 .. 0.8.0: tensors)"
    logging.debug(f"Tempo: Wan VAE cache API {api}")
    return count(decoder)


def reclaimable_bytes(device) -> int:
    """Memory ComfyUI could free on ``device`` by offloading the models it holds there (0 on the CPU,
    where offloaded weights stay in the same memory). ``LoadedModel.model_loaded_memory``: 0.3.64 .. 0.8.0."""
    import comfy.model_management as mm

    if getattr(device, "type", "cpu") == "cpu":
        return 0
    return sum(m.model_loaded_memory() for m in mm.current_loaded_models
               if getattr(m, "device", None) == device and hasattr(m, "model_loaded_memory"))


def saved_metadata(prompt, extra_pnginfo) -> dict[str, str] | None:
    """What ComfyUI's own save nodes write into a file: the API prompt and the editor's workflow
    (``extra_pnginfo``), JSON text by key; None when the server runs with --disable-metadata."""
    from comfy.cli_args import args

    if args.disable_metadata:
        return None
    import json

    meta = {}
    if prompt is not None:
        meta["prompt"] = json.dumps(prompt)
    for key, value in (extra_pnginfo or {}).items():
        meta[key] = json.dumps(value)
    return meta or None
