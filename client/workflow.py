"""Workflow files: load either format, convert the editor's UI format to the API format,
and apply overrides addressed by node id, title or type.

The UI format is what the ComfyUI editor saves (``nodes``, ``links``, ``widgets_values``);
the API format is what ``POST /prompt`` takes (``{id: {"class_type", "inputs"}}``). The
conversion needs the server's ``/object_info`` to know which inputs are widgets and in what
order their values are stored, exactly as the editor itself does when it queues a prompt.
"""

from __future__ import annotations

import copy
import json
import os
from typing import Any

from .errors import WorkflowError

MODE_ALWAYS, MODE_NEVER, MODE_BYPASS = 0, 2, 4
MUTED = object()  # a link that ends at a muted node
# Editor-only nodes: they never reach the server.
VIRTUAL_NODES = {"Reroute", "PrimitiveNode", "Note", "MarkdownNote"}
# Values of the extra "control after generate" widget the editor adds after seed inputs.
SEED_CONTROL_VALUES = {"fixed", "increment", "decrement", "randomize"}
WIDGET_TYPES = {"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"}
# A V3 combo whose chosen option brings inputs of its own, named "<combo>.<input>" (ComfyUI 0.2x:
# TextGenerate's sampling_mode, ResizeImageMaskNode's resize_type, most API nodes); the editor stores
# the chosen key, then the option's widgets, where the combo stands.
DYNAMIC_COMBO = "COMFY_DYNAMICCOMBO_V3"
# Options that make the editor add an extra upload widget (serialized after the combo value).
UPLOAD_FLAGS = ("image_upload", "video_upload", "audio_upload", "animated_image_upload", "upload")


def load_workflow(path: str) -> dict:
    """Read a workflow file; raise WorkflowError naming the file if it is not a workflow."""
    if not os.path.isfile(path):
        raise WorkflowError(f"workflow file not found: {path}")
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except UnicodeDecodeError:
        raise WorkflowError(f"{path} is not a text file; a workflow is a .json file saved by ComfyUI") from None
    except json.JSONDecodeError as e:
        raise WorkflowError(f"{path} is not valid JSON (line {e.lineno}, column {e.colno}: {e.msg}); "
                            "save the workflow again from ComfyUI (Workflow > Save or Export (API))") from None
    workflow_format(data, path)
    return data


def workflow_format(data: Any, name: str = "workflow") -> str:
    """Return "ui" or "api"; raise WorkflowError when ``data`` is neither."""
    if isinstance(data, dict) and isinstance(data.get("nodes"), list) and "links" in data:
        return "ui"
    if isinstance(data, dict) and data and all(
            isinstance(v, dict) and "class_type" in v for v in data.values()):
        return "api"
    raise WorkflowError(
        f"{name} is JSON but not a ComfyUI workflow: expected the editor's format (with 'nodes' and "
        "'links') or the API format ({node_id: {'class_type': ..., 'inputs': ...}})")


def input_spec(info: dict, name: str):
    """The /object_info spec of input ``name``; "combo.input" finds an input of a dynamic combo's option."""
    for section in ("required", "optional"):
        spec = (info.get("input") or {}).get(section, {}).get(name)
        if spec is not None:
            return spec
    head, dot, rest = name.partition(".")
    if dot:
        spec = input_spec(info, head)
        if spec is not None and spec_type_and_options(spec)[0] == DYNAMIC_COMBO:
            for option in spec_type_and_options(spec)[1].get("options", []):
                found = input_spec({"input": option.get("inputs") or {}}, rest)
                if found is not None:
                    return found
    return None


def spec_type_and_options(spec) -> tuple[str, dict]:
    """(type, options) of an /object_info input spec; a classic combo (a list of values) is "COMBO"."""
    kind = spec[0]
    options = spec[1] if len(spec) > 1 and isinstance(spec[1], dict) else {}
    if isinstance(kind, list):
        return "COMBO", options
    return kind, options


def combo_values(spec) -> list:
    """The values a combo input accepts: classic combos list them first, V3 combos in 'options'
    (a dynamic combo's options are {key, inputs})."""
    if isinstance(spec[0], list):
        return spec[0]
    options = spec_type_and_options(spec)[1].get("options", [])
    return [o["key"] if isinstance(o, dict) else o for o in options]


