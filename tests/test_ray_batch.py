"""Batches on Ray (client/ray_pool.py): a local Ray with two workers, each starting a CPU ComfyUI on
loopback with the demo models; the same batch logic as the listed-server client. Workers are killed
mid-batch (their ComfyUI, then the worker process), a driver is killed and its batch resumed, and a
second Ray node joins through a cluster address, all on this machine's loopback."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from tempo_pack.client import runner, workflow
from tempo_pack.client.batch import build_jobs
from tempo_pack.client.local import PACK_ROOT

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install ray; requirements-dev.txt lists it)")
pytestmark = [pytest.mark.server,
              pytest.mark.skipif(bool(os.environ.get("TEMPO_SKIP_RAY")), reason=os.environ.get("TEMPO_SKIP_RAY", ""))]

TXT2IMG = os.path.join(PACK_ROOT, "workflows", "01 One-step text to image.json")
SIZE = {"4.width": 128, "4.height": 128}  # a second or two a job on the CPU: long enough to kill one mid-job
ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}


@pytest.fixture(scope="module")
def ray_env():
    old = {k: os.environ.get(k) for k in ENV}
    os.environ.update(ENV)
    yield
    for k, v in old.items():
        os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)


@pytest.fixture(scope="module")
def pool(ray_env, models_dir):
    from conftest import COMFYUI
    from tempo_pack.client.ray_pool import RayPool

    with RayPool(None, workers=2, comfyui=COMFYUI, models=[str(models_dir)], log=lambda m: None) as p:
        yield p


def batch(object_info, seeds):
    ui = workflow.load_workflow(TXT2IMG)
    api = workflow.workflow_api(ui, TXT2IMG, object_info)
    return ui, api, build_jobs(api, sets=SIZE, seeds=seeds)


def pixels(out_dir, rec):
    from PIL import Image

    (png,) = [f for f in rec["files"] if f.endswith(".png")]
    return np.asarray(Image.open(os.path.join(out_dir, png)).convert("RGB"))


def manifest(out_dir):
    return [json.loads(line) for line in open(os.path.join(out_dir, runner.MANIFEST))]


def test_two_ray_workers_make_what_one_server_makes(pool, client, tmp_path):
    """A sweep of seeds on two Ray workers gives the images one server gives (pixels equal), each job
    once in a complete manifest, the jobs spread over both workers."""
    ui, api, jobs = batch(client.object_info(), list(range(1, 7)))
    one = runner.run_batch(client, api, jobs, str(tmp_path / "one"), progress=False, ui=ui)
    two = runner.run_batch(pool, api, jobs, str(tmp_path / "ray"), progress=False, ui=ui)
    assert [r.status for r in two] == ["success"] * 6
    lines = manifest(tmp_path / "ray")
    assert sorted(rec["job"] for rec in lines) == list(range(6)) and all(not rec["tries"] for rec in lines)
    for a, b in zip(one, two):
        assert np.array_equal(pixels(tmp_path / "one", a.record()), pixels(tmp_path / "ray", b.record())), a.index
    assert len({r.server for r in two}) == 2, [r.server for r in two]


def _kill_mid_batch(pool, tmp_path, which: str):
    """Run 8 jobs; as soon as worker 0 holds a job, kill its ComfyUI or its process. Returns the results
    and the state worker 0 had."""
    ui, api, jobs = batch(pool.object_info(), list(range(11, 19)))
    out = {}
    runner_thread = threading.Thread(target=lambda: out.update(results=runner.run_batch(
        pool, api, jobs, str(tmp_path), progress=False, ui=ui)))
    runner_thread.start()
    victim = pool.actors[0]
    deadline = time.time() + 300
    while time.time() < deadline:
        state = ray.get(victim.state.remote())
        if state["held"]:
            break
        time.sleep(0.05)
    else:
        raise AssertionError("worker 0 never held a job")
    os.kill(state["comfyui_pid"] if which == "comfyui" else state["worker_pid"], signal.SIGKILL)
    runner_thread.join(600)
    assert not runner_thread.is_alive()
    return out["results"], state


@pytest.mark.parametrize("which", ["comfyui", "worker"])
def test_a_worker_killed_mid_batch_has_its_jobs_run_again_once(pool, tmp_path, which):
    """Kill a worker's ComfyUI (the worker ends itself) or the worker process: Ray starts a new worker
    with a new ComfyUI and runs the jobs it held again; every job ends once, in success, and the
    manifest says which moved and from where."""
    results, state = _kill_mid_batch(pool, tmp_path, which)
    assert [r.status for r in results] == ["success"] * 8
    lines = manifest(tmp_path)
    assert sorted(rec["job"] for rec in lines) == list(range(8))  # each job once
    moved = [rec for rec in lines if rec["tries"]]
    assert moved, "no job was held by the killed worker"
    for rec in moved:
        (lost,) = rec["tries"]
        assert lost["status"] == "lost" and state["url"] in lost["server"] and "its worker stopped" in lost["error"]
        assert state["url"] not in rec["server"]  # it finished on the new worker's ComfyUI
    new = ray.get(pool.actors[0].state.remote())
    assert new["worker_pid"] != state["worker_pid"] or which == "comfyui"
    assert new["comfyui_pid"] != state["comfyui_pid"] and new["url"] != state["url"]
    if which == "worker":  # the killed worker's ComfyUI did not outlive it
        _wait_gone(state["comfyui_pid"])


def _alive(pid) -> bool:
    """Running (a zombie, dead but not yet reaped by its new parent, is not)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _wait_gone(pid, timeout=20):
    end = time.time() + timeout
    while time.time() < end:
        if not _alive(pid):
            return
        time.sleep(0.2)
    raise AssertionError(f"process {pid} is still running")


