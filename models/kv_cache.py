"""KV caches for causal video: fixed-size rolling self-attention cache with sink frames.

Plain torch. Memory is allocated once, at ``(sink + window + spare) * tokens_per_frame`` tokens
per layer, so it stays the same however long the video runs. Keys are stored after RoPE, at
their absolute frame positions; evicting a frame never re-rotates the others.

The cache is a set of frame *slots*. Attention over the cached keys has no mask, so the order
the slots hold the frames in does not matter: a frame evicted frees its slot and the next frame
is written there (a ring, no shifting). With ``in_place`` (the default) every network pass writes
its own keys/values straight into free slots (the ``spare`` slots hold one block) and attends to
a view of the buffer: no per-layer concatenation, and the clean refill pass commits by
bookkeeping alone. Without it, or when a pass has more frames than there are free slots (a long
prefix), the pass attends to the held frames in time order joined with its own, as the authors'
code does, and the commit copies the kept frames in.
"""

from __future__ import annotations

import torch


def token_index(slots: list[int], tpf: int, device) -> torch.Tensor:
    """The token positions of frame slots, built on ``device`` from runs of consecutive slots (aranges:
    kernels only, no copy from the host, so a pass never waits on it)."""
    runs, start = [], slots[0]
    for prev, cur in zip(slots, slots[1:] + [None]):
        if cur != prev + 1:
            runs.append(torch.arange(start * tpf, (prev + 1) * tpf, device=device))
            start = cur
    return runs[0] if len(runs) == 1 else torch.cat(runs)