def input_names(info: dict) -> dict[str, list[str]]:
    """A node's input names per section ("required", "optional"), in the editor's order."""
    return info.get("input_order") or {s: list((info.get("input") or {}).get(s, {})) for s in ("required", "optional")}


def widget_names(info: dict, chosen: dict | None = None) -> list[tuple[str, int]]:
    """The node's widget inputs in the order the editor stores their values.

    Returns ``(name, extra)`` pairs where ``extra`` is the number of editor-only values that
    follow this widget's value in ``widgets_values`` (seed control, upload button). A dynamic
    combo is followed by the widgets of its option ``chosen[name]`` (default: its default option)."""
    chosen = chosen or {}
    out = []

    def walk(spec_info: dict, prefix: str):
        order = input_names(spec_info)
        for section in ("required", "optional"):
            for name in order.get(section, []):
                spec = input_spec(spec_info, name)
                if spec is None:
                    continue
                kind, options = spec_type_and_options(spec)
                full = prefix + name
                if kind == DYNAMIC_COMBO:
                    out.append((full, 0))
                    keys = combo_values(spec)
                    key = chosen.get(full, options.get("default", keys[0] if keys else None))
                    option = next((o for o in options.get("options", []) if o.get("key") == key), None)
                    if option is not None:
                        walk({"input": option.get("inputs") or {}}, full + ".")
                    continue
                if kind not in WIDGET_TYPES or options.get("forceInput") or options.get("rawLink"):
                    continue
                extra = 0
                if kind == "INT" and (options.get("control_after_generate") or name in ("seed", "noise_seed")):
                    extra = 1
                if kind == "COMBO" and any(options.get(flag) for flag in UPLOAD_FLAGS):
                    extra = 1
                out.append((full, extra))

    walk(info, "")
    return out


def input_default(info: dict, name: str):
    """The value a new widget gets in the editor: the spec's default, else a combo's first option."""
    kind, options = spec_type_and_options(input_spec(info, name))
    if "default" in options:
        return options["default"]
    if kind in ("COMBO", DYNAMIC_COMBO):
        values = combo_values(input_spec(info, name))
        return values[0] if values else None
    return {"INT": 0, "FLOAT": 0.0, "STRING": "", "BOOLEAN": False}.get(kind)


def map_widget_values(node: dict, info: dict) -> dict:
    """Widget values by input name. Widgets the file does not have (a node saved before an
    input was added) get their defaults, as the editor gives them when it loads the file."""
    mapped = _saved_widget_values(node, info)
    for name, _ in widget_names(info, _chosen(info, mapped)):
        if name not in mapped:
            default = input_default(info, name)
            if default is not None:
                mapped[name] = default
    return mapped


def _chosen(info: dict, mapped: dict) -> dict:
    """The options of the node's dynamic combos that ``mapped`` (name -> value) picks."""
    return {n: v for n, v in mapped.items() if spec_type_and_options(input_spec(info, n))[0] == DYNAMIC_COMBO}


def _saved_widget_values(node: dict, info: dict) -> dict:
    values = node.get("widgets_values")
    if isinstance(values, dict):  # some nodes save a name -> value mapping
        return {n: values[n] for n, _ in widget_names(info, _chosen(info, {k: v for k, v in values.items()
                                                                          if input_spec(info, k)}))
                if n in values}
    return {name: values[i] for name, i in widget_slots(node, info).items()}


def widget_slots(node: dict, info: dict) -> dict[str, int]:
    """Where each widget's value sits in a node's saved ``widgets_values`` list (widgets the file
    predates have no slot). A dynamic combo's value decides which widgets follow it, so the walk
    starts again whenever a saved value picks another option than the one assumed."""
    values = node.get("widgets_values")
    if not isinstance(values, list):
        return {}
    chosen: dict = {}
    while True:
        slots = _slots(values, info, widget_names(info, chosen))
        picked = {n: values[i] for n, i in slots.items()
                  if spec_type_and_options(input_spec(info, n))[0] == DYNAMIC_COMBO and values[i] != chosen.get(n)}
        if not picked or all(chosen.get(n) == v for n, v in picked.items()):
            return slots
        chosen.update(picked)


