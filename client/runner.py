"""Running a batch on one or several ComfyUI servers.

Each server is one GPU; the client spreads the jobs. One thread per server keeps at most
``window`` of the batch's jobs on that server (one running, one waiting, so its GPU never idles)
and takes the next job as one ends, so a faster server takes more jobs: every job goes to the
server with the shortest queue. When a server stops answering, the jobs it held go back to
the others (a job lost twice is not tried a third time: it may be what stops them).

The output folder holds ``batch.json`` (the workflow's hash and the jobs, for ``--resume``),
``manifest.jsonl`` (one line per job, written as the job ends, so a killed client leaves a true
manifest behind) and ``jobNNNN/`` with each job's files.
"""

from __future__ import annotations

import collections
import hashlib
import json
import os
import re
import shutil
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from .errors import ClientError, JobFailed, ServerUnreachable, ValidationFailed
from .workflow import apply_overrides, apply_to_ui

MANIFEST = "manifest.jsonl"
BATCH_FILE = "batch.json"
LOST_LIMIT = 2  # a job lost with this many servers is not sent to another one
WINDOW = 2  # jobs held by one server at a time: one running, one waiting
POLL_S = 5.0  # /history is asked this often for jobs whose websocket messages may have been missed

ENDED = ("success", "error", "invalid", "interrupted", "cancelled", "lost")


@dataclass
class JobResult:
    index: int
    overrides: dict
    prompt_id: str | None = None
    status: str = "pending"
    files: list[str] = field(default_factory=list)
    error: str | None = None
    server: str | None = None
    tries: list[dict] = field(default_factory=list)  # earlier attempts: server, status, error
    seconds: float | None = None
    started: float | None = None

    def record(self) -> dict:
        return {"job": self.index, "overrides": self.overrides, "status": self.status, "server": self.server,
                "prompt_id": self.prompt_id, "files": self.files, "error": self.error, "tries": self.tries,
                "seconds": None if self.seconds is None else round(self.seconds, 3)}

    def manifest_line(self) -> str:
        return json.dumps(self.record())


# -- the output folder ------------------------------------------------------------------------

def batch_signature(api: dict, jobs: list[dict]) -> dict:
    text = json.dumps(api, sort_keys=True)
    return {"workflow_sha256": hashlib.sha256(text.encode()).hexdigest(), "jobs": jobs}


def read_manifest(path: str) -> dict[int, dict]:
    """The last line of each job (a resumed batch appends); unreadable lines (a client killed
    mid-write) are skipped."""
    records = {}
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                try:
                    rec = json.loads(line)
                    records[int(rec["job"])] = rec
                except (ValueError, KeyError, TypeError):
                    continue
    except FileNotFoundError:
        pass
    return records


def job_dir_name(index: int) -> str:
    return f"job{index:04d}"


def complete_on_disk(out_dir: str, rec: dict) -> bool:
    return rec.get("status") == "success" and all(
        os.path.isfile(os.path.join(out_dir, f)) and os.path.getsize(os.path.join(out_dir, f)) > 0
        for f in rec.get("files") or [])


def prepare_output(out_dir: str, api: dict, jobs: list[dict], existing: str = "refuse") -> dict[int, dict]:
    """Make ``out_dir`` ready for this batch; returns the manifest records of jobs already done.

    ``existing``: what to do with a folder that already holds a batch. "refuse" (the default) stops
    with a message; "resume" keeps the jobs whose outputs are complete on disk and in the manifest
    (the batch must be the same workflow and jobs) and runs the rest; "replace" removes the old
    batch's manifest and job folders first (for folders the caller owns, such as the demo's).
    """
    manifest_path = os.path.join(out_dir, MANIFEST)
    batch_path = os.path.join(out_dir, BATCH_FILE)
    signature = batch_signature(api, jobs)
    holds_batch = os.path.exists(manifest_path) or os.path.exists(batch_path)
    done: dict[int, dict] = {}
    if holds_batch and existing == "replace":
        for name in os.listdir(out_dir):
            if name in (MANIFEST, BATCH_FILE) or (name.startswith("job") and name[3:].isdigit()):
                p = os.path.join(out_dir, name)
                shutil.rmtree(p) if os.path.isdir(p) else os.remove(p)
    elif holds_batch and existing == "resume":
        try:
            with open(batch_path, encoding="utf-8") as f:
                old = json.load(f)
        except (OSError, ValueError):
            old = None
        records = read_manifest(manifest_path)
        if old is not None and old.get("workflow_sha256") != signature["workflow_sha256"]:
            raise ClientError(f"{out_dir} holds a batch of another workflow (or other settings); --resume "
                              "finishes the same command only. Pass another --output for this one")
        old_jobs = old.get("jobs") if old is not None else None
        if old_jobs is not None and old_jobs != jobs:
            raise ClientError(f"{out_dir} holds a batch of other jobs ({len(old_jobs)} jobs; this command makes "
                              f"{len(jobs)}); --resume finishes the same command only. Pass another --output")
        for i, rec in records.items():
            if i < len(jobs) and rec.get("overrides") == jobs[i] and complete_on_disk(out_dir, rec):
                done[i] = rec
        for i in range(len(jobs)):  # files of unfinished attempts: the new attempt writes its own
            if i not in done and os.path.isdir(os.path.join(out_dir, job_dir_name(i))):
                shutil.rmtree(os.path.join(out_dir, job_dir_name(i)))
    elif holds_batch:
        n = len(read_manifest(manifest_path))
        raise ClientError(f"{out_dir} already holds a batch ({n} job(s) in its manifest.jsonl); run the same "
                          "command with --resume to finish it (jobs with complete outputs are skipped), or "
                          "pass another --output. Outputs of two batches are never mixed in one folder")
    os.makedirs(out_dir, exist_ok=True)
    _write_atomic(batch_path, json.dumps(signature))
    _write_atomic(manifest_path, "".join(json.dumps(done[i]) + "\n" for i in sorted(done)))
    return done


