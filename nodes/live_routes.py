"""The live page's web routes on ComfyUI's own server (so they sit behind whatever fronts it):

    GET  /tempo/live/                        the page (lists the streams, or plays ?stream=ID)
    GET  /tempo/live/streams                 every stream of this server: state and figures
    GET  /tempo/live/streams/{id}            one stream
    GET  /tempo/live/streams/{id}/ws         websocket: the stream's figures (JSON) and frames (JPEG);
                                             ?after=SEQ resumes after the block numbered SEQ
    POST /tempo/live/streams/{id}/stop       stop after the block being made
    POST /tempo/live/streams/{id}/prompt     {"text": ...} or {"saved": ...}: the prompt from the next block
    GET  /tempo/live/streams/{id}/video      the finished mp4

Streams are found by their random id only; no request names a file.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re

from aiohttp import WSMsgType, web

from ..errors import TempoError
from ..live.streams import HUB, MAX_PROMPT_CHARS, parse_prompt_request
from .live import ROUTE

PAGE = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "live", "page.html")
POLL_S = 0.05
INFO_EVERY_S = 0.5
MAX_BODY = 16 * 1024


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _stream(request):
    s = HUB.get(request.match_info.get("id"))
    if s is None:
        raise web.HTTPNotFound(text=json.dumps({"error": "no such stream on this server"}),
                               content_type="application/json")
    return s


async def page(request):
    return web.FileResponse(PAGE, headers={"Cache-Control": "no-cache", "Content-Type": "text/html; charset=utf-8"})


async def to_page(request):
    raise web.HTTPFound(ROUTE + "/")


async def streams(request):
    return web.json_response({"streams": HUB.list()})


async def stream_info(request):
    return web.json_response(_stream(request).info())


async def stop(request):
    s = _stream(request)
    s.request_stop()
    return web.json_response({"state": s.info()["state"]})


async def prompt(request):
    s = _stream(request)
    too_large = _error(413, f"the request is over {MAX_BODY // 1024} KB; send a prompt of at most "
                            f"{MAX_PROMPT_CHARS} characters")
    if request.content_length is not None and request.content_length > MAX_BODY:
        return too_large
    data = b""
    while len(data) <= MAX_BODY:  # a chunked body has no length to check first: read at most one byte too many
        chunk = await request.content.read(MAX_BODY + 1 - len(data))
        if not chunk:
            break
        data += chunk
    if len(data) > MAX_BODY:
        return too_large
    try:
        body = json.loads(data or b"null")
    except (ValueError, UnicodeDecodeError):
        return _error(400, 'the body is not JSON; send {"text": "a prompt"} or {"saved": "name"}')
    try:
        kind, value = parse_prompt_request(body, s)
        s.request_prompt(kind, value)
    except TempoError as e:
        return _error(400, str(e))
    return web.json_response({"queued": kind})


async def video(request):
    s = _stream(request)
    if s.video is None or not os.path.isfile(s.video):
        return _error(404, "this stream has no finished video (yet)")
    return web.FileResponse(s.video, headers={"Content-Type": "video/mp4"})


async def websocket(request):
    s = _stream(request)
    after = request.query.get("after", "")
    # a page that reconnects names the last block it received and resumes after it (no block twice);
    # anything but plain ASCII digits (even what Python calls a digit, like '²') joins live
    seq, last_info = (int(after) if re.fullmatch(r"[0-9]{1,11}", after) else None), 0.0
    loop = asyncio.get_running_loop()
    ws = web.WebSocketResponse(heartbeat=20)
    await ws.prepare(request)
    with s.lock:
        s.viewers += 1

    async def drain_client():  # the page sends nothing that matters; read to notice it closing
        async for msg in ws:
            if msg.type in (WSMsgType.ERROR, WSMsgType.CLOSE):
                break

    reader = asyncio.ensure_future(drain_client())
    try:
        while not ws.closed and not reader.done():
            now = loop.time()
            if now - last_info >= INFO_EVERY_S:
                info = s.info()
                await ws.send_json({"type": "info", **info})
                last_info = now
                if info["state"] not in ("running", "stopping") and not s.since(seq):
                    break
            for block in s.since(seq):
                await ws.send_json({"type": "block", "seq": block.seq, "index": block.index, "frames": len(block.frames),
                                    "published": block.published, "ready": block.ready})
                for frame in block.frames:
                    await ws.send_bytes(frame)
                seq = block.seq
            if seq is None:
                seq = 0  # joined: from now on every new block
            await asyncio.sleep(POLL_S)
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        reader.cancel()
        with s.lock:
            s.viewers -= 1
        if not ws.closed:
            await ws.close()
    return ws


def register(routes) -> None:
    """Add the routes to ComfyUI's route table (before the server starts)."""
    routes.get(ROUTE)(to_page)
    routes.get(ROUTE + "/")(page)
    routes.get(ROUTE + "/streams")(streams)
    routes.get(ROUTE + "/streams/{id}")(stream_info)
    routes.get(ROUTE + "/streams/{id}/ws")(websocket)
    routes.post(ROUTE + "/streams/{id}/stop")(stop)
    routes.post(ROUTE + "/streams/{id}/prompt")(prompt)
    routes.get(ROUTE + "/streams/{id}/video")(video)


_registered = False


def register_on_server() -> bool:
    global _registered
    if _registered:
        return True
    try:
        import server

        instance = getattr(server.PromptServer, "instance", None)
    except Exception:  # noqa: BLE001 - no server in this process (tests, scripts)
        return False
    if instance is None:
        return False
    register(instance.routes)
    _registered = True
    logging.info(f"Tempo: live page at {ROUTE}/")
    return True
