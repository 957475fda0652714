"""ComfyUI side of the causal video model: native MODEL objects and the Wan VAE's streaming decode."""

from __future__ import annotations

import logging
import os

import torch

import comfy.model_base
import comfy.model_detection
import comfy.model_management as mm
import comfy.model_patcher
import comfy.supported_models
import comfy.utils
from comfy.ldm.modules.attention import optimized_attention

from ..loaders.wan import read_wan_checkpoint
from ..models.causal_wan import CausalWanModel, config_from_state_dict

DTYPES = {"default": None, "bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32,
          "fp8_e4m3fn (storage)": torch.float8_e4m3fn}


def comfy_attention(q, k, v, mask=None):
    """ComfyUI's attention backend (xformers, SDPA, sage... as the user configured) on [B, H, L, D]."""
    return optimized_attention(q, k, v, heads=q.shape[1], mask=mask, skip_reshape=True, skip_output_reshape=True)


class ComfyCausalWan(CausalWanModel):
    def __init__(self, **kwargs):
        kwargs.pop("image_model", None)
        super().__init__(attention=comfy_attention, **kwargs)


class CausalWAN21(comfy.model_base.WAN21):
    """Native Wan 2.1 MODEL whose network is the causal backbone: native samplers run it as a
    bidirectional few-step model; Tempo's causal sampler runs it block by block with a cache."""

    def __init__(self, model_config, model_type=comfy.model_base.ModelType.FLOW, image_to_video=False, device=None):
        comfy.model_base.BaseModel.__init__(self, model_config, model_type, device=device, unet_model=ComfyCausalWan)
        self.image_to_video = image_to_video


def load_causal_model(path: str, dtype: str = "default"):
    """(ModelPatcher, what the file says) for a causal (or plain) Wan 2.1 checkpoint."""
    sd, info = read_wan_checkpoint(path)
    cfg = config_from_state_dict(sd)
    unet_config = comfy.model_detection.detect_unet_config(sd, "")
    if unet_config is None or unet_config.get("image_model") != "wan2.1":
        unet_config = {"image_model": "wan2.1", **cfg}
    unet_config.update({k: cfg[k] for k in ("num_heads", "num_layers", "dim", "ffn_dim", "in_dim", "out_dim")})
    cls = comfy.supported_models.WAN21_I2V if cfg["model_type"] == "i2v" else comfy.supported_models.WAN21_T2V
    model_config = cls(unet_config)
    load_device, offload_device = mm.get_torch_device(), mm.unet_offload_device()
    params = comfy.utils.calculate_parameters(sd)
    unet_dtype = DTYPES[dtype] or mm.unet_dtype(model_params=params,
                                                 supported_dtypes=list(model_config.supported_inference_dtypes),
                                                 weight_dtype=comfy.utils.weight_dtype(sd))
    manual_cast = mm.unet_manual_cast(unet_dtype, load_device, model_config.supported_inference_dtypes)
    model_config.set_inference_dtype(unet_dtype, manual_cast)
    model = CausalWAN21(model_config, image_to_video=cfg["model_type"] == "i2v", device=offload_device)
    model.load_model_weights(sd, "")
    patcher = comfy.model_patcher.ModelPatcher(model, load_device=load_device, offload_device=offload_device)
    info = dict(info, config=cfg, file=os.path.basename(os.path.normpath(path)))
    patcher.model_options["tempo_causal"] = {k: v for k, v in info.items() if k not in ("config", "metadata")}
    logging.info(f"Tempo: loaded {info['file']} as causal Wan 2.1 {cfg['dim']}x{cfg['num_layers']} ({info})")
    return patcher, info


class StreamingWanDecoder:
    """Decodes latent blocks one after another with the Wan VAE's causal feature cache kept
    between them, so the frames equal decoding the whole latent video at once."""

    def __init__(self, vae):
        from comfy.ldm.wan.vae import count_conv3d

        self.vae = vae
        self.net = vae.first_stage_model
        if not hasattr(self.net, "decoder") or not hasattr(self.net, "conv2"):
            raise ValueError("this VAE is not the Wan 2.1 VAE; load wan_2.1_vae with 'Load VAE'")
        self.feat_map = [None] * count_conv3d(self.net.decoder)
        self.first = True

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        """latent [B, 16, F, h, w] in VAE units -> frames [B*T, H, W, 3] in 0..1."""
        mm.load_models_gpu([self.vae.patcher])
        dev, dtype = self.vae.device, self.vae.vae_dtype
        with torch.no_grad():
            x = self.net.conv2(latent.to(dev, dtype))
            outs = []
            for i in range(x.shape[2]):
                idx = [0]
                outs.append(self.net.decoder(x[:, :, i:i + 1], feat_cache=self.feat_map, feat_idx=idx))
            out = torch.cat(outs, 2).float()
        out = self.vae.process_output(out).clamp(0, 1)  # [B, 3, T, H, W]
        return out.movedim(1, -1).reshape(-1, out.shape[-2], out.shape[-1], 3).cpu()

    def close(self):
        self.feat_map = None