def _cli(*args, **kw):
    return subprocess.Popen([sys.executable, os.path.join(PACK_ROOT, "tempo.py"), "run", TXT2IMG, *args],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=dict(os.environ, **ENV), start_new_session=True, **kw)


def _ray_args(models_dir, *more):
    from conftest import COMFYUI

    return ["--ray-comfyui", COMFYUI, "--ray-models", str(models_dir), "--set", "4.width=128",
            "--set", "4.height=128", "--quiet", *more]


def test_resume_after_a_killed_driver_runs_only_what_is_missing(ray_env, models_dir, tmp_path):
    """tempo.py run --ray (a local Ray in the driver's process): the driver is killed (SIGKILL) after two
    jobs; its Ray and ComfyUI go with it; --resume runs only the jobs that were missing."""
    out = tmp_path / "out"
    proc = _cli("--ray", "--ray-workers", "1", "--seeds", "1-6", "-o", str(out), *_ray_args(models_dir))
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if os.path.exists(out / runner.MANIFEST) and len(manifest(out)) >= 2:
            break
        time.sleep(0.1)
    assert proc.poll() is None, proc.stdout.read()
    children = {pid: _cmdline(pid) for pid in _descendants(proc.pid)}
    assert any("tempo-parent-watch" in c or "runpy" in c for c in children.values()), children  # its ComfyUI
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    for pid, cmd in children.items():  # Ray's processes and the worker's ComfyUI share the driver's fate; Ray's
        _wait_gone(pid, timeout=150 if "Agent" in cmd else 30)  # per-node agents notice within a minute or so
    done = {rec["job"] for rec in manifest(out)}
    assert 2 <= len(done) < 6
    again = _cli("--ray", "--ray-workers", "1", "--seeds", "1-6", "-o", str(out), "--resume",
                 *_ray_args(models_dir))
    text, _ = again.communicate(timeout=600)
    assert again.returncode == 0, text
    assert f"resuming: {len(done)} of 6 job(s) are complete" in text
    lines = manifest(out)
    assert sorted(rec["job"] for rec in lines) == list(range(6))  # none twice, none lost
    assert all(rec["status"] == "success" for rec in lines)


