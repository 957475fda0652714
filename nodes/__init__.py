"""ComfyUI V3 adapters of the Tempo pack (the only part that imports ComfyUI)."""

from .compat import ComfyExtension, io

from . import (causal_speed, causal_video, conditioning, onestep, onestep_image, onestep_preset, onestep_video,
               prompt_timeline, svd)

ALL_NODES: list[type[io.ComfyNode]] = [*onestep_image.NODES, *onestep_preset.NODES, *onestep.NODES, *onestep_video.NODES, *svd.NODES, *causal_video.NODES, *conditioning.NODES, *causal_speed.NODES,
                                        *prompt_timeline.NODES]


class TempoExtension(ComfyExtension):
    async def get_node_list(self) -> list[type[io.ComfyNode]]:
        from .live_routes import register_on_server

        register_on_server()  # the live page's routes (once; ComfyUI asks for the node list once, at load)
        return ALL_NODES
