"""A batch spread over three real ComfyUI servers on loopback ports, one of them killed in the middle
of the batch: every job is done exactly once, every output is on disk, the manifest says who did what."""

import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tempo_pack.client.local import PACK_ROOT, LocalComfyUI, free_port

pytestmark = pytest.mark.server
TEMPO = os.path.join(PACK_ROOT, "tempo.py")
TXT2IMG = os.path.join(PACK_ROOT, "workflows", "01 One-step text to image.json")


@pytest.fixture
def fleet(models_dir):
    """Three fresh servers (this test kills one, and counts what each ran)."""
    from tempo_pack.demo import run as demo_run

    servers = [LocalComfyUI(models=[str(models_dir), demo_run.DEMO_MODELS]) for _ in range(3)]
    try:
        with ThreadPoolExecutor(3) as pool:
            list(pool.map(lambda s: s.start(), servers))
        yield servers
    finally:
        for s in servers:
            s.stop()
            s.cleanup()


def test_three_servers_one_killed_mid_batch_every_job_done_once(fleet, tmp_path):
    from tempo_pack.demo import run as demo_run

    a, b, c = fleet
    out, n = tmp_path / "out", 6
    servers_file = tmp_path / "servers.txt"
    down = f"http://127.0.0.1:{free_port()}"  # a GPU box that is off: left out at the start, with a line
    servers_file.write_text(f"# the studio's GPUs\n{b.url}\n{c.url}  # the one that dies\n{down}\n")
    proc = subprocess.Popen([sys.executable, TEMPO, "run", TXT2IMG, "--server", a.url, "--servers", str(servers_file),
                             "--upload", demo_run.EXAMPLE_IMAGE, "--seeds", f"1-{n}",
                             "--set", "EmptyLatentImage.width=256", "--set", "EmptyLatentImage.height=256",
                             "-o", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and not requests.get(c.url + "/queue", timeout=10).json()["queue_running"]:
            time.sleep(0.05)
        c.proc.kill()  # mid-batch: it holds a running job and a waiting one
        stdout, stderr = proc.communicate(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr
    for s in fleet:  # the upload reached every server
        assert os.path.isfile(os.path.join(s.base, "input", os.path.basename(demo_run.EXAMPLE_IMAGE)))
    lines = [json.loads(l) for l in (out / "manifest.jsonl").read_text().splitlines()]
    assert sorted(l["job"] for l in lines) == list(range(n)), "one line per job"
    assert sorted(l["overrides"]["7.noise_seed"] for l in lines) == list(range(1, n + 1))
    for l in lines:
        assert l["status"] == "success" and l["files"] and os.path.getsize(out / l["files"][0]) > 0, l
    moved = [l for l in lines if l["tries"]]
    assert moved, "the killed server held jobs; they must have moved"
    assert all(t["server"] == c.url and t["status"] == "lost" for l in moved for t in l["tries"])
    assert all(l["server"] in (a.url, b.url) for l in moved)
    assert f"{c.url} stopped answering" in stderr
    assert f"left out: cannot reach ComfyUI at {down}" in stderr
    for s in (a, b):  # exactly once: each survivor ran the jobs the manifest gives it, and no other
        history = requests.get(s.url + "/history", params={"max_items": 1000}, timeout=30).json()
        assert set(history) == {l["prompt_id"] for l in lines if l["server"] == s.url}
        assert any(l["server"] == s.url for l in lines), f"{s.url} took no job"
    for s in (a, b):  # each server's progress was shown
        assert s.url.split("://")[1] in stderr