def _slots(values: list, info: dict, names: list) -> dict[str, int]:
    result, i = {}, 0
    for k, (name, extra) in enumerate(names):
        if i >= len(values):
            break
        if _absent_from_file(info, name, values[i], names[k + 1:]):
            continue  # a widget added to the node after the file was saved: it keeps its default
        result[name] = i
        i += 1
        # Skip the editor-only value after it. The seed control widget always holds a slot (the
        # editor restores values by position; old files keep a boolean there); an upload button
        # holds one when the file has it.
        if extra and i < len(values):
            nxt = values[i]
            kind = spec_type_and_options(input_spec(info, name))[0]
            if kind == "INT" and (isinstance(nxt, bool) or nxt in SEED_CONTROL_VALUES or not isinstance(nxt, (int, float))):
                i += 1
            elif kind == "COMBO" and isinstance(nxt, str) and nxt in ("image", "video", "audio", "upload", ""):
                i += 1
    return result


def _accepts(info: dict, name: str, value) -> bool:
    kind, options = spec_type_and_options(input_spec(info, name))
    if kind in ("INT", "FLOAT"):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "BOOLEAN":
        return isinstance(value, bool)
    if kind == "COMBO":
        return value in combo_values(input_spec(info, name))
    return True


def _absent_from_file(info: dict, name: str, value, later: list) -> bool:
    """True when a saved value cannot belong to this numeric widget but fits the next one:
    the file predates this widget (nodes gain inputs between releases)."""
    kind = spec_type_and_options(input_spec(info, name))[0]
    if kind not in ("INT", "FLOAT") or _accepts(info, name, value) or not later:
        return False
    if isinstance(value, str) and value in SEED_CONTROL_VALUES:
        return False
    return _accepts(info, later[0][0], value)


def links_by_id(ui: dict) -> dict:
    links = {}
    for link in ui.get("links") or []:
        if isinstance(link, dict):
            lid = link["id"]
            links[lid] = (link["origin_id"], link["origin_slot"], link["target_id"], link["target_slot"],
                          link.get("type"))
        else:
            lid, o_id, o_slot, t_id, t_slot, ltype = link[:6]
            links[lid] = (o_id, o_slot, t_id, t_slot, ltype)
    return links


def node_label(node: dict) -> str:
    title = node.get("title") or node.get("type")
    return f"#{node.get('id')} '{title}'"


def apply_to_ui(ui: dict, api: dict, job_api: dict, object_info: dict) -> dict:
    """The editor-format workflow with the values a job changed (``job_api`` against ``api``, both
    converted from ``ui``) written into the widgets that hold them, so the workflow a saved image
    or video carries is the one that made it. A value that comes from a primitive node is written
    there. The input is not changed."""
    ui = copy.deepcopy(ui)
    nodes = {str(n["id"]): n for n in ui.get("nodes") or []}
    links = links_by_id(ui)
    for nid, node in job_api.items():
        before = (api.get(nid) or {}).get("inputs") or {}
        target = nodes.get(nid)
        if target is None:
            continue
        for name, value in node["inputs"].items():
            if isinstance(value, list) or (name in before and before[name] == value):
                continue
            link = next((inp.get("link") for inp in target.get("inputs") or []
                         if inp.get("name") == name and inp.get("link") is not None), None)
            origin = nodes.get(str(links[link][0])) if link in links else None
            if origin is not None and origin.get("type") == "PrimitiveNode" and origin.get("widgets_values"):
                origin["widgets_values"][0] = value
                continue
            info = object_info.get(target.get("type"), {})
            values = target.get("widgets_values")
            if isinstance(values, dict):
                values[name] = value
            elif isinstance(values, list) and name in (slots := widget_slots(target, info)):
                values[slots[name]] = value
    return ui


