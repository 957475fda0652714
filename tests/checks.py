"""Test scaffolding: checks of editor-format workflows against a server, of what converting a
generated workflow must give, and of the mp4 files the pack writes."""

from __future__ import annotations

from tempo_pack.client.workflow import (VIRTUAL_NODES, combo_values, input_default, input_spec, links_by_id,
                                        map_widget_values, node_label, spec_type_and_options, widget_names)


# The shipped workflows at sizes two CPU cores run in seconds (overrides by node title or type, '*' for
# every node of a type) and what each then makes: images (count, side) or mp4s (frames each).
SMALL_LATENT = {"EmptyLatentImage.width": 64, "EmptyLatentImage.height": 64}
SMALL_IMAGE = {"ImageScale.width": 64, "ImageScale.height": 64}
# Shipped workflows run at 512x512; the tests shrink them (and the expected outputs: count, size).
SMALL = {"01 One-step text to image.json": (SMALL_LATENT, 1, 64), "02 One-step image to image.json": (SMALL_IMAGE, 1, 64),
         "03 One-step ControlNet from edges.json": (SMALL_LATENT, 1, 64),
         "04 One-step batch of four.json": (SMALL_LATENT, 4, 64)}
# Video workflows: 64x48 frames, fewer of them; expected mp4 frame counts per output file.
CAUSAL_SIZE = {"*TempoCausalVideoSampler.width": 64, "*TempoCausalVideoSampler.height": 48}
VIDEO_SIZE = {"EmptyHunyuanLatentVideo.width": 64, "EmptyHunyuanLatentVideo.height": 48}
SVD_SMALL = {"SVD_img2vid_Conditioning.width": 64,
             "SVD_img2vid_Conditioning.height": 64, "SVD_img2vid_Conditioning.video_frames": 4}
CAUSAL = {
    "05 Causal text to video, streamed to mp4.json": ({"TempoCausalVideoSampler.length": 21}, [21]),
    "06 Causal 40-second video, rolling cache.json": ({"TempoCausalVideoSampler.length": 57, "TempoCausalVideoSampler.cache": "window",
                                  "TempoCausalVideoSampler.sink_size": 1,
                                  "TempoCausalVideoSampler.local_attn_size": 7}, [57]),
    "07 Causal image to video.json": ({"TempoCausalVideoSampler.length": 13, "ImageScale.width": 64, "ImageScale.height": 48}, [13]),
    "08 Causal clip and its continuation.json": ({"Clip 1.length": 21, "Clip 2.length": 12}, [21, 12]),
    "09 Causal video that follows a prompt timeline.json": ({"TempoCausalVideoSampler.length": 45, "Prompts over time.text":
                                     "0: a fox in snow\n1: the fox looks up\n2: the fox runs off"}, [45]),
    "10 Causal video to video restyle.json": ({"ImageScale.width": 64, "ImageScale.height": 48}, [33]),
    # the speed options as shipped (compiled layers: the first run compiles ComfyUI's Wan layers, on the CPU here)
    "19 Causal real-time stream, fast settings.json": ({"TempoCausalVideoSampler.length": 21,
                                                        "TempoCausalSpeed.overlap_decode": "on"}, [21]),
    "11 One-step text to video (rCM, Wan 2.1).json": ({**VIDEO_SIZE, "EmptyHunyuanLatentVideo.length": 9}, [9]),
    "16 Wan 2.2 Lightning text to video, two experts.json": ({**VIDEO_SIZE, "EmptyHunyuanLatentVideo.length": 9}, [9]),
    "17 lightx2v image to video, LoRA on a core loader.json": ({"WanImageToVideo.width": 64, "WanImageToVideo.height": 48,
                                                               "WanImageToVideo.length": 9}, [9]),
    "18 rCM text to video in 4 steps.json": ({**VIDEO_SIZE, "EmptyHunyuanLatentVideo.length": 9}, [9]),
    "12 SVD image to video in one step.json": (SVD_SMALL, [4]),
    "13 SVD image to video in four steps.json": (SVD_SMALL, [4]),
    "14 One-step image animated by SVD.json": ({**SVD_SMALL, **SMALL_LATENT}, [4]),
    "15 ControlNet start frame animated by SVD.json": ({**SVD_SMALL, **SMALL_LATENT}, [4]),
}

