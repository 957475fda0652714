"""Live causal video streams: what the live page shows while a job runs, and what it may ask.

Plain Python (no ComfyUI, no web server). The generation thread opens a stream, publishes each
finished block's frames (JPEG bytes, only while someone watches) and reads the page's requests
at block boundaries: stop, or a new prompt for the next blocks. The web routes
(``nodes/live_routes.py``) read streams by id; no request ever names a file.
"""

from __future__ import annotations

import collections
import secrets
import threading
import time
from dataclasses import dataclass, field

from ..errors import TempoError

MAX_PROMPT_CHARS = 2000
KEEP_BLOCKS = 4        # blocks of frames held for viewers (a late joiner starts from the newest)
KEEP_FINISHED = 16     # finished streams listed (their mp4 stays watchable)
KEEP_EVENTS = 50


@dataclass
class SentBlock:
    seq: int
    index: int                 # 0-based block of the video
    frames: list               # JPEG bytes, one per frame
    published: float = 0.0     # wall-clock time the block's latents were done (the page measures latency from it)
    ready: float = 0.0         # wall-clock time its frames were ready to send (decoded, JPEG-encoded)


@dataclass
class LiveStream:
    title: str
    width: int
    height: int
    fps: float
    total_blocks: int
    saved: list = field(default_factory=list)   # saved conditionings the page may pick
    can_encode: bool = False                    # a text encoder is wired: the page may send text
    id: str = field(default_factory=lambda: secrets.token_urlsafe(9))

    def __post_init__(self):
        self.lock = threading.Lock()
        self.blocks: collections.deque = collections.deque(maxlen=KEEP_BLOCKS)
        self.seq = 0
        self.state = "running"          # running, stopping, finished, stopped, failed
        self.reason = ""
        self.blocks_done = 0
        self.frames_done = 0
        self.started = time.monotonic()
        self.last_block_s = None
        self.first_block_s = None
        self.viewers = 0
        self.encode_seconds = 0.0       # spent by the generating thread on frames for viewers
        self.stop_requested = False
        self.prompts: collections.deque = collections.deque(maxlen=1)  # the newest request wins
        self.events: collections.deque = collections.deque(maxlen=KEEP_EVENTS)
        self.video = None               # the finished mp4 (server side only; never sent to a page)
        self._block_started = time.monotonic()

    # -- the generation thread -----------------------------------------------------------------
    def block_started(self):
        self._block_started = time.monotonic()

    def publish(self, index: int, n_frames: int, frames=None, finished_at: float | None = None,
                encode_seconds: float = 0.0):
        """A block is done: ``n_frames`` frames, and their JPEG bytes when someone watches;
        ``finished_at``: the wall-clock time its latents were done (before decoding);
        ``encode_seconds``: what preparing the frames for viewers took the generating thread."""
        now = time.monotonic()
        with self.lock:
            self.last_block_s = now - self._block_started
            if self.first_block_s is None:
                self.first_block_s = now - self.started
            self.blocks_done += 1
            self.frames_done += n_frames
            self.encode_seconds += encode_seconds
            if frames is not None:
                self.seq += 1
                self.blocks.append(SentBlock(self.seq, index, list(frames), finished_at or time.time(), time.time()))

    def take_prompt(self):
        with self.lock:
            return self.prompts.popleft() if self.prompts else None

    def event(self, text: str):
        with self.lock:
            self._event(text)

    def _event(self, text: str):
        self.events.append({"t": round(time.monotonic() - self.started, 2), "text": text})

    def finish(self, state: str, reason: str = "", video: str | None = None):
        with self.lock:
            self._drop_prompts(f"the stream {state} before another block began")
            self.state, self.reason, self.video = state, reason, video

    # -- the web side --------------------------------------------------------------------------
    def watching(self) -> bool:
        return self.viewers > 0

    def since(self, seq: int | None) -> list:
        """Blocks after ``seq``; a viewer who has seen none gets the newest only (it joins live)."""
        with self.lock:
            if seq is None:
                return list(self.blocks)[-1:]
            return [b for b in self.blocks if b.seq > seq]

    def request_stop(self):
        with self.lock:
            if self.state == "running":
                self.stop_requested, self.state = True, "stopping"
                self._drop_prompts("the stream was asked to stop, so no later block is made")

    def request_prompt(self, kind: str, value: str):
        """Queue a prompt for the next block; one that waits is replaced, and the page is told."""
        with self.lock:
            if self.state != "running":
                raise TempoError(f"the stream is {self.state}; a new prompt can only steer a running stream")
            for _, old in self.prompts:
                self._event(f"'{_short(old)}' was replaced by a newer request ('{_short(value)}') before a block "
                            "began")
            self.prompts.append((kind, value))

    def _drop_prompts(self, why: str):
        """Tell the page what became of a request that no block will take (lock held)."""
        while self.prompts:
            _, old = self.prompts.popleft()
            self._event(f"'{_short(old)}' was not used: {why}")

    def info(self) -> dict:
        with self.lock:
            elapsed = time.monotonic() - self.started
            return {
                "id": self.id, "title": self.title, "width": self.width, "height": self.height, "fps": self.fps,
                "state": self.state, "reason": self.reason, "blocks_done": self.blocks_done,
                "total_blocks": self.total_blocks, "frames_done": self.frames_done,
                "generation_fps": round(self.frames_done / elapsed, 2) if self.frames_done and elapsed > 0 else None,
                "block_seconds": None if self.last_block_s is None else round(self.last_block_s, 3),
                "first_block_seconds": None if self.first_block_s is None else round(self.first_block_s, 3),
                "viewers": self.viewers, "saved": list(self.saved), "can_encode": self.can_encode,
                "streaming_share": round(self.encode_seconds / elapsed, 4) if elapsed > 0 else 0.0,
                "events": list(self.events), "video": self.video is not None,
            }