def to_api(ui: dict, object_info: dict, server_name: str = "the server") -> dict:
    """Convert an editor-saved workflow to the API format, as the editor does when queueing.

    Muted nodes are left out; bypassed nodes are left out and each input that read from one
    takes the bypassed node's input of the same type instead; reroutes and primitive nodes are
    resolved into the links and values they stand for; groups are layout only.
    """
    if workflow_format(ui) == "api":
        return copy.deepcopy(ui)
    if (ui.get("definitions") or {}).get("subgraphs"):
        subgraph_ids = {s.get("id") for s in ui["definitions"]["subgraphs"]}
        if any(n.get("type") in subgraph_ids for n in ui["nodes"]):
            raise WorkflowError("this workflow uses subgraphs, which the batch client does not convert yet; "
                                "unpack them in the editor (right-click > Unpack Subgraph) or export "
                                "the workflow in API format (Workflow > Export (API))")
    nodes = {n["id"]: n for n in ui["nodes"]}
    links = links_by_id(ui)
    missing = sorted({n["type"] for n in nodes.values()
                      if n["type"] not in VIRTUAL_NODES and n["type"] not in object_info
                      and n.get("mode", 0) != MODE_NEVER})
    if missing:
        group_like = [t for t in missing if t.startswith("workflow>") or t.startswith("workflow/")]
        if group_like:
            raise WorkflowError(f"this workflow uses group nodes ({', '.join(group_like)}); convert them back "
                                "to nodes in the editor or export the workflow in API format")
        where = ", ".join(f"{t} (node {', '.join(node_label(n) for n in nodes.values() if n['type'] == t)})"
                          for t in missing)
        raise _missing_nodes(server_name, where)

    def input_link(node: dict, slot: int):
        inputs = node.get("inputs") or []
        if slot >= len(inputs):
            return None
        lid = inputs[slot].get("link")
        return links.get(lid) if lid is not None else None

    def resolve(link, wanted_type):
        """Follow a link back through reroutes and bypassed nodes to a real output; MUTED when it
        ends at a muted node, None when a bypassed node has no input to pass through."""
        seen = set()
        while link is not None:
            origin = nodes.get(link[0])
            if origin is None or origin["id"] in seen:
                return None
            seen.add(origin["id"])
            mode = origin.get("mode", 0)
            if origin["type"] == "Reroute":
                link = input_link(origin, 0)
            elif mode == MODE_NEVER:
                return MUTED
            elif mode == MODE_BYPASS:
                candidates = [link[1]] + list(range(len(origin.get("inputs") or [])))
                nxt = None
                for slot in candidates:
                    inp = (origin.get("inputs") or [])[slot] if slot < len(origin.get("inputs") or []) else None
                    if inp is not None and inp.get("type") == wanted_type:
                        nxt = input_link(origin, slot)
                        break
                link = nxt
            else:
                return link
        return None

    api = {}
    for nid, node in nodes.items():
        if node["type"] in VIRTUAL_NODES or node.get("mode", 0) in (MODE_NEVER, MODE_BYPASS):
            continue
        info = object_info[node["type"]]
        inputs = map_widget_values(node, info)
        for slot, inp in enumerate(node.get("inputs") or []):
            lid = inp.get("link")
            if lid is None or lid not in links:
                continue
            origin = nodes.get(links[lid][0])
            if origin is not None and origin["type"] == "PrimitiveNode":
                if origin.get("widgets_values"):
                    inputs[inp["name"]] = origin["widgets_values"][0]
                continue
            real = resolve(links[lid], inp.get("type"))
            if real is MUTED:  # the editor drops the input, widget value included
                inputs.pop(inp["name"], None)
                continue
            if real is None:  # nothing passes through a bypassed node: a widget keeps its value
                continue
            target = nodes[real[0]]
            if target["type"] == "PrimitiveNode":
                if target.get("widgets_values"):
                    inputs[inp["name"]] = target["widgets_values"][0]
                continue
            inputs[inp["name"]] = [str(real[0]), int(real[1])]
        api[str(nid)] = {"class_type": node["type"], "inputs": inputs,
                         "_meta": {"title": node.get("title") or info.get("display_name") or node["type"]}}
    return api


def _missing_nodes(server_name: str, where: str) -> WorkflowError:
    return WorkflowError(f"node types not installed on {server_name}: {where}. Install the custom node packs that "
                         "provide them (ComfyUI-Manager: 'Install Missing Custom Nodes') and restart the server")


def workflow_api(wf: dict, path: str, object_info: dict, server_name: str = "the server") -> dict:
    """A workflow (as the editor saves it, or in API format) as an API prompt for a server with this
    node list: UI files are converted, API files checked against it."""
    if workflow_format(wf, path) == "ui":
        return to_api(wf, object_info, server_name)
    check_api_types(wf, object_info, server_name)
    return wf


