"""The tables that come from the code are written by `python tempo.py docs`, never pasted: the committed
docs/presets.md and the README's generated regions are what the code writes now."""

import pytest

from tempo_pack.factory import docs, released
from tempo_pack.samplers import causal

FIX = "run 'python tempo.py docs' and commit what it writes"


def test_the_published_settings_page_is_current():
    with open(docs.PRESETS_MD) as f:
        assert f.read() == docs.presets_md(), FIX
    page = docs.presets_md()
    for p in causal.CAUSAL_PRESETS.values():  # every causal preset, every field an artist picks it by
        assert f"| {p.name} | {', '.join(str(t) for t in p.timesteps)}" in page
        assert f" {p.local_attn_size} / {p.sink_size} |" in page


def test_the_readmes_model_table_is_the_released_files():
    with open(docs.README) as f:
        table = docs.region(f.read(), "models")
    assert table == docs.models_table(), FIX
    assert len(table) == 2 + len(released.FILES)


@pytest.mark.comfy
def test_the_readmes_node_table_is_the_nodes_schemas(comfy):
    with open(docs.README) as f:
        assert docs.region(f.read(), "nodes") == docs.nodes_table(), FIX


def test_the_readme_is_an_artists_page():
    """At most ~25 KB: what it is, install, nodes, workflows, models, the live page, security; the rest in docs/."""
    import os

    assert os.path.getsize(docs.README) <= 26_000
