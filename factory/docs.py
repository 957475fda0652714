"""The tables in the docs that come from the code, written by ``python tempo.py docs`` (never pasted; a
test checks the committed files are what this writes):

* docs/presets.md: every published setting, causal and one-step, with where each number comes from;
* README.md, between its ``<!-- generated:NAME -->`` / ``<!-- end:NAME -->`` marks: the nodes (from
  their schemas) and the model files the shipped workflows name (factory/released.py).
"""

from __future__ import annotations

import os
import re

from ..client.local import PACK_ROOT
from ..samplers import causal, onestep as os1
from . import released

PRESETS_MD = os.path.join(PACK_ROOT, "docs", "presets.md")
README = os.path.join(PACK_ROOT, "README.md")
MARK = re.compile(r"(<!-- generated:(\w+) [^>]*-->\n)(.*?)(<!-- end:\2 -->)", re.S)


def causal_table() -> list[str]:
    lines = ["| preset | denoising list (as written) | shift | frames per block | local_attn_size / sink_size | "
             "first block | refill timestep |", "|---|---|---|---|---|---|---|"]
    for p in causal.CAUSAL_PRESETS.values():
        warped = ""
        if p.shift != 1.0:
            warped = " (warped: " + ", ".join(f"{1000 * s:g}" for s in causal.schedule_sigmas(p.timesteps, p.shift)) + ")"
        lines.append(f"| {p.name} | {', '.join(str(t) for t in p.timesteps)}{warped} | "
                     f"{p.shift:g} | {p.frames_per_block} | {p.local_attn_size} / {p.sink_size} | "
                     f"{', '.join(str(t) for t in p.first_timesteps)} | {p.context_noise:g} |")
    return lines


def onestep_rows() -> list[dict]:
    """The published settings, one row per preset, base and step count."""
    rows = []
    for p in os1._ROWS:
        if not p.source or p.name in os1.WAN_PRESET_NAMES:  # set by their loaders (APT, SVD); Wan: its own table
            continue
        counts = p.published_steps() or ([1, 2, 4, 8] if p.steps_rule == "lcm" else [1, 2, 4])
        for n in counts:
            rows.append(dict(preset=p.name, bases="/".join(p.bases), steps=n,
                             timesteps=[int(t) for t in os1.full_strength_timesteps(p, n)], update=p.renoise,
                             eta=p.eta if p.renoise == "tcd" else None, start=p.start,
                             last="t = 0" if p.final == "t0" or p.renoise == "tcd" else "sigma 0"))
    return rows


def onestep_table() -> list[str]:
    lines = ["| preset | base | steps | timesteps | update | text-to-image start | last step |",
             "|---|---|---|---|---|---|---|"]
    for r in onestep_rows():
        update = r["update"] + (f" (eta {r['eta']:g})" if r["eta"] is not None else "")
        lines.append(f"| {r['preset']} | {r['bases']} | {r['steps']} | {', '.join(map(str, r['timesteps']))} | "
                     f"{update} | {r['start']} | {r['last']} |")
    return lines


def wan_table() -> list[str]:
    """The few-step Wan presets: the sigmas each step is sampled at (after the shift), the update between
    steps and the expert switch."""
    lines = ["| preset | steps | sigmas | update | two experts (high-noise expert runs) |", "|---|---|---|---|---|"]
    for name in os1.WAN_PRESET_NAMES:
        p = os1.PRESETS[name]
        switch = os1.expert_rule_text(p)
        for n, ts in p.published:
            lines.append(f"| {name} | {n} | {', '.join(f'{os1.flow_sigma(t, p.shift):.4f}' for t in ts)} | "
                         f"{p.renoise} | {switch} |")
    return lines


def image_sources() -> list[str]:
    return [f"- {p.name} ({'/'.join(p.bases)}): {p.source}" for p in os1._ROWS
            if p.source and p.name not in os1.WAN_PRESET_NAMES]


def wan_sources() -> list[str]:
    return [f"- {p.name}: {p.source}" for p in os1._ROWS if p.name in os1.WAN_PRESET_NAMES]


def presets_md() -> str:
    parts = [
        "# Published settings",
        "",
        "Written by `python tempo.py docs` from the code (`samplers/causal.py`, `samplers/onestep.py`); a test "
        "keeps this file equal to it. Each number is cited by repository, commit, file and line where it is set.",
        "",
        "## Causal video (Tempo Causal Video Sampler's `schedule`)",
        "",
        *causal_table(),
        "",
        *(f"- {p.name}: {p.source}" for p in causal.CAUSAL_PRESETS.values()),
        "",
        "## One-step and few-step images (Tempo One-Step Preset and the image loader)",
        "",
        "The step count selects the timesteps the authors published; several steps move on by the update of the "
        "scheduler the card names. Families published for fixed counts refuse other counts.",
        "",
        *onestep_table(),
        "",
        *image_sources(),
        "",
        "## Few-step Wan video (Tempo One-Step Preset on a Wan MODEL)",
        "",
        *wan_table(),
        "",
        *wan_sources(),
        "",
    ]
    return "\n".join(parts)


def models_table() -> list[str]:
    lines = ["| file | folder | what it is |", "|---|---|---|"]
    for f in released.FILES.values():
        lines.append(f"| [`{f.name}`]({f.url}) | `models/{f.folder}/` | {f.what} |")
    return lines


def nodes_table() -> list[str]:
    """Every node: its id, its name in the editor, what it does (its schema's own description); needs ComfyUI."""
    from ..nodes import ALL_NODES

    lines = ["| node | id | what it does |", "|---|---|---|"]
    for node in ALL_NODES:
        schema = node.define_schema()
        lines.append(f"| {schema.display_name} | `{schema.node_id}` | {schema.description} |")
    return lines


def region(text: str, name: str) -> list[str] | None:
    """The lines of the README's generated region ``name`` (None where it has none)."""
    m = next((m for m in MARK.finditer(text) if m.group(2) == name), None)
    return None if m is None else m.group(3).rstrip("\n").split("\n")


def readme(text: str, tables: dict) -> str:
    """``text`` with each generated region replaced by its table (``tables``: name -> lines)."""
    def fill(m):
        name = m.group(2)
        return m.group(1) + ("\n".join(tables[name]) + "\n" if name in tables else m.group(3)) + m.group(4)
    return MARK.sub(fill, text)


def write(with_nodes: bool = True) -> list[str]:
    """Write docs/presets.md and the README's generated regions; returns the files written."""
    os.makedirs(os.path.dirname(PRESETS_MD), exist_ok=True)
    with open(PRESETS_MD, "w") as f:
        f.write(presets_md())
    tables = {"models": models_table(), **({"nodes": nodes_table()} if with_nodes else {})}
    with open(README) as f:
        text = f.read()
    with open(README, "w") as f:
        f.write(readme(text, tables))
    return [PRESETS_MD, README]


def add_command(sub):
    """``docs`` (for developers) on tempo.py's command line."""
    docs = sub.add_parser("docs", help="(developers) rewrite docs/presets.md and the README's tables from the code")
    docs.add_argument("--comfyui", default=None, help="ComfyUI folder, for the node table (default: $COMFYUI_PATH)")
    docs.set_defaults(func=_docs_command)


def _docs_command(args) -> int:
    from .checkpoints import import_comfy

    import_comfy(args.comfyui)
    for path in write():
        print(f"wrote {os.path.relpath(path, PACK_ROOT)}")
    return 0
