"""KV caches for causal video: fixed-size rolling self-attention cache with sink frames.

Plain torch. Memory is allocated once, at ``(sink + window) * tokens_per_frame`` tokens per
layer, so it stays the same however long the video runs. Keys are stored after RoPE, at
their absolute frame positions; evicting a frame never re-rotates the others.
"""

from __future__ import annotations

import torch


class RollingKVCache:
    """Per layer keys/values of the frames generated so far, as Self Forcing keeps them.

    Holds at most ``sink_frames + window_frames`` frames: the first ``sink_frames`` of the
    video stay for good; after them, the most recent ``window_frames``. A pass with
    ``write=True`` first stages every layer's new keys/values (the frames being written must
    not see themselves twice) and :meth:`commit` then stores them, evicting the oldest
    non-sink frames that no longer fit.
    """

    def __init__(self, num_layers: int, batch: int, heads: int, head_dim: int, tokens_per_frame: int,
                 sink_frames: int, window_frames: int, device=None, dtype=torch.float32, full: bool = False):
        if window_frames < 1:
            raise ValueError("the cache window must hold at least one frame")
        self.tpf, self.sink, self.window = tokens_per_frame, sink_frames, window_frames
        self.full = full  # sized to hold every frame of the video (no window): a re-cache recomputes all
        self.capacity_frames = sink_frames + window_frames
        shape = (num_layers, batch, self.capacity_frames * tokens_per_frame, heads, head_dim)
        self.k = torch.zeros(shape, device=device, dtype=dtype)
        self.v = torch.zeros(shape, device=device, dtype=dtype)
        self.frames: list[int] = []      # absolute indices of the stored frames, in order
        self._staged: dict[int, tuple] = {}

    @staticmethod
    def bytes_needed(num_layers, batch, heads, head_dim, tokens_per_frame, frames, dtype=torch.bfloat16) -> int:
        return 2 * num_layers * batch * frames * tokens_per_frame * heads * head_dim * torch.empty((), dtype=dtype).element_size()

    @property
    def nbytes(self) -> int:
        return self.k.numel() * self.k.element_size() + self.v.numel() * self.v.element_size()

    def read(self, layer: int):
        n = len(self.frames) * self.tpf
        if n == 0:
            return None, None
        return self.k[layer, :, :n], self.v[layer, :, :n]

    def stage(self, layer: int, k: torch.Tensor, v: torch.Tensor):
        self._staged[layer] = (k, v)

    def commit(self, start_frame: int, n_frames: int):
        """Store the staged frames ``start_frame .. start_frame + n_frames - 1``. When the held and
        the new frames together overflow the cache, the first ``sink_frames`` of them stay and the
        most recent fill the rest (a re-cache may stage more frames than the cache holds)."""
        if len(self._staged) != self.k.shape[0]:
            raise RuntimeError("commit without keys/values staged for every layer")
        keep, new = self.frames, list(range(start_frame, start_frame + n_frames))
        total, cap = len(keep) + n_frames, self.capacity_frames
        chosen = list(range(total))
        if total > cap:  # the sinks, then the newest
            s = min(self.sink, cap - 1)
            chosen = chosen[:s] + chosen[total - (cap - s):]
        old = [i for i in chosen if i < len(keep)]
        fresh = [i - len(keep) for i in chosen if i >= len(keep)]
        if old and old != list(range(len(old))):  # old = the sinks + a run of the newest: shift the run left
            s = next(j for j, i in enumerate(old) if i != j)
            src = slice(old[s] * self.tpf, (old[-1] + 1) * self.tpf)
            dst = slice(s * self.tpf, len(old) * self.tpf)
            self.k[:, :, dst] = self.k[:, :, src].clone()
            self.v[:, :, dst] = self.v[:, :, src].clone()
        if fresh:
            at = len(old) * self.tpf
            contiguous = fresh == list(range(fresh[0], fresh[-1] + 1))
            tokens = None if contiguous else (torch.tensor(fresh)[:, None] * self.tpf + torch.arange(self.tpf)).flatten()
            for layer, (k, v) in self._staged.items():
                if contiguous:
                    k, v = k[:, fresh[0] * self.tpf:(fresh[-1] + 1) * self.tpf], v[:, fresh[0] * self.tpf:(fresh[-1] + 1) * self.tpf]
                else:
                    k, v = k.index_select(1, tokens.to(k.device)), v.index_select(1, tokens.to(v.device))
                self.k[layer, :, at:at + k.shape[1]] = k.to(self.k.dtype)
                self.v[layer, :, at:at + v.shape[1]] = v.to(self.v.dtype)
        self._staged.clear()
        self.frames = [keep[i] for i in old] + [new[i] for i in fresh]

    def restart(self, keep_sinks: bool):
        """Forget the held frames (a re-cache writes them again), keeping the sink frames or not."""
        self.frames = self.frames[:min(self.sink, len(self.frames))] if keep_sinks else []
        self._staged = {}

    def clear(self):
        self.frames, self._staged = [], {}
        self.k = self.v = None