def _write_atomic(path: str, text: str):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


# -- the batch's shared state ---------------------------------------------------------------

class Batch:
    """Jobs waiting, jobs held by servers, and the manifest; every change under one lock."""

    def __init__(self, api, prompts, ui, object_info, results, out_dir, keep_going, retries, log, progress):
        self.api, self.prompts, self.ui, self.object_info = api, prompts, ui, object_info
        self.results, self.out_dir = results, out_dir
        self.keep_going, self.retries, self.log, self.progress = keep_going, retries, log, progress
        self.lock = threading.RLock()
        self.waiting = collections.deque(r for r in results if r.status == "pending")
        self.stop_reason: str | None = None
        self.manifest = open(os.path.join(out_dir, MANIFEST), "a", encoding="utf-8")
        self.live_workers = 0

    # jobs out and back
    def take(self) -> JobResult | None:
        with self.lock:
            if self.stop_reason or not self.waiting:
                return None
            job = self.waiting.popleft()
            job.status = "sending"
            return job

    def put_back(self, job: JobResult):
        """A job that never reached a server (it stopped answering as the job was sent)."""
        with self.lock:
            job.status, job.prompt_id, job.server = "pending", None, None
            self.waiting.appendleft(job)

    def extra_data(self, job: JobResult) -> dict | None:
        """What the editor sends with a prompt: the workflow, so saved images and videos carry it."""
        if self.ui is None:
            return None
        return {"extra_pnginfo": {"workflow": apply_to_ui(self.ui, self.api, self.prompts[job.index],
                                                           self.object_info)}}

    def all_ended(self) -> bool:
        with self.lock:
            return all(r.status in ENDED for r in self.results)

    def end(self, job: JobResult, status: str, error: str | None = None, files: list[str] | None = None):
        with self.lock:
            if job.status in ENDED:
                return
            if status == "error" and self.stop_reason is None and self.error_tries(job) < self.retries:
                job.tries.append({"server": job.server, "status": status, "error": error})
                self.log(f"job {job.index}: failed on {job.server}: {error}; trying again "
                         f"({self.error_tries(job)} of {self.retries} retries)")
                job.status, job.prompt_id, job.server, job.files = "pending", None, None, []
                self.waiting.append(job)
                return
            job.status, job.error = status, error
            if files is not None:
                job.files = files
            if job.started is not None:
                job.seconds = time.monotonic() - job.started
            self.manifest.write(job.manifest_line() + "\n")
            self.manifest.flush()
            if error and status != "cancelled":  # cancelled ones are counted in the closing line
                self.log(f"job {job.index}: {error}")
            if status in ("error", "invalid", "interrupted") and not self.keep_going:
                self.stop("cancelled: an earlier job failed")

    @staticmethod
    def error_tries(job: JobResult) -> int:
        return sum(t["status"] == "error" for t in job.tries)

    def lost(self, server_url: str, jobs: list[JobResult], reason: str):
        """``server_url`` stopped answering: its jobs go back to the others, unless lost twice."""
        with self.lock:
            self.live_workers -= 1
            moved = []
            for job in jobs:
                if job.status in ENDED:
                    continue
                job.tries.append({"server": server_url, "status": "lost", "error": reason})
                job.files = []
                servers = [t["server"] for t in job.tries if t["status"] == "lost"]
                if len(servers) >= LOST_LIMIT:
                    job.server = server_url
                    self.end(job, "lost", f"lost with {len(servers)} servers ({', '.join(servers)}); not sent to "
                                          "another, as the job itself may be what stops them")
                else:
                    job.status, job.prompt_id, job.server = "pending", None, None
                    moved.append(job)
            self.waiting.extendleft(reversed(moved))  # first, in their order
            self.log(f"{server_url} stopped answering ({reason}); "
                     + (f"job(s) {', '.join(str(j.index) for j in moved)} go to the other server(s)" if moved
                        else "it held no job"))
            if self.live_workers <= 0:
                for job in list(self.waiting):
                    job.server = None
                    self.end(job, "lost", "no server left to run it; run the same command with --resume when "
                                          "a server is back")
                self.waiting.clear()

    def stop(self, reason: str):
        with self.lock:
            if self.stop_reason is None:
                self.stop_reason = reason
            for job in list(self.waiting):
                self.end(job, "cancelled", reason)
            self.waiting.clear()

    def close(self):
        self.manifest.close()