def check_api_types(api: dict, object_info: dict, server_name: str = "the server") -> None:
    """Raise WorkflowError when an API-format prompt names node types the server lacks."""
    missing = sorted({(v["class_type"], k) for k, v in api.items() if v["class_type"] not in object_info})
    if missing:
        raise _missing_nodes(server_name, ", ".join(f"{t} (node #{k})" for t, k in missing))


def parse_value(text: str):
    """An override value: JSON when it parses (numbers, booleans, lists), else the raw string."""
    try:
        return json.loads(text)
    except (json.JSONDecodeError, ValueError):
        return text


def parse_assignment(text: str) -> tuple[str, str, Any]:
    """``"KSampler.seed=5"`` -> ("KSampler", "seed", 5). The node part may contain dots."""
    if "=" not in text:
        raise WorkflowError(f"override '{text}' has no '='; write NODE.INPUT=VALUE, e.g. KSampler.seed=5")
    target, value = text.split("=", 1)
    node, input_name = split_target(target)
    return node, input_name, parse_value(value)


def split_target(target: str) -> tuple[str, str]:
    target = target.strip()
    if "." not in target:
        raise WorkflowError(f"'{target}' does not name an input; write NODE.INPUT where NODE is a node id, "
                            "title or type, e.g. KSampler.seed or 3.seed")
    node, input_name = target.rsplit(".", 1)
    return node, input_name


def find_nodes(api: dict, ref: str) -> list[str]:
    """Node ids matching ``ref``: an id, else an exact title, else a node type."""
    if ref in api:
        return [ref]
    by_title = [k for k, v in api.items() if (v.get("_meta") or {}).get("title") == ref]
    if by_title:
        return by_title
    return [k for k, v in api.items() if v["class_type"] == ref]


def apply_overrides(api: dict, overrides: dict[str, Any], object_info: dict | None = None) -> dict:
    """Return a copy of ``api`` with ``{"NODE.INPUT": value}`` applied.

    NODE is a node id, a title or a node type; a title or type that matches several nodes is
    an error, unless the override is meant for all of them (``*NODE.INPUT``).
    """
    api = copy.deepcopy(api)
    for target, value in overrides.items():
        all_matches = target.startswith("*")
        ref, input_name = split_target(target.lstrip("*"))
        ids = find_nodes(api, ref)
        if not ids:
            titles = sorted({(v.get("_meta") or {}).get("title", "") for v in api.values()} - {""})
            raise WorkflowError(f"no node with id, title or type '{ref}' in the workflow; titles are: "
                                + ", ".join(repr(t) for t in titles))
        if len(ids) > 1 and not all_matches:
            raise WorkflowError(f"'{ref}' matches nodes {', '.join('#' + i for i in ids)}; use a node id "
                                f"(e.g. {ids[0]}.{input_name}) or '*{ref}.{input_name}' to set all of them")
        for nid in ids:
            node = api[nid]
            if object_info is not None and node["class_type"] in object_info:
                info = object_info[node["class_type"]]
                if input_spec(info, input_name) is None:
                    names = [n for s in ("required", "optional") for n in input_names(info).get(s, [])]
                    raise WorkflowError(f"node #{nid} ({node['class_type']}) has no input '{input_name}'; "
                                        f"its inputs are: {', '.join(names)}")
            node["inputs"][input_name] = value
    return api


def find_seed_inputs(api: dict) -> list[str]:
    """Targets ``id.seed`` / ``id.noise_seed`` of every node that takes a literal seed."""
    return [f"{k}.{name}" for k, v in sorted(api.items(), key=lambda kv: kv[0])
            for name in ("seed", "noise_seed") if name in v["inputs"] and not isinstance(v["inputs"][name], list)]


def find_positive_prompt(api: dict) -> list[str]:
    """Targets ``id.text`` of the text encoders that feed a sampler's positive conditioning."""
    found = []

    def walk(link, depth=0):
        if not isinstance(link, list) or depth > 16:
            return
        node = api.get(link[0])
        if node is None:
            return
        text = node["inputs"].get("text")
        if isinstance(text, str):
            found.append(f"{link[0]}.text")
            return
        for key in ("conditioning", "positive", "conditioning_1", "conditioning_to"):
            walk(node["inputs"].get(key), depth + 1)

    for v in api.values():
        walk(v["inputs"].get("positive"))
    return sorted(set(found), key=found.index)
