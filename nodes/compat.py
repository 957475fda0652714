"""Every ComfyUI internal the pack reaches into, in one module, with the releases each branch serves.

The adapters in ``nodes/`` import ComfyUI's internals from here and nowhere else, so a rename in a
new ComfyUI is a one-line change. CI runs the ComfyUI tiers against 0.3.64 (October 2025), 0.8.0
(January 2026) and 0.27.0 (June 2026); 0.38 (late 2026) was read from its source, not run.

What differs between them, and where the pack meets it (release that introduced the change):

* spring 2026: ``comfy/sd.py`` imports the LTX audio VAE, which imports torchaudio, so ComfyUI does not
  start without it: constraints.txt pins torch / torchvision / torchaudio built for one another.
* 0.16.0: dynamic VRAM on NVIDIA (``ModelPatcherDynamic``: weights streamed per layer call through
  comfy-aimdo; ``is_dynamic()``). Compiled layers and CUDA graphs must not hold streamed weights:
  :func:`resident_clone`, used by Tempo Causal Speed as ComfyUI's own TorchCompileModel does.
* 0.18.0 (PR #13014): the Wan VAE encoder holds a lone frame back (``Encoder3d.forward`` may return
  None) until a call with ``final=True``; chunks of 2 frames: :func:`wan_encoder_stream`.
* spring 2026 (ComfyUI issue #13394; 0.27.0 has it): the Wan VAE decoder returns a list of chunks and
  caches only the current call's frames; ``count_cache_layers`` replaces ``count_conv3d``:
  :func:`wan_decoder_cache_layers` (``video.wan_stream`` completes one-frame cache entries).
* 0.21.0: ComfyUI's own causal Wan (``WAN21_CausalAR``, ``comfy/ldm/wan/ar_model.py``), picked for a
  file whose safetensors metadata says ``config = {"transformer": {"causal_ar": true}}``. Every key of
  that "transformer" object becomes a constructor argument of its model class, so Tempo's own facts
  about a file (frames per block) live in ``tempo.*`` keys. The Tempo sampler runs either class.
* 0.23.0: MultiGPU / Select*Device nodes and ``clone(disable_dynamic=True)`` load a model again through
  ``ModelPatcher.cached_patcher_init``: Tempo's loaders register theirs (:func:`set_reload`).
* 0.16 on: ``comfy.sd.load_diffusion_model_state_dict(..., disable_dynamic=)``
  (:func:`load_diffusion_model_state_dict`).
* All three and 0.38: ``optimized_attention(..., transformer_options=)`` honours a per-model
  ``optimized_attention_override``; the causal sampler passes the MODEL's transformer_options
  (``nodes.wan_models.comfy_attention``). 0.38 adds ``preferred_attention`` / tensor containers, which
  plain tensors do not need.
* ``comfy_api.v0_0_2``: from 0.8 it re-exports ``latest``, so pinning it freezes nothing; what keeps
  the pack working is that it uses only V3 features present in 0.3.64 (``io.ComfyNode``,
  ``define_schema``, ``execute``, ``validate_inputs``, ``ui.PreviewText`` / ``PreviewVideo``) and the
  suite runs on all three releases.
* TAEHV: ComfyUI 0.8+ tells its TAEHV files apart by their weights (``decoder.22.bias``, latent
  channels, dtype); so does the causal decoder list (``nodes.wan_models.taehv_files``).
* Web packages: each release pins its own frontend and workflow templates (1.27.10 / 0.1.95,
  1.35.9 / 0.7.67, 1.45.20 / 0.11.2); from templates 0.3 the JSON files moved to their own packages.

Stable public APIs every pack uses (``folder_paths``, ``comfy.utils``, ``comfy.model_management``,
``comfy.sd``'s loaders) are imported where they are used.
"""

from __future__ import annotations

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
    * spring 2026 on (ComfyUI issue #13394; 0.27.0 has it): ``count_cache_layers``; ``Decoder3d.forward``
      returns a list of chunks and caches only the current call's frames. ``video.wan_stream`` handles both.
    """
    count = getattr(_wan_vae, "count_cache_layers", None)
    return count(decoder) if count is not None else _wan_vae.count_conv3d(decoder)


def wan_encoder_stream(net) -> dict:
    """How ComfyUI's own Wan VAE encode drives its encoder, for ``video.wan_stream.StreamingEncoder``:
    the cache size, frames per call after the first, and whether the last call passes ``final``.

    * 0.3.64 .. 0.8.0: chunks of 4; the cache list is sized by ``count_conv3d`` of the *decoder*
      (``WanVAE.encode`` does so); ``Encoder3d.forward`` always returns frames.
    * 0.18.0 on (PR #13014 "Reduce WAN VAE VRAM"; 0.27.0 has it): chunks of 2, ``count_cache_layers`` of
      the encoder; a time-downsampling layer holds a lone frame back (``Encoder3d.forward`` may return
      None) until a call with ``final=True`` lets it out."""
    import inspect

    takes_final = "final" in inspect.signature(type(net.encoder).forward).parameters
    count = getattr(_wan_vae, "count_cache_layers", None)
    layers = count(net.encoder) if takes_final and count is not None else wan_decoder_cache_layers(net.decoder)
    return {"cache_layers": layers, "chunk": 2 if takes_final else 4, "takes_final": takes_final}


def load_diffusion_model_state_dict(sd: dict, model_options: dict, disable_dynamic: bool = False):
    """``comfy.sd.load_diffusion_model_state_dict``; ``disable_dynamic`` (0.16+, where ComfyUI streams
    weights per layer call on NVIDIA, "dynamic VRAM") asks for a patcher that keeps weights resident."""
    import inspect

    import comfy.sd

    fn = comfy.sd.load_diffusion_model_state_dict
    if disable_dynamic and "disable_dynamic" in inspect.signature(fn).parameters:
        return fn(sd, model_options=model_options, disable_dynamic=True)
    return fn(sd, model_options=model_options)


def set_reload(patcher, factory, args: tuple, index: int | None = None):
    """Register how ComfyUI can load this model again (``ModelPatcher.cached_patcher_init``, 0.23+):
    what core's MultiGPU / Select Model Device nodes and ``clone(disable_dynamic=True)`` (TorchCompileModel,
    Tempo Causal Speed's compile) call, as ``factory(*args)`` and ``factory(*args, disable_dynamic=True)``;
    ``index`` picks the patcher from a tuple the factory returns. A no-op on older releases."""
    if hasattr(patcher, "cached_patcher_init"):
        patcher.cached_patcher_init = (factory, args) if index is None else (factory, args, index)
    return patcher


def is_dynamic(patcher) -> bool:
    """Whether ComfyUI streams this model's weights per layer call (0.16+ ``ModelPatcherDynamic``, NVIDIA only)."""
    return bool(getattr(patcher, "is_dynamic", lambda: False)())


def resident_clone(patcher):
    """A clone whose weights stay where ComfyUI loads them (what compiled code and CUDA graphs may hold on
    to): on a dynamic-VRAM model, ComfyUI's own ``clone(disable_dynamic=True)``, which reloads the model
    through its loader's ``cached_patcher_init`` and raises RuntimeError where the loader registered none."""
    return patcher.clone(disable_dynamic=True) if is_dynamic(patcher) else patcher.clone()


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
