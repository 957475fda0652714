"""Tempo: one-step and real-time video generation for ComfyUI.

ComfyUI imports this package from ``custom_nodes/`` and calls :func:`comfy_entrypoint`.
Nothing here imports ComfyUI at module import time, so the pure core (``samplers``,
``loaders``, ``models``) and the batch client (``client``) stay importable and testable
without a ComfyUI installation.
"""

__version__ = "0.1.0"
# The editor extension (web/tempo_ui.js): Tempo nodes show their text and the MP4 node its video.
WEB_DIRECTORY = "./web"


async def comfy_entrypoint():
    """Return the pack's ComfyExtension (ComfyUI's V3 node registration hook)."""
    from .nodes import TempoExtension

    return TempoExtension()