# -- one thread per server ------------------------------------------------------------------

class ServerWorker(threading.Thread):
    def __init__(self, server, batch: Batch, window: int, position: int):
        super().__init__(daemon=True, name=f"tempo-batch {server.url}")
        self.server, self.batch, self.window = server, batch, window
        self.held: dict[str, JobResult] = {}  # prompt id -> job, on this server
        self.ended = threading.Event()  # waited on instead of join(), which Ctrl-C can cut short
        self.bar = None
        if batch.progress:
            from tqdm import tqdm

            self.bar = tqdm(desc=server.url.split("://", 1)[-1], unit="job", position=position, leave=True)

    def run(self):
        try:
            self._run()
        except ServerUnreachable as e:
            self.batch.lost(self.server.url, list(self.held.values()), str(e))
            self.held.clear()
        except Exception as e:  # the client's own fault: the jobs go elsewhere, and it is said
            self.batch.lost(self.server.url, list(self.held.values()), f"client error {type(e).__name__}: {e}")
            self.held.clear()
        finally:
            if self.bar is not None:
                self.bar.close()
            self.ended.set()

    def _run(self):
        ws = self.server.open_websocket()
        try:
            last_poll = time.monotonic()
            while not self.batch.all_ended():
                if self.batch.stop_reason is not None:
                    self._cancel_held(self.batch.stop_reason)
                    return
                self._fill()
                msg = self.server.next_message(ws, 0.5)
                if msg is not None:
                    self._handle(msg)
                if self.held and time.monotonic() - last_poll > POLL_S:
                    last_poll = time.monotonic()
                    self._poll_history()
        finally:
            ws.close()

    def _fill(self):
        while len(self.held) < self.window:
            job = self.batch.take()
            if job is None:
                return
            prompt = self.batch.prompts[job.index]
            try:
                job.prompt_id = self.server.queue_prompt(prompt, self.batch.extra_data(job))
            except ValidationFailed as e:
                job.server = self.server.url
                self.batch.end(job, "invalid", str(e))
                continue
            except BaseException:
                self.batch.put_back(job)
                raise
            job.server, job.status, job.started = self.server.url, "queued", time.monotonic()
            self.held[job.prompt_id] = job

    def _handle(self, msg: dict):
        data = msg.get("data") or {}
        job = self.held.get(data.get("prompt_id"))
        if job is None:
            return
        kind = msg.get("type")
        if kind == "execution_start":
            job.status = "running"
            self._show(f"job {job.index}")
        elif kind == "executing" and data.get("node") is not None:
            node = self.batch.api.get(str(data["node"]), {})
            self._show(f"job {job.index}: {(node.get('_meta') or {}).get('title', data['node'])}")
        elif kind == "progress":
            self._show(f"job {job.index}: step {data.get('value')}/{data.get('max')}")
        elif kind == "execution_success" or (kind == "executing" and data.get("node") is None):
            self._collect(job)
        elif kind == "execution_error":
            self._end(job, "error", execution_error_text(self.batch.api, data))
        elif kind == "execution_interrupted":
            self._end(job, "interrupted", "interrupted on the server", self._partial_files(job))

    def _show(self, text: str):
        if self.bar is not None:
            self.bar.set_postfix_str(text, refresh=True)

    def _end(self, job: JobResult, status: str, error: str | None = None, files: list[str] | None = None):
        self.held.pop(job.prompt_id, None)
        self.batch.end(job, status, error, files)
        if status == "success":
            if self.bar is not None:
                self.bar.update(1)

    def _collect(self, job: JobResult):
        hist = None
        for _ in range(50):  # history is written just after the success message
            hist = self.server.history(job.prompt_id)
            if hist and (hist.get("status") or {}).get("completed") is not None:
                break
            time.sleep(0.1)
        if not hist:
            self._end(job, "error", "the server has no history for this job")
            return
        if (hist.get("status") or {}).get("status_str") == "error":
            self._end(job, "error", history_error(hist))
            return
        try:
            files = download_outputs(self.server, hist, os.path.join(self.batch.out_dir, job_dir_name(job.index)),
                                     self.batch.out_dir)
        except ServerUnreachable:
            raise
        except ClientError as e:
            self._end(job, "error", str(e))
            return
        self._end(job, "success", files=files)

    def _partial_files(self, job: JobResult) -> list[str]:
        """Whatever an interrupted job saved before it stopped."""
        try:
            hist = self.server.history(job.prompt_id) or {}
            return download_outputs(self.server, hist, os.path.join(self.batch.out_dir, job_dir_name(job.index)),
                                    self.batch.out_dir)
        except ClientError:
            return []

    def _poll_history(self):
        """Catch jobs whose websocket messages were missed (e.g. fully cached prompts)."""
        for job in list(self.held.values()):
            hist = self.server.history(job.prompt_id)
            if not hist:
                continue
            status = hist.get("status") or {}
            if status.get("status_str") == "error":
                interrupted = any(kind == "execution_interrupted" for kind, _ in status.get("messages", []))
                if interrupted:
                    self._end(job, "interrupted", "interrupted on the server", self._partial_files(job))
                else:
                    self._end(job, "error", history_error(hist))
            elif status.get("completed"):
                self._collect(job)

    def _cancel_held(self, reason: str):
        """Remove this server's waiting jobs of the batch and interrupt its running one."""
        ids = list(self.held)
        try:
            self.server.delete_queued(ids)
            for pid in ids:  # only the one that runs is interrupted (the server checks the id)
                self.server.interrupt(pid)
        except ClientError:
            pass
        for pid in ids:
            self.batch.end(self.held.pop(pid), "cancelled", reason)