class RollingKVCache:
    """Per layer keys/values of the frames generated so far, as Self Forcing keeps them.

    Holds at most ``sink_frames + window_frames`` frames: the first ``sink_frames`` of the
    video stay for good; after them, the most recent ``window_frames``. A network pass calls
    :meth:`begin` once, then :meth:`attend_kv` per layer; a pass with ``write=True`` ends with
    :meth:`commit`, which keeps its frames (the frames being written never see themselves twice),
    evicting the oldest non-sink frames that no longer fit.
    """

    def __init__(self, num_layers: int, batch: int, heads: int, head_dim: int, tokens_per_frame: int,
                 sink_frames: int, window_frames: int, device=None, dtype=torch.float32, full: bool = False,
                 spare_frames: int = 0, in_place: bool = True):
        if window_frames < 1:
            raise ValueError("the cache window must hold at least one frame")
        self.tpf, self.sink, self.window = tokens_per_frame, sink_frames, window_frames
        self.full = full  # sized to hold every frame of the video (no window): a re-cache recomputes all
        self.capacity_frames = sink_frames + window_frames   # frames held between passes
        self.in_place = in_place
        slots = self.capacity_frames + (spare_frames if in_place else 0)
        shape = (num_layers, batch, slots * tokens_per_frame, heads, head_dim)
        self.k = torch.zeros(shape, device=device, dtype=dtype)
        self.v = torch.zeros(shape, device=device, dtype=dtype)
        self.slot_frame: list = [None] * slots   # absolute frame index held by each slot
        self._pass = None
        self._staged: dict[int, tuple] = {}
        self.passes = {"in place": 0, "join": 0}  # how the passes ran (the benchmark and tests read it)

    @staticmethod
    def bytes_needed(num_layers, batch, heads, head_dim, tokens_per_frame, frames, dtype=torch.bfloat16) -> int:
        return 2 * num_layers * batch * frames * tokens_per_frame * heads * head_dim * torch.empty((), dtype=dtype).element_size()

    @property
    def nbytes(self) -> int:
        return self.k.numel() * self.k.element_size() + self.v.numel() * self.v.element_size()

    @property
    def frames(self) -> list[int]:
        """Absolute indices of the held frames, in time order."""
        return sorted(f for f in self.slot_frame if f is not None)

    def _held_slots(self) -> list[int]:
        """Slots of the held frames, in the frames' time order."""
        return [i for _, i in sorted((f, i) for i, f in enumerate(self.slot_frame) if f is not None)]

    def _tokens(self, slots: list[int]):
        """A slice over the slots' tokens when they are consecutive, else an index tensor."""
        if slots == list(range(slots[0], slots[0] + len(slots))):
            return slice(slots[0] * self.tpf, (slots[-1] + 1) * self.tpf)
        return token_index(slots, self.tpf, self.k.device)

    def _put(self, layer: int, tokens, k, v):
        if isinstance(tokens, slice):
            self.k[layer, :, tokens], self.v[layer, :, tokens] = k, v
        else:
            self.k[layer].index_copy_(1, tokens, k.to(self.k.dtype))
            self.v[layer].index_copy_(1, tokens, v.to(self.v.dtype))

    def _take(self, layer: int, tokens):
        if isinstance(tokens, slice):
            return self.k[layer, :, tokens], self.v[layer, :, tokens]
        return self.k[layer].index_select(1, tokens), self.v[layer].index_select(1, tokens)

    def begin(self, start_frame: int, n_frames: int):
        """Lay out one network pass over frames ``start_frame ..``: in place when they fit the free slots."""
        free = [i for i, f in enumerate(self.slot_frame) if f is None]
        held = self._held_slots()
        if self.in_place and len(free) >= n_frames:
            own = free[:n_frames]
            self._pass = ("in place", self._tokens(own), self._tokens(sorted(held + own)), own)
        else:
            self._pass = ("join", None, self._tokens(held) if held else None, None)
        self.passes[self._pass[0]] += 1

    def attend_kv(self, layer: int, k: torch.Tensor, v: torch.Tensor, write: bool):
        """The keys/values a pass's queries attend to at ``layer``: the held frames' and its own."""
        if self._pass is None:
            raise RuntimeError("begin() the pass before attending to the cache")
        mode, own, view, _ = self._pass
        if mode == "in place":
            self._put(layer, own, k, v)
            return self._take(layer, view)
        if write:  # a copy: the pass's own tensors may be a compiled graph's buffers, reused by the next layer
            self.stage(layer, k.clone(), v.clone())
        if view is None:
            return k, v
        k_ctx, v_ctx = self._take(layer, view)
        return torch.cat([k_ctx.to(k.dtype), k], dim=1), torch.cat([v_ctx.to(v.dtype), v], dim=1)

    def stage(self, layer: int, k: torch.Tensor, v: torch.Tensor):
        self._staged[layer] = (k, v)

    def _kept(self, held: list[int], new: list[int]) -> list[int]:
        """Of the held and the new frames (in time order), the ones kept: all when they fit, else the
        first ``sink_frames`` and the most recent (a re-cache may pass more frames than the cache holds)."""
        both = sorted(held + new)
        cap = self.capacity_frames
        if len(both) <= cap:
            return both
        s = min(self.sink, cap - 1)
        return both[:s] + both[len(both) - (cap - s):]

    def commit(self, start_frame: int, n_frames: int):
        """Keep the frames ``start_frame .. start_frame + n_frames - 1`` of the pass just run."""
        new = list(range(start_frame, start_frame + n_frames))
        mode = self._pass[0] if self._pass is not None else "join"
        if mode == "join" and len(self._staged) != self.k.shape[0]:
            raise RuntimeError("commit without keys/values staged for every layer")
        kept = set(self._kept(self.frames, new))
        if mode == "in place":  # the pass wrote its frames into its own slots already
            for slot, f in zip(self._pass[3], new):
                self.slot_frame[slot] = f
        self.slot_frame = [f if f in kept else None for f in self.slot_frame]
        fresh = [i for i, f in enumerate(new) if f in kept] if mode == "join" else []
        if fresh:  # joined: copy the kept new frames from what was staged into free slots
            free = [i for i, f in enumerate(self.slot_frame) if f is None][:len(fresh)]
            dst = self._tokens(free)
            for layer, (k, v) in self._staged.items():
                src = token_index(fresh, self.tpf, k.device)
                self._put(layer, dst, k.index_select(1, src), v.index_select(1, src))
            for slot, i in zip(free, fresh):
                self.slot_frame[slot] = new[i]
        self._staged.clear()
        self._pass = None

    def restart(self, keep_sinks: bool):
        """Forget the held frames (a re-cache writes them again), keeping the sink frames or not."""
        keep = set(self.frames[:min(self.sink, len(self.frames))] if keep_sinks else [])
        self.slot_frame = [f if f in keep else None for f in self.slot_frame]
        self._staged, self._pass = {}, None

    def clear(self):
        self.slot_frame, self._staged, self._pass = [None] * len(self.slot_frame), {}, None
        self.k = self.v = None
