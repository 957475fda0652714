"""ComfyUI V3 adapters of the Tempo pack (the only part that imports ComfyUI)."""

from .compat import ComfyExtension, io

from . import causal_video, onestep, onestep_image, onestep_video, prompt_timeline, svd

ALL_NODES: list[type[io.ComfyNode]] = [*onestep_image.NODES, *onestep.NODES, *onestep_video.NODES, *svd.NODES, *causal_video.NODES,
                                        *prompt_timeline.NODES]


class TempoExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        return ALL_NODES