class Servers:
    """Where jobs run when the user lists ComfyUI servers: one ServerWorker thread each."""

    def __init__(self, servers):
        self.servers = list(servers)
        if not self.servers:
            raise ClientError("no server to run the batch on; pass --server URL")

    def object_info(self) -> dict:
        return self.servers[0].object_info()

    def workers(self, batch: Batch, window: int) -> list:
        return [ServerWorker(s, batch, window, i) for i, s in enumerate(self.servers)]


# -- helpers ----------------------------------------------------------------------------------

def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name) or "file"


def fetch_outputs(server, history: dict) -> list[tuple[str, bytes]]:
    """Every file a finished prompt lists in its history (images, videos, latents...), as (the name
    it gets in the job's folder, its bytes)."""
    out = []
    for node_id, outputs in sorted((history.get("outputs") or {}).items()):
        for key, items in outputs.items():
            if not isinstance(items, list):
                continue
            for item in items:
                if not (isinstance(item, dict) and "filename" in item):
                    continue
                data = server.view(item["filename"], item.get("subfolder", ""), item.get("type", "output"))
                out.append((f"{_safe(node_id)}_{_safe(item['filename'])}", data))
    return out


def write_outputs(files: list[tuple[str, bytes]], job_dir: str, out_root: str) -> list[str]:
    """Write a job's files into its folder; their paths relative to the batch's folder."""
    paths = []
    for name, data in files:
        os.makedirs(job_dir, exist_ok=True)
        path = os.path.join(job_dir, _safe(name))
        with open(path, "wb") as f:
            f.write(data)
        paths.append(os.path.relpath(path, out_root))
    return paths


def download_outputs(server, history: dict, job_dir: str, out_root: str) -> list[str]:
    """Download every file a finished prompt lists in its history into ``job_dir``."""
    return write_outputs(fetch_outputs(server, history), job_dir, out_root)


def exception_name(type_name: str | None) -> str:
    """An exception's type as ComfyUI reports it, without the filesystem path a custom node's
    module name carries (``/x/custom_nodes/Pack.mod.Error`` -> ``Error``)."""
    if not type_name:
        return "an error"
    if "/" in type_name or "\\" in type_name:
        return type_name.replace("\\", "/").rsplit("/", 1)[-1].rsplit(".", 1)[-1]
    return type_name


