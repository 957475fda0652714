"""Batches on Ray: one ComfyUI per Ray worker, placed, restarted and retried by Ray.

``tempo.py run --ray [ADDRESS]`` runs the same batch as ``--server`` (runner.run_batch: one manifest,
one resume, one Ctrl-C), with the jobs placed on Ray workers instead of listed servers:

- Each worker is a Ray actor that needs one GPU (a CPU slot where the cluster has none) and owns one
  ComfyUI: it starts one on its node from the ComfyUI folder given (the GPU Ray assigned is the only
  one that ComfyUI sees) or attaches to a URL the user lists. It uploads the batch's inputs, queues a
  job, waits, and returns the job's files (bytes) and record to the driver, which writes them.
- A worker whose ComfyUI stops answering, or whose process or node dies, is restarted by Ray (a new
  ComfyUI) and its jobs are run again by Ray's task retries, once; a job that two workers died under
  is not tried again (it may be what kills them). A ledger actor records which worker started each
  attempt, so the manifest shows the move.
- Ray is optional: only this path needs ``pip install ray``.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
import uuid

from .errors import ClientError, ServerUnreachable, ValidationFailed
from .local import WEB_ROOT
from .runner import ENDED, LOST_LIMIT, Batch, fetch_outputs, history_error, job_dir_name, write_outputs

RAY_MISSING = ("the Ray path (--ray) needs Ray: pip install ray (the listed-server path, --server, needs nothing "
               "more)")
POLL_S = 0.05         # a worker asks its ComfyUI's /history this often for the job it waits on
TEMP_ROOT = "/tmp"    # Ray's session folder must be short: its socket paths must fit 107 bytes


def pack_runtime_env(root: str | None = None) -> dict:
    """Ray ships this pack's code to every worker (under the package name the driver imported it by,
    the pack folder's own name may hold dashes): its Python packages, top-level modules and ``web/`` (the
    worker's ComfyUI loads the pack from that copy). Every other top-level folder stays home: tests, docs,
    demo files, and a virtual environment made inside the checkout (the README's ``.venv``: gigabytes)."""
    from .local import PACK_ROOT

    root = root or PACK_ROOT
    package = __name__.split(".")[0]
    stage = tempfile.mkdtemp(prefix="tpack", dir=TEMP_ROOT)
    os.symlink(root, os.path.join(stage, package))
    home = sorted(f"/{name}" for name in os.listdir(root) if os.path.isdir(os.path.join(root, name))
                  and name not in SHIPPED_FOLDERS and not os.path.isfile(os.path.join(root, name, "__init__.py")))
    return {"py_modules": [os.path.join(stage, package)],
            "excludes": [*home, "*.jpg", "*.png", "*.mp4", "*.safetensors", "*.pt", "*.pth", "__pycache__"]}


SHIPPED_FOLDERS = {"web"}  # the editor's scripts, which the worker's ComfyUI serves from the shipped copy


def import_ray():
    try:
        import ray
    except ImportError:
        raise ClientError(RAY_MISSING) from None
    return ray


class Ledger:
    """Which worker started each attempt of a job (a Ray actor): a task Ray retried after its worker
    died has two starts, and the driver writes the first as a move in the manifest."""

    def __init__(self):
        self.starts: dict[str, list[str]] = {}

    def start(self, token: str, worker: str) -> None:
        self.starts.setdefault(token, []).append(worker)

    def started(self, token: str) -> list[str]:
        return list(self.starts.get(token, []))


def own_custom_nodes(comfyui: str) -> list[str]:
    """The custom node folders installed in a ComfyUI (this pack aside: the worker links its own)."""
    from .local import PACK_ROOT

    folder = os.path.join(comfyui, "custom_nodes")
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return []
    out = []
    for name in names:
        path = os.path.join(folder, name)
        if os.path.isdir(path) and not name.startswith((".", "__")) and \
                os.path.realpath(path) != os.path.realpath(PACK_ROOT) and os.path.isfile(os.path.join(path, "__init__.py")):
            out.append(path)
    return out


class ComfyWorker:
    """One ComfyUI, started on this worker's node or attached by URL (a Ray actor made by RayPool)."""

    def __init__(self, ledger: str, comfyui: str | None = None, models=None, url: str | None = None,
                 headers: dict | None = None, uploads: list | None = None, cpu: bool = True,
                 extra_nodes: list | None = None, omp_threads: str | None = None, web_root: str | None = None):
        import ray

        from .local import LocalComfyUI
        from .server import ComfyServer

        # Ray sets OMP_NUM_THREADS for its workers (1 for a 1-CPU actor); the ComfyUI started here runs
        # with the threads the user's own shell gives (torch's default when unset), as a plain ComfyUI does
        if omp_threads is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = omp_threads
        self.ledger, self.local = ray.get_actor(ledger), None  # by name: a restarted worker finds it again
        if url:
            self.server = ComfyServer(url, headers)
            self.server.object_info()  # a listed server that does not answer is said at once
        else:  # this node's ComfyUI: its own custom nodes and models, private input and output folders
            roots = [os.path.join(comfyui, "models"), *([models] if isinstance(models, str) else models or [])]
            # an older ComfyUI's own frontend and templates: the driver's .comfy_web where this node sees it
            # (same machine or shared disk), else what this node's environment holds
            self.local = LocalComfyUI(comfyui, models=roots, cpu=cpu, watch_parent=True,
                                      extra_nodes=[*own_custom_nodes(comfyui), *(extra_nodes or [])],
                                      web_root=web_root or WEB_ROOT).start()
            self.server = ComfyServer(self.local.url, headers)
        node = ray.get_runtime_context().get_node_id()[:8]
        self.name = f"{self.server.url} (ray node {node}, worker pid {os.getpid()})"
        self.held: set[str] = set()
        self.lock = threading.Lock()
        try:
            for name, data in uploads or []:
                with tempfile.TemporaryDirectory() as d:
                    path = os.path.join(d, name)
                    with open(path, "wb") as f:
                        f.write(data)
                    self.server.upload_image(path, name)
        except ServerUnreachable:
            self._die()

    def label(self) -> str:
        return self.name

    def state(self) -> dict:
        """What the driver (and the tests) may ask: the worker's and its ComfyUI's process ids, the
        jobs it holds."""
        with self.lock:
            held = len(self.held)
        return {"worker_pid": os.getpid(), "comfyui_pid": self.local.proc.pid if self.local else None,
                "url": self.server.url, "held": held}

    def object_info(self) -> dict:
        return self.server.object_info()

    def run_job(self, token: str, prompt: dict, extra_data: dict | None) -> dict:
        """Queue one job on this worker's ComfyUI and wait for it: {status, error, files, prompt_id,
        server}. A ComfyUI that stops answering ends this worker, so Ray starts a new one and runs the
        job again there."""
        import ray

        ray.get(self.ledger.start.remote(token, self.name))
        record = {"server": self.name, "prompt_id": None, "files": [], "error": None}
        try:
            try:
                pid = self.server.queue_prompt(prompt, extra_data)
            except ValidationFailed as e:
                return {**record, "status": "invalid", "error": str(e)}
            record["prompt_id"] = pid
            with self.lock:
                self.held.add(pid)
            try:
                return {**record, **self._wait(pid)}
            finally:
                with self.lock:
                    self.held.discard(pid)
        except ServerUnreachable:
            self._die()

    def _wait(self, pid: str) -> dict:
        while True:
            hist = self.server.history(pid)
            status = (hist or {}).get("status") or {}
            if status.get("completed") is not None or status.get("status_str") == "error":
                break
            if not hist and pid not in self._queued_or_running() and not self.server.history(pid):
                # not queued, not running, and (asked again: it may have ended between the two questions)
                # no history: someone removed it from the server's queue
                return {"status": "cancelled", "error": "removed from the server's queue"}
            time.sleep(POLL_S)
        if status.get("status_str") == "error":
            if any(kind == "execution_interrupted" for kind, _ in status.get("messages", [])):
                return {"status": "interrupted", "error": "interrupted on the server",
                        "files": self._files(hist)}
            return {"status": "error", "error": history_error(hist)}
        return {"status": "success", "files": self._files(hist)}

    def _files(self, hist: dict) -> list:
        try:
            return fetch_outputs(self.server, hist)
        except ServerUnreachable:
            raise
        except ClientError:
            return []

    def _queued_or_running(self) -> set:
        q = self.server.queue()
        return {item[1] for key in ("queue_running", "queue_pending") for item in q.get(key, []) if len(item) > 1}

    def cancel(self) -> None:
        """Remove this worker's waiting jobs and interrupt its running one (the batch was stopped)."""
        with self.lock:
            ids = list(self.held)
        try:
            self.server.delete_queued(ids)
            for pid in ids:
                self.server.interrupt(pid)
        except ClientError:
            pass

    def _die(self):
        """This worker's ComfyUI is gone: end the worker so Ray restarts it with a new ComfyUI and runs
        its jobs again (Ray treats an exit like this as a crash)."""
        if self.local is not None:
            self.local.stop()
        os._exit(1)

    def stop(self) -> None:
        if self.local is not None:
            self.local.stop()


class RayPool:
    """Ray workers as a batch placement for runner.run_batch (``object_info``, ``workers``).

    ``address``: None starts a local Ray in this process (one machine); ``auto`` or ``ray://host:port``
    (or host:port) joins an existing cluster. ``workers``: how many ComfyUI workers (default: one per
    GPU in the cluster, else 1); each needs one GPU where the cluster has GPUs, else ``cpus`` CPUs.
    ``urls``: attach one worker to each of these running ComfyUIs instead of starting any.
    """

    def __init__(self, address: str | None = None, workers: int | None = None, comfyui: str | None = None,
                 models=None, urls: list[str] | None = None, headers: dict | None = None,
                 uploads: list[str] | None = None, extra_nodes: list[str] | None = None, cpus: float = 1.0,
                 log=print, num_cpus: int | None = None):
        ray = import_ray()
        self.ray, self.log = ray, log
        self.started_ray = False
        if not ray.is_initialized():
            kw = dict(include_dashboard=False, log_to_driver=False, logging_level="warning",
                      configure_logging=False, runtime_env=pack_runtime_env())
            os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
            if address is None:
                temp = tempfile.mkdtemp(prefix="tray", dir=TEMP_ROOT)
                ray.init(address="local", num_cpus=num_cpus or max(2, os.cpu_count() or 2),
                         object_store_memory=256 << 20, _temp_dir=temp, **kw)
            else:
                ray.init(address=address, **kw)
            self.started_ray = True
        gpus = int(ray.cluster_resources().get("GPU", 0))
        if urls:
            count = len(urls)
        else:
            if comfyui is None:
                from .local import require_comfyui

                comfyui = require_comfyui(alternative="pass --ray-comfyui PATH (a ComfyUI folder on every node)")
            count = workers or gpus or 1
        upload_bytes = []
        for path in uploads or []:
            try:
                with open(path, "rb") as f:
                    upload_bytes.append((os.path.basename(path), f.read()))
            except OSError as e:
                raise ClientError(f"cannot read {path}: {e.strerror}") from None
        ledger_name = f"tempo-ledger-{uuid.uuid4().hex[:12]}"
        self.ledger = ray.remote(num_cpus=0)(Ledger).options(name=ledger_name).remote()
        actor = ray.remote(ComfyWorker).options(
            num_gpus=1 if gpus and not urls else 0, num_cpus=0 if urls else cpus,
            max_restarts=-1, max_task_retries=LOST_LIMIT - 1, max_concurrency=4)
        self.actors = [actor.remote(ledger_name, comfyui=comfyui, models=models,
                                    url=urls[i] if urls else None, headers=headers, uploads=upload_bytes,
                                    cpu=not gpus, extra_nodes=extra_nodes,
                                    omp_threads=os.environ.get("OMP_NUM_THREADS"), web_root=WEB_ROOT)
                       for i in range(count)]
        try:
            self.labels = ray.get([a.label.remote() for a in self.actors])
        except Exception as e:  # noqa: BLE001 - a worker that cannot start: said, with its reason
            self.close()
            raise ClientError(f"a Ray worker could not start its ComfyUI: {e}") from None
        where = "attached to " + ", ".join(urls) if urls else f"{'1 GPU' if gpus else f'{cpus:g} CPU'} each"
        log(f"Ray: {count} ComfyUI worker(s) ({where}): " + "; ".join(self.labels))

    def object_info(self) -> dict:
        return self.ray.get(self.actors[0].object_info.remote())

    def workers(self, batch: Batch, window: int) -> list:
        return [RayWorker(self, actor, batch, window, i) for i, actor in enumerate(self.actors)]

    def close(self):
        for a in self.actors if hasattr(self, "actors") else []:
            try:
                self.ray.get(a.stop.remote(), timeout=30)
            except Exception:  # noqa: BLE001 - a dead worker has no ComfyUI left to stop
                pass
            self.ray.kill(a)
        if self.started_ray:
            self.ray.shutdown()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class RayWorker(threading.Thread):
    """The driver's side of one Ray worker: keeps up to ``window`` of the batch's jobs on it and
    writes each job's files and manifest line as the job ends (the batch's one logic, runner.Batch)."""

    def __init__(self, pool: RayPool, actor, batch: Batch, window: int, position: int):
        super().__init__(daemon=True, name=f"tempo-ray {position}")
        self.pool, self.ray, self.actor, self.batch, self.window = pool, pool.ray, actor, batch, window
        self.held: dict = {}  # ObjectRef -> (job, token)
        self.ended = threading.Event()
        self.bar = None
        if batch.progress:
            from tqdm import tqdm

            self.bar = tqdm(desc=f"ray worker {position}", unit="job", position=position, leave=True)

    def run(self):
        try:
            self._run()
        except Exception as e:  # the client's own fault: the held jobs are said lost, with why
            for job, _ in self.held.values():
                self.batch.end(job, "lost", f"the driver lost this job: {type(e).__name__}: {e}")
            self.held.clear()
        finally:
            if self.bar is not None:
                self.bar.close()
            self.ended.set()

    def _run(self):
        cancelled = False
        while True:
            if self.batch.stop_reason is not None and not cancelled:
                cancelled = True
                self.actor.cancel.remote()
            if not cancelled:
                self._fill()
            if not self.held:
                if cancelled or self.batch.all_ended():
                    return
                time.sleep(0.2)  # a job may still come back to the queue (retries)
                continue
            ready, _ = self.ray.wait(list(self.held), num_returns=1, timeout=0.5)
            for ref in ready:
                job, token = self.held.pop(ref)
                self._finish(job, token, ref, cancelled)

    def _fill(self):
        while len(self.held) < self.window:
            job = self.batch.take()
            if job is None:
                return
            token = uuid.uuid4().hex
            job.status, job.started, job.server = "queued", time.monotonic(), "ray"
            ref = self.actor.run_job.remote(token, self.batch.prompts[job.index], self.batch.extra_data(job))
            self.held[ref] = (job, token)

    def _finish(self, job, token: str, ref, cancelled: bool):
        ray = self.ray
        try:
            result = ray.get(ref)
        except ray.exceptions.RayTaskError as e:  # the worker's own code raised: the job's error, said
            self.batch.end(job, "error", f"the Ray worker failed: {e.cause if e.cause else e}")
            return
        except ray.exceptions.RayActorError as e:
            starts = ray.get(self.pool.ledger.started.remote(token))
            for where in starts:
                job.tries.append({"server": where, "status": "lost", "error": "its worker stopped (its ComfyUI or "
                                  "process died) while running the job"})
            job.server = starts[-1] if starts else None
            self.batch.end(job, "lost", f"lost with {len(starts)} Ray worker(s); not run again, as the job itself "
                                        f"may be what stops them ({type(e).__name__})")
            return
        for where in ray.get(self.pool.ledger.started.remote(token))[:-1]:
            job.tries.append({"server": where, "status": "lost", "error": "its worker stopped (its ComfyUI or "
                              "process died); Ray ran the job again on a new worker"})
        job.server, job.prompt_id = result["server"], result["prompt_id"]
        status = result["status"]
        if cancelled and status in ("interrupted", "cancelled") and job.status not in ENDED:
            status = "cancelled"
        files = write_outputs(result.get("files") or [], os.path.join(self.batch.out_dir, job_dir_name(job.index)),
                              self.batch.out_dir)
        error = result.get("error")
        if status == "cancelled":
            error = self.batch.stop_reason or error
        self.batch.end(job, status, error, files)
        if status == "success" and self.bar is not None:
            self.bar.update(1)
