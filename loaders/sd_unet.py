"""Stable Diffusion UNet layouts: the block structure of a diffusers-named UNet.

Plain Python. ComfyUI converts diffusers UNets only when they match a released
configuration exactly; this reads the structure from the tensor names themselves, so any
size converts (fine-tunes with other depths, and the tiny UNets the tests build).
The key map itself comes from ComfyUI (``comfy.utils.unet_to_diffusers``) in the adapter.
"""

from __future__ import annotations

import re


def _indices(keys, pattern: str) -> list[int]:
    rx = re.compile(pattern)
    return sorted({int(m.group(1)) for k in keys if (m := rx.match(k))})


def diffusers_unet_structure(sd: dict) -> dict:
    """num_res_blocks, channel_mult, transformer_depth(_output/_middle) of a diffusers UNet.

    ``transformer_depth_output`` is in the order ComfyUI consumes it (it pops from the end,
    deepest up-block first).
    """
    keys = list(sd)
    downs = _indices(keys, r"down_blocks\.(\d+)\.")
    if not downs or "conv_in.weight" not in sd:
        raise ValueError("not a diffusers UNet: no conv_in / down_blocks")
    model_channels = sd["conv_in.weight"].shape[0]
    num_res_blocks, channel_mult, depth = [], [], []
    for b in downs:
        res = _indices(keys, rf"down_blocks\.{b}\.resnets\.(\d+)\.")
        num_res_blocks.append(len(res))
        out_ch = sd[f"down_blocks.{b}.resnets.{res[-1]}.conv2.weight"].shape[0]
        channel_mult.append(out_ch // model_channels)
        for r in res:
            depth.append(len(_indices(keys, rf"down_blocks\.{b}\.attentions\.{r}\.transformer_blocks\.(\d+)\.")))
    ups = _indices(keys, r"up_blocks\.(\d+)\.")
    order = []
    for u in ups:
        for r in _indices(keys, rf"up_blocks\.{u}\.resnets\.(\d+)\."):
            order.append(len(_indices(keys, rf"up_blocks\.{u}\.attentions\.{r}\.transformer_blocks\.(\d+)\.")))
    middle = len(_indices(keys, r"mid_block\.attentions\.0\.transformer_blocks\.(\d+)\."))
    return {"num_res_blocks": num_res_blocks, "channel_mult": channel_mult, "transformer_depth": depth,
            "transformer_depth_output": list(reversed(order)), "transformer_depth_middle": middle}
