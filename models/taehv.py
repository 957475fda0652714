"""The TAEHV tiny video decoder (madebyollin/taehv: ``taew2_1`` for Wan 2.1 and the Wan 2.2 A14B
experts, ``taew2_2`` for Wan 2.2 TI2V 5B), decoding block by block as a causal video is made.

Plain torch; the layers are built from ``operations`` (ComfyUI's ops, or torch.nn). The decoder's
layer order is the released files' (``decoder.<i>.*`` keys), so their weights load as they are.
Its only memory across time: each MemBlock sees the previous frame's input (zeros before the
first), and each TGrow turns one frame into ``stride`` frames; so carrying the last input frame of
every MemBlock from one block to the next decodes a video in blocks exactly as in one piece. The
first ``frames_to_trim`` (3) output frames are dropped once, at the start, as the reference does:
81 frames from 21 latent frames. Latents in the diffusion model's own space (TAEHV "decodes
exactly what diffusion models use": for ComfyUI's LATENT, the latent format's process_in first).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

DECODER_CHANNELS = (256, 128, 64, 64)
TIME_UPSCALE = (False, True, True)   # the Wan files' TGrow strides: 1, 2, 2 (4x in time)


def wan_latent_space(name: str, layout: dict) -> str | None:
    """Which latents a TAEHV file decodes, from its weights and, where they cannot tell, its name:
    "diffusion" (madebyollin's taew2_1: the diffusion model's own space), "vae" (lightx2v's
    lighttaew2_1: ComfyUI's LATENT as it is), None when ``layout`` ({key: (dtype, shape)}) is no
    16-channel TAEHV decoder. The two Wan files have the same layout, so a name that says neither
    (a renamed file) is read as ComfyUI's own VAE loader reads it (comfy/sd.py 0.27 ``decoder.22.bias``:
    a 16-channel file that is not float16 is lighttaew2_1); a float16 one is Hunyuan Video's taehv."""
    first, last = layout.get("decoder.1.weight"), layout.get("decoder.22.bias")
    if first is None or last is None or len(first[1]) < 2 or first[1][1] != 16:
        return None
    low = name.lower()
    if "lighttae" in low:
        return "vae"
    if "taew" in low:
        return "diffusion"
    return None if first[0] == "float16" else "vae"


class Clamp(nn.Module):
    def forward(self, x):
        return torch.tanh(x / 3) * 3


class MemBlock(nn.Module):
    """relu(conv3(relu(conv2(relu(conv1([x, past]))))) + skip(x)); ``past``: the previous frame's x."""

    def __init__(self, n_in: int, n_out: int, operations=nn):
        super().__init__()
        self.conv = nn.Sequential(operations.Conv2d(n_in * 2, n_out, 3, padding=1), nn.ReLU(inplace=True),
                                  operations.Conv2d(n_out, n_out, 3, padding=1), nn.ReLU(inplace=True),
                                  operations.Conv2d(n_out, n_out, 3, padding=1))
        self.skip = operations.Conv2d(n_in, n_out, 1, bias=False) if n_in != n_out else nn.Identity()
        self.act = nn.ReLU(inplace=True)

    def forward(self, x, past):
        return self.act(self.conv(torch.cat([x, past], 1)) + self.skip(x))


class TGrow(nn.Module):
    """One frame in, ``stride`` frames out (a 1x1 conv to stride x channels, split in time order)."""

    def __init__(self, n_f: int, stride: int, operations=nn):
        super().__init__()
        self.stride = stride
        self.conv = operations.Conv2d(n_f, n_f * stride, 1, bias=False)

    def forward(self, x):
        n, c, h, w = x.shape
        return self.conv(x).reshape(n * self.stride, c, h, w)