def check_ui_workflow(ui: dict, object_info: dict) -> list[str]:
    """Problems an editor-format workflow has against a server: unknown node types, widget
    values the inputs do not accept, links between mismatched types. Empty when it is sound."""
    problems = []
    nodes = {n["id"]: n for n in ui["nodes"]}
    for node in ui["nodes"]:
        if node["type"] in VIRTUAL_NODES:
            continue
        info = object_info.get(node["type"])
        if info is None:
            problems.append(f"{node_label(node)}: node type {node['type']} is not installed")
            continue
        for name, value in map_widget_values(node, info).items():
            kind, options = spec_type_and_options(input_spec(info, name))
            linked = any(i.get("name") == name and i.get("link") is not None for i in node.get("inputs") or [])
            if linked:
                continue
            if kind == "COMBO":
                allowed = combo_values(input_spec(info, name))
                if value not in allowed:
                    problems.append(f"{node_label(node)}: {name} = {value!r} is not one of {allowed[:10]}")
            elif kind in ("INT", "FLOAT"):
                if not isinstance(value, (int, float)) or isinstance(value, bool):
                    problems.append(f"{node_label(node)}: {name} = {value!r} is not a number")
                elif ("min" in options and value < options["min"]) or ("max" in options and value > options["max"]):
                    problems.append(f"{node_label(node)}: {name} = {value} is outside "
                                    f"[{options.get('min')}, {options.get('max')}]")
            elif kind == "BOOLEAN" and not isinstance(value, bool):
                problems.append(f"{node_label(node)}: {name} = {value!r} is not true/false")
            elif kind == "STRING" and not isinstance(value, str):
                problems.append(f"{node_label(node)}: {name} = {value!r} is not text")
        for inp in node.get("inputs") or []:
            if input_spec(info, inp["name"]) is None:
                problems.append(f"{node_label(node)}: has an input '{inp['name']}' the server's {node['type']} lacks")
    for lid, (o_id, o_slot, t_id, t_slot, ltype) in links_by_id(ui).items():
        src, dst = nodes.get(o_id), nodes.get(t_id)
        if src is None or dst is None:
            problems.append(f"link {lid} joins a missing node")
            continue
        if src["type"] in VIRTUAL_NODES or dst["type"] in VIRTUAL_NODES:
            continue
        outputs = object_info.get(src["type"], {}).get("output", [])
        out_type = outputs[o_slot] if o_slot < len(outputs) else None
        out_type = "COMBO" if isinstance(out_type, list) else out_type
        inputs = dst.get("inputs") or []
        in_name = inputs[t_slot]["name"] if t_slot < len(inputs) else None
        spec = input_spec(object_info.get(dst["type"], {}), in_name) if in_name else None
        in_type = spec_type_and_options(spec)[0] if spec else None
        if out_type is None or in_type is None:
            problems.append(f"link {lid}: {node_label(src)} slot {o_slot} -> {node_label(dst)} slot {t_slot} "
                            "names a slot that does not exist")
        elif "*" not in (in_type, out_type) and not set(str(in_type).split(",")) & set(str(out_type).split(",")):
            problems.append(f"link {lid}: {node_label(src)} gives {out_type} but {node_label(dst)} "
                            f"input '{in_name}' takes {in_type}")
    return problems


def expected_api(nodes: list, object_info: dict) -> dict:
    """What converting the built workflow must give: the spec's values and links, defaults elsewhere."""
    api = {}
    for n in nodes:
        if n.mode != 0:
            continue
        info = object_info[n.type]
        inputs = {w: input_default(info, w) for w, _ in widget_names(info)}
        inputs.update({k: ([str(v[0]), v[1]] if isinstance(v, tuple) else v) for k, v in n.inputs.items()})
        api[str(n.id)] = {"class_type": n.type, "inputs": inputs}
    return api


def read_mp4_info(path: str) -> dict:
    """{"frames", "width", "height", "fps", "codec"} of an mp4 (counts frames by decoding)."""
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(path)
    meta = reader.__next__()
    n = sum(1 for _ in reader)
    w, h = meta["size"]
    return {"frames": n, "width": w, "height": h, "fps": meta.get("fps"), "codec": meta.get("codec")}


def mp4_frames(path: str) -> list[bytes]:
    """The decoded frames of an mp4 (raw RGB bytes), to compare videos whatever their metadata."""
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(path)
    reader.__next__()
    return [bytes(f) for f in reader]


def mp4_boxes(path: str) -> list[str]:
    """The top-level box types of an mp4, in file order (a browser can stream it when moov precedes mdat)."""
    import struct

    boxes = []
    with open(path, "rb") as f:
        while True:
            head = f.read(8)
            if len(head) < 8:
                return boxes
            size, kind = struct.unpack(">I4s", head)
            if size == 1:
                size = struct.unpack(">Q", f.read(8))[0] - 8
            boxes.append(kind.decode("latin-1"))
            f.seek(size - 8, 1)