def _cmdline(pid) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _descendants(pid) -> list[int]:
    out = subprocess.run(["ps", "-e", "-o", "pid=,ppid="], capture_output=True, text=True).stdout.split("\n")
    children = {}
    for line in out:
        if line.strip():
            p, pp = map(int, line.split())
            children.setdefault(pp, []).append(p)
    found, todo = [], [pid]
    while todo:
        for c in children.get(todo.pop(), []):
            found.append(c)
            todo.append(c)
    return found


def test_a_second_ray_node_joins_through_the_cluster_address(ray_env, models_dir, tmp_path):
    """`ray start --head` (no CPUs of its own) and a second node joining it, on loopback; tempo.py run
    --ray HOST:PORT places its worker on the node that has the CPUs."""
    from tempo_pack.client.local import free_port

    port = free_port()
    temp = f"/tmp/tray{os.getpid()}"
    head = subprocess.Popen(["ray", "start", "--head", "--block", f"--port={port}", "--node-ip-address=127.0.0.1",
                             "--num-cpus=0", "--include-dashboard=false", f"--temp-dir={temp}",
                             "--disable-usage-stats"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=dict(os.environ, **ENV), start_new_session=True)
    node = None
    try:
        time.sleep(8)
        node = subprocess.Popen(["ray", "start", "--block", f"--address=127.0.0.1:{port}",
                                 "--node-ip-address=127.0.0.1", "--num-cpus=2"],
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env=dict(os.environ, **ENV), start_new_session=True)
        time.sleep(8)
        run = _cli("--ray", f"127.0.0.1:{port}", "--ray-workers", "1", "--seeds", "1-2", "-o", str(tmp_path / "o"),
                   *_ray_args(models_dir))
        text, _ = run.communicate(timeout=600)
        assert run.returncode == 0, text
        lines = manifest(tmp_path / "o")
        assert [rec["status"] for rec in lines] == ["success", "success"]
        assert "Ray: 1 ComfyUI worker(s)" in text and "ray node" in lines[0]["server"]
    finally:
        for p in (node, head):
            if p is not None and p.poll() is None:
                os.killpg(p.pid, signal.SIGTERM)
                try:
                    p.wait(30)
                except subprocess.TimeoutExpired:
                    os.killpg(p.pid, signal.SIGKILL)


def test_ctrl_c_cancels_the_jobs_on_the_workers_and_says_which(ray_env, models_dir, tmp_path):
    """Ctrl-C (SIGINT to the whole foreground group, as a terminal sends it) while a Ray batch runs:
    exit code 130, every job has a manifest line (the done ones success, the rest cancelled by Ctrl-C),
    and no ComfyUI is left running."""
    out = tmp_path / "out"
    proc = _cli("--ray", "--ray-workers", "1", "--seeds", "1-30", "-o", str(out), *_ray_args(models_dir))
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None:
        if os.path.exists(out / runner.MANIFEST) and len(manifest(out)) >= 1:
            break
        time.sleep(0.1)
    children = {pid: _cmdline(pid) for pid in _descendants(proc.pid)}
    os.killpg(proc.pid, signal.SIGINT)
    text, _ = proc.communicate(timeout=180)
    assert proc.returncode == 130, text
    lines = manifest(out)
    assert sorted(rec["job"] for rec in lines) == list(range(30)), text
    statuses = {rec["status"] for rec in lines}
    assert statuses <= {"success", "cancelled"} and "cancelled" in statuses, statuses
    assert all(rec["error"] == "cancelled by Ctrl-C" for rec in lines if rec["status"] == "cancelled")
    for pid, cmd in children.items():
        if "tempo-parent-watch" in cmd:  # the worker's ComfyUI
            _wait_gone(pid, timeout=60)