def execution_error_text(api: dict | None, data: dict) -> str:
    """An execution_error message as people read it: which node (its title where known) raised what."""
    nid = str(data.get("node_id", "?"))
    title = ((api or {}).get(nid, {}).get("_meta") or {}).get("title")
    return (f"node #{nid}{f' {title!r}' if title else ''} ({data.get('node_type', '')}) raised "
            f"{exception_name(data.get('exception_type'))}: {str(data.get('exception_message', '')).strip()}")


def history_error(hist: dict) -> str:
    for kind, data in (hist.get("status") or {}).get("messages", []):
        if kind == "execution_error":
            return execution_error_text(None, data)
    return "the job failed on the server"


# -- the batch --------------------------------------------------------------------------------

def run_batch(servers, api: dict, jobs: list[dict], out_dir: str, keep_going: bool = False,
              progress: bool = True, log: Callable[[str], Any] = print, retries: int = 0,
              existing: str = "refuse", ui: dict | None = None, window: int = WINDOW) -> list[JobResult]:
    """Run ``jobs`` (override dicts) of ``api`` on ``servers`` (a ComfyServer or several, or a placement
    such as client.ray_pool.RayPool: anything with ``object_info()`` and ``workers(batch, window)``);
    write each job's outputs to ``out_dir/jobNNNN/`` and ``out_dir/manifest.jsonl`` as jobs end.

    ``ui``: the editor-format workflow, sent with each job (its overrides applied) so images and
    videos saved by ComfyUI's save nodes carry it, as when queued from the editor. ``retries``: how
    many more times a job that fails on its own merits is tried (default 0; a job whose server
    stopped answering always moves to another, up to LOST_LIMIT servers). ``existing``: see
    :func:`prepare_output`. Raises JobFailed when a job did not succeed (after the first failure
    unless ``keep_going``), ServerUnreachable when every server was lost; on Ctrl-C the running
    jobs are interrupted and the queued ones removed. Every job has a manifest line either way.
    """
    if hasattr(servers, "workers"):
        placement = servers
    else:
        placement = Servers(servers if isinstance(servers, (list, tuple)) else [servers])
    object_info = placement.object_info()
    prompts = [apply_overrides(api, job, object_info) for job in jobs]  # check every job before queueing
    done = prepare_output(out_dir, api, jobs, existing)
    results = []
    for i, job in enumerate(jobs):
        r = JobResult(i, job)
        if i in done:
            rec = done[i]
            r.status, r.files, r.prompt_id, r.server = "success", rec.get("files") or [], rec.get("prompt_id"), \
                rec.get("server")
        results.append(r)
    if done:
        log(f"resuming: {len(done)} of {len(jobs)} job(s) are complete in {out_dir}; running the other "
            f"{len(jobs) - len(done)}")
    batch = Batch(api, prompts, ui, object_info, results, out_dir, keep_going, retries, log, progress)
    workers = placement.workers(batch, window)
    batch.live_workers = len(workers)
    manifest_path = os.path.join(out_dir, MANIFEST)
    try:
        for w in workers:
            w.start()
        for w in workers:
            while not w.ended.wait(0.2):
                pass
    except KeyboardInterrupt:
        batch.stop("cancelled by Ctrl-C")
        for w in workers:
            w.ended.wait(60)
        log(f"interrupted: stopped the running job(s) and removed the queued ones; manifest: {manifest_path}")
        raise
    finally:
        with batch.lock:
            for r in results:  # whatever did not end (a thread that could not finish) still gets its line
                if r.status not in ENDED:
                    batch.end(r, "cancelled", batch.stop_reason or "the batch stopped before this job ran")
        batch.close()
    lost_all = [r for r in results if r.status == "lost" and r.error and r.error.startswith("no server left")]
    if lost_all:
        raise ServerUnreachable(f"every server stopped answering; {len(lost_all)} of {len(results)} job(s) "
                                f"were not run (see {manifest_path}); run the same command with --resume "
                                "when a server is back")
    failed = [r for r in results if r.status != "success"]
    if failed and all(r.status in ("invalid", "cancelled") for r in failed):
        raise ValidationFailed(f"the server refused {sum(r.status == 'invalid' for r in failed)} of {len(results)} "
                               f"job(s) (why is above, and in {manifest_path})")
    if failed:
        raise JobFailed(f"{len(failed)} of {len(results)} jobs did not succeed "
                        f"({', '.join(f'job {r.index}: {r.status}' for r in failed[:20])}"
                        f"{', ...' if len(failed) > 20 else ''}); see {manifest_path}")
    return results
