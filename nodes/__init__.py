"""ComfyUI V3 adapters of the Tempo pack (the only part that imports ComfyUI)."""

from comfy_api.latest import ComfyExtension, io

from . import causal_video, onestep_image

ALL_NODES: list[type[io.ComfyNode]] = [*onestep_image.NODES, *causal_video.NODES]


class TempoExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return ALL_NODES