class LiveHub:
    """Every stream of this server process, by id."""

    def __init__(self):
        self.lock = threading.Lock()
        self.streams: collections.OrderedDict[str, LiveStream] = collections.OrderedDict()

    def open(self, **kw) -> LiveStream:
        s = LiveStream(**kw)
        with self.lock:
            done = [k for k, v in self.streams.items() if v.state not in ("running", "stopping")]
            for k in done[:max(0, len(done) - KEEP_FINISHED)]:
                del self.streams[k]
            for k in done:  # a finished stream's last frames go once a new one starts (its mp4 stays)
                if k in self.streams:
                    with self.streams[k].lock:
                        self.streams[k].blocks.clear()
            self.streams[s.id] = s
        return s

    def get(self, stream_id) -> LiveStream | None:
        if not isinstance(stream_id, str):
            return None
        with self.lock:
            return self.streams.get(stream_id)

    def list(self) -> list[dict]:
        with self.lock:
            streams = list(self.streams.values())
        return [s.info() for s in reversed(streams)]


def _short(text: str, n: int = 40) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[:n - 3] + "..."


def parse_prompt_request(body, stream: LiveStream) -> tuple[str, str]:
    """A page's prompt request, checked: {"text": "..."} (needs a text encoder in the graph) or
    {"saved": "<name>"} (one of the stream's saved conditionings)."""
    if not isinstance(body, dict) or len(set(body) & {"text", "saved"}) != 1 or set(body) - {"text", "saved"}:
        raise TempoError('send a JSON object with either "text" (a prompt) or "saved" (a saved conditioning name)')
    kind, value = next((k, body[k]) for k in ("text", "saved") if k in body)
    if not isinstance(value, str) or not value.strip():
        raise TempoError(f'"{kind}" must be a non-empty string')
    if kind == "text":
        if len(value) > MAX_PROMPT_CHARS:
            raise TempoError(f"the prompt is {len(value)} characters; at most {MAX_PROMPT_CHARS}")
        if not stream.can_encode:
            raise TempoError("this graph gives the sampler no text encoder (connect the Wan text encoder to the "
                             "sampler's clip input); pick a saved conditioning instead")
        return kind, value.strip()
    if value not in stream.saved:
        raise TempoError("unknown saved conditioning; pick one of the names listed for this stream")
    return kind, value


HUB = LiveHub()
