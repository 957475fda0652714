"""Stable Video Diffusion UNets in diffusers naming (``UNetSpatioTemporalConditionModel``, as
AnimateLCM-SVD is published): split into the standard UNet names plus the temporal layers.

Plain Python. The spatial half then maps with the same key map as image UNets; each temporal
layer hangs off the spatial block it belongs to (``time_stack``, ``time_mixer``,
``time_pos_embed`` in the original Stability layout ComfyUI uses).
"""

from __future__ import annotations

import re

# diffusers resnet names -> original (SGM) names, for the temporal resnets
RESNET = {"norm1": "in_layers.0", "conv1": "in_layers.2", "time_emb_proj": "emb_layers.1", "norm2": "out_layers.0",
          "conv2": "out_layers.3", "conv_shortcut": "skip_connection"}


def _resnet_key(k: str):
    """(resnet prefix, name under it in the original layout) for the spatio-temporal resnet keys
    diffusers uses in SVD (spatial_res_block / temporal_res_block / time_mixer), else None."""
    m = re.match(r"(.*resnets\.\d+)\.spatial_res_block\.(.*)", k)
    if m:
        return m.group(1), m.group(2)
    m = re.match(r"(.*resnets\.\d+)\.temporal_res_block\.(\w+)\.(weight|bias)$", k)
    if m:
        return m.group(1), f"time_stack.{RESNET[m.group(2)]}.{m.group(3)}"
    m = re.match(r"(.*resnets\.\d+)\.time_mixer\.mix_factor$", k)
    if m:
        return m.group(1), "mix_factor"
    return None


def is_svd_diffusers(sd: dict) -> bool:
    return any(".spatial_res_block." in k for k in sd) and any(".temporal_res_block." in k for k in sd)


def split_svd_diffusers(sd: dict):
    """(standard diffusers UNet state dict, temporal entries).

    Each temporal entry is ``(anchor, suffix, tensor)``: ``anchor`` is a standard key of the
    spatial block the layer belongs to (its original-layout prefix is that block's), ``suffix``
    the layer's name under that prefix in the original layout.
    """
    standard, temporal = {}, []
    for k, v in sd.items():
        res = _resnet_key(k)
        if res is not None:
            prefix, name = res
            if name.startswith("time_stack.") or name == "mix_factor":  # the UNet keeps it as time_mixer.mix_factor
                temporal.append((f"{prefix}.conv1.weight", "time_mixer.mix_factor" if name == "mix_factor" else name, v))
            else:
                standard[f"{prefix}.{name}"] = v
            continue
        m = re.match(r"(.*attentions\.\d+)\.temporal_transformer_blocks\.(\d+)\.(.*)", k)
        if m:
            temporal.append((f"{m.group(1)}.proj_in.weight", f"time_stack.{m.group(2)}.{m.group(3)}", v))
            continue
        m = re.match(r"(.*attentions\.\d+)\.time_pos_embed\.linear_(\d)\.(weight|bias)$", k)
        if m:
            idx = {"1": "0", "2": "2"}[m.group(2)]
            temporal.append((f"{m.group(1)}.proj_in.weight", f"time_pos_embed.{idx}.{m.group(3)}", v))
            continue
        m = re.match(r"(.*attentions\.\d+)\.time_mixer\.mix_factor$", k)
        if m:
            temporal.append((f"{m.group(1)}.proj_in.weight", "time_mixer.mix_factor", v))
            continue
        standard[k] = v
    return standard, temporal


def svd_vae_diffusers_to_sgm(sd: dict) -> dict:
    """SVD's VAE (``AutoencoderKLTemporalDecoder``) in diffusers naming -> standard diffusers names for
    the spatial layers (ComfyUI converts those itself) and original names for the temporal ones."""
    out = {}
    for k, v in sd.items():
        res = _resnet_key(k)
        if res is not None:
            out[f"{res[0]}.{res[1]}"] = v
            continue
        if k.startswith("decoder.time_conv_out."):
            out["decoder.conv_out.time_mix_conv." + k.rsplit(".", 1)[1]] = v
            continue
        out[k] = v
    return out
