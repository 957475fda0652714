"""Decode that keeps up: the work on a finished block (decode, write, publish) runs on one worker
thread, in order, while the caller's thread makes the next block. Plain torch.

On a GPU the worker issues its kernels on its own CUDA stream, so the decode of block k and the
network passes of block k + 1 are in flight together. What is handed over is made on the caller's
stream: ``submit`` records an event there and the worker's stream waits for it before its first
kernel (the tensors may still be being written when ``submit`` returns), and each CUDA tensor handed
over is marked as used by the worker's stream (``record_stream``), so the caching allocator does not
give its memory to the caller's next block while the worker still reads it. Memory stays bounded: at most ``depth``
blocks wait for the worker (``submit`` blocks when the queue is full), besides the one it works on.
An error on the worker is raised in the caller's thread at its next ``submit`` or at ``close``;
``close`` finishes the blocks already handed over, so nothing made is lost when the caller stops.
"""

from __future__ import annotations

import contextvars
import queue
import threading
from typing import Callable

import torch

_STOP = object()


class BlockWorker:
    def __init__(self, work: Callable, depth: int = 1, device=None):
        self.work, self.error = work, None
        self.device = torch.device(device) if device is not None else None
        self.queue: queue.Queue = queue.Queue(maxsize=max(1, depth))
        self.done = 0
        # autograd modes are per thread: the worker runs in the caller's (ComfyUI runs nodes in inference mode)
        self.modes = (torch.is_grad_enabled(), torch.is_inference_mode_enabled())
        # and so are context variables (ComfyUI 0.8 keeps the executing node there, for progress messages)
        context = contextvars.copy_context()
        self.thread = threading.Thread(target=context.run, args=(self._loop,), name="tempo-block-worker", daemon=True)
        self.thread.start()

    def _loop(self):
        with torch.inference_mode(self.modes[1]), torch.set_grad_enabled(self.modes[0]):
            self._serve()

    def _serve(self):
        stream = None
        if self.device is not None and self.device.type == "cuda":
            stream = torch.cuda.Stream(self.device)
        while True:
            got = self.queue.get()
            if got is _STOP:
                return
            ready, item = got
            if self.error is not None:
                continue  # drain: the caller sees the error, nothing else runs
            try:
                if stream is None:
                    self.work(*item)
                else:
                    with torch.cuda.stream(stream):
                        if ready is not None:
                            stream.wait_event(ready)  # the producer's kernels for this item are done first
                        for t in _cuda_tensors(item):
                            t.record_stream(stream)
                        self.work(*item)
                    stream.synchronize()
                self.done += 1
            except BaseException as e:  # noqa: BLE001 - handed to the caller's thread
                self.error = e

    def _raise(self):
        if self.error is not None:
            raise self.error

    def submit(self, *item):
        """Hand a finished block over (waits while ``depth`` blocks are already waiting). Its tensors
        may still be in the making on the caller's CUDA stream: the worker waits for them there."""
        self._raise()
        ready = None
        if self.device is not None and self.device.type == "cuda":
            ready = torch.cuda.Event()
            ready.record(torch.cuda.current_stream(self.device))
        self.queue.put((ready, item))

    def close(self):
        """Finish what was handed over, stop the thread, raise the worker's error if there was one."""
        self.queue.put(_STOP)
        self.thread.join()
        self._raise()


def _cuda_tensors(item) -> list:
    """The CUDA tensors in a handed-over item (its arguments, and lists, tuples and dicts in them)."""
    out, todo = [], list(item)
    while todo:
        x = todo.pop()
        if isinstance(x, torch.Tensor):
            if x.is_cuda:
                out.append(x)
        elif isinstance(x, (list, tuple)):
            todo.extend(x)
        elif isinstance(x, dict):
            todo.extend(x.values())
    return out


def run_in_order(work: Callable, items, overlap: bool, depth: int = 1, device=None) -> int:
    """Call ``work(*item)`` for every item of ``items`` (an iterator that may compute each item):
    on a worker thread overlapped with computing the next item, or inline. Returns how many ran."""
    if not overlap:
        n = 0
        for item in items:
            work(*item)
            n += 1
        return n
    worker = BlockWorker(work, depth, device)
    try:
        for item in items:
            worker.submit(*item)
    finally:
        worker.close()
    return worker.done
