"""Test scaffolding: a small decoder with the calling convention of ComfyUI's spring-2026 Wan VAE
(the refactor reported in ComfyUI issue #13394, which neither test snapshot has):
``count_cache_layers`` instead of ``count_conv3d``; ``Decoder3d.forward`` returns a list of
chunks; each causal convolution caches only the frames of the current call (zeros stand in for
what is missing); the first frame skips temporal upsampling (the 'Rep' marker); the whole-clip
decode feeds the first latent frame alone, then pairs. Written for the tests from that
description, a few channels wide so it runs in milliseconds."""

from __future__ import annotations

import torch
import torch.nn as nn

CACHE_T = 2


class CausalConv3d(nn.Conv3d):
    """Causal in time (kernel k over frames, 1x1 in space): k - 1 frames of context, taken from the
    cache and padded with zeros where the cache has fewer."""

    def __init__(self, cin, cout, k=3):
        super().__init__(cin, cout, (k, 1, 1))

    def forward(self, x, cache=None):
        ctx = self.kernel_size[0] - 1
        parts = []
        have = 0 if cache is None else min(ctx, cache.shape[2])
        if ctx - have:
            parts.append(x.new_zeros(x.shape[0], x.shape[1], ctx - have, *x.shape[3:]))
        if have:
            parts.append(cache[:, :, -have:])
        return super().forward(torch.cat(parts + [x], dim=2))


def _run_cached(conv, x, feat_cache, feat_idx):
    idx = feat_idx[0]
    keep = x[:, :, -CACHE_T:]          # 2026 rule: only what this call saw
    x = conv(x, feat_cache[idx])
    feat_cache[idx] = keep
    feat_idx[0] += 1
    return x


class Upsample3d(nn.Module):
    def __init__(self, dim):
        super().__init__()
        self.time_conv = CausalConv3d(dim, dim * 2)

    def forward(self, x, feat_cache, feat_idx):
        idx = feat_idx[0]
        if feat_cache[idx] is None:    # the video's first frame: no temporal upsampling
            feat_cache[idx] = "Rep"
        else:
            keep = x[:, :, -CACHE_T:]
            y = self.time_conv(x) if isinstance(feat_cache[idx], str) else self.time_conv(x, feat_cache[idx])
            feat_cache[idx] = keep
            b, c2, t, h, w = y.shape
            x = y.view(b, 2, c2 // 2, t, h, w).permute(0, 2, 3, 1, 4, 5).reshape(b, c2 // 2, 2 * t, h, w)
        feat_idx[0] += 1
        return x


class Decoder2026(nn.Module):
    def __init__(self, z=4, dim=6):
        super().__init__()
        self.conv1 = CausalConv3d(z, dim)
        self.res = CausalConv3d(dim, dim)
        self.up1, self.up2 = Upsample3d(dim), Upsample3d(dim)
        self.head = CausalConv3d(dim, 3)

    def forward(self, x, feat_cache=None, feat_idx=[0]):
        x = _run_cached(self.conv1, x, feat_cache, feat_idx)
        x = x + torch.tanh(_run_cached(self.res, x, feat_cache, feat_idx))
        x = torch.sin(self.up1(x, feat_cache, feat_idx))
        x = self.up2(x, feat_cache, feat_idx)
        chunks = []
        for s in range(0, x.shape[2], 2):  # the head runs on chunks of two frames
            chunks.append(_run_cached(self.head, x[:, :, s:s + 2], feat_cache, list(feat_idx)))
        return chunks


def count_cache_layers(model):
    """One cache slot per causal convolution (an upsampler's slot is its time_conv's)."""
    return sum(isinstance(m, CausalConv3d) for m in model.modules())


def decode_whole(decoder, z):
    """The 2026 whole-clip decode: the first latent frame alone, then pairs."""
    cache = [None] * count_cache_layers(decoder)
    out = decoder(z[:, :, :1], feat_cache=cache, feat_idx=[0])
    for s in range(1, z.shape[2], 2):
        out += decoder(z[:, :, s:s + 2], feat_cache=cache, feat_idx=[0])
    return torch.cat(out, dim=2)