def decoder_layers(latent_channels: int, patch_size: int, operations=nn) -> nn.Sequential:
    """TAEHV's decoder (its base variant), in the released files' order: decoder.22 is the last conv."""
    f = DECODER_CHANNELS
    conv = lambda a, b, **kw: operations.Conv2d(a, b, 3, padding=1, **kw)  # noqa: E731
    layers = [Clamp(), conv(latent_channels, f[0]), nn.ReLU(inplace=True)]
    for stage, grow in enumerate(TIME_UPSCALE):
        n = f[stage]
        layers += [MemBlock(n, n, operations), MemBlock(n, n, operations), MemBlock(n, n, operations),
                   nn.Upsample(scale_factor=2), TGrow(n, 2 if grow else 1, operations), conv(n, f[stage + 1], bias=False)]
    layers += [nn.ReLU(inplace=True), conv(f[3], 3 * patch_size ** 2)]
    return nn.Sequential(*layers)


class TAEHVDecoder(nn.Module):
    """``decoder.*`` of a taew2_1 / taew2_2 file; ``decode`` a whole clip, or ``stream()`` block by block."""

    def __init__(self, latent_channels: int = 16, patch_size: int = 1, operations=nn):
        super().__init__()
        self.latent_channels, self.patch_size = latent_channels, patch_size
        self.decoder = decoder_layers(latent_channels, patch_size, operations)
        self.frames_to_trim = 2 ** sum(TIME_UPSCALE) - 1

    @classmethod
    def from_state_dict(cls, sd: dict, operations=nn) -> "TAEHVDecoder":
        """The decoder of a TAEHV file (its encoder, if any, is not used); the latent width and the patch
        size (Wan 2.2 5B: 48 channels, 2x2 pixel shuffle) read from the weights."""
        if "decoder.1.weight" not in sd or "decoder.22.weight" not in sd:
            raise ValueError("not a TAEHV file (no decoder.1 / decoder.22 weights): use taew2_1.pth (Wan 2.1, Wan 2.2 "
                             "A14B) or taew2_2.pth (Wan 2.2 5B) from madebyollin/taehv")
        latent_channels = sd["decoder.1.weight"].shape[1]
        patch = int(round((sd["decoder.22.weight"].shape[0] / 3) ** 0.5))
        model = cls(latent_channels, patch, operations)
        missing, unexpected = model.load_state_dict({k: v for k, v in sd.items() if k.startswith("decoder.")},
                                                    strict=False)
        if missing or unexpected:
            raise ValueError(f"the TAEHV decoder's weights do not fit its architecture (missing {missing[:3]}, "
                             f"unexpected {unexpected[:3]}); the 'super' decoder variant is not supported")
        return model

    def stream(self) -> "TAEHVStream":
        return TAEHVStream(self)

    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        """[B, C, T, h, w] latents -> [B, 3, 4T - 3, H, W] frames in 0..1, in one piece."""
        return self.stream().decode(latent)


class TAEHVStream:
    """Decodes consecutive latent blocks of one video: each MemBlock's last input frame is carried on."""

    def __init__(self, model: TAEHVDecoder):
        self.model = model
        self.memory: dict = {}
        self.trim = model.frames_to_trim

    @torch.no_grad()
    def decode(self, latent: torch.Tensor) -> torch.Tensor:
        """[B, C, t, h, w] the next latent frames -> [B, 3, frames, H, W] their frames, 0..1."""
        b, _, t = latent.shape[:3]
        x = latent.movedim(2, 1).reshape(b * t, *latent.shape[1:2], *latent.shape[3:])
        for i, layer in enumerate(self.model.decoder):
            if isinstance(layer, MemBlock):
                frames = x.reshape(b, -1, *x.shape[1:])
                before = self.memory.get(i)
                before = torch.zeros_like(frames[:, :1]) if before is None else before
                past = torch.cat([before, frames[:, :-1]], 1)
                self.memory[i] = frames[:, -1:]
                x = layer(x, past.reshape(x.shape))
            else:
                x = layer(x)
        x = x.reshape(b, -1, *x.shape[1:])            # [B, T', 3 p^2, H, W]
        if self.trim:
            cut = min(self.trim, x.shape[1])
            x, self.trim = x[:, cut:], self.trim - cut
        if self.model.patch_size > 1:
            frames = x.shape[1]
            x = F.pixel_shuffle(x.flatten(0, 1), self.model.patch_size)
            x = x.reshape(b, frames, *x.shape[1:])
        return x.clamp(0, 1).movedim(1, 2)
