"""The causal nodes' side of the live page: open a stream for a run, hand it the frames, and turn
the page's requests (a prompt, a saved conditioning) into text embeddings between blocks."""

from __future__ import annotations

import io as _io
import logging

import folder_paths

from ..live.streams import HUB, LiveStream
from ..samplers.timeline import short
from .common import CONDITIONING_FOLDER, encode_wan_prompt, resolve_model_path
from .conditioning import read_conditioning

ROUTE = "/tempo/live"


def page_link(stream: LiveStream) -> str:
    return f"{ROUTE}/?stream={stream.id}"


def send_link(stream: LiveStream, node_id) -> None:
    """Show the page's link in the node while it runs (ComfyUI's progress text), and in the log."""
    text = f"watch live: {page_link(stream)}"
    logging.info(f"Tempo: '{stream.title}' {text}")
    try:
        import server

        instance = getattr(server.PromptServer, "instance", None)
        if instance is not None and node_id is not None and hasattr(instance, "send_progress_text"):
            instance.send_progress_text(text, node_id)
    except Exception as e:  # noqa: BLE001 - a missing link must never stop the video
        logging.debug(f"Tempo: could not show the live link: {e}")


def open_stream(plan, title: str, fps: float, node_id=None) -> LiveStream:
    stream = HUB.open(title=title, width=plan.width, height=plan.height, fps=fps, total_blocks=plan.num_blocks,
                      saved=folder_paths.get_filename_list(CONDITIONING_FOLDER), can_encode=plan.clip is not None)
    send_link(stream, node_id)
    return stream


def jpegs(frames, quality: int = 85) -> list[bytes]:
    """frames [N, H, W, 3] in 0..1 -> JPEG bytes each."""
    from PIL import Image

    out = []
    for f in (frames.clamp(0, 1) * 255).round().byte().numpy():
        buf = _io.BytesIO()
        Image.fromarray(f).save(buf, "JPEG", quality=quality)
        out.append(buf.getvalue())
    return out


def prompt_source(stream: LiveStream, plan):
    """live(block) for the sampler: the newest request from the page as a text embedding, or None.
    A request that cannot be used is told on the page and the video goes on with its prompt."""

    def live(block: int):
        req = stream.take_prompt()
        if req is None:
            return None
        kind, value = req
        try:
            if kind == "text":
                cond = encode_wan_prompt(plan.clip, value)[0][0][:1]
            else:
                cond = read_conditioning(resolve_model_path(value, (CONDITIONING_FOLDER,), "saved conditioning"))[0][:1]
            if cond.ndim != 3 or cond.shape[-1] != plan.cond.shape[-1]:
                raise ValueError(f"it is not Wan text conditioning ({tuple(cond.shape)})")
        except Exception as e:  # noqa: BLE001 - the page is told, the video goes on
            stream.event(f"could not use '{short(value)}': {e}")
            return None
        stream.event(f"from block {block + 1}: '{short(value)}'")
        logging.info(f"Tempo: '{stream.title}' switches prompt at block {block + 1} of {stream.total_blocks} "
                     f"(from the live page): '{short(value)}'")
        return cond

    return live
