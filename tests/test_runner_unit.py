"""The batch runner's bookkeeping, without a server: the output folder (refuse, resume, replace),
the manifest, jobs moved off a lost server, retries, and the workflow each job carries."""

import copy
import json
import os

import pytest

from tempo_pack.client import runner, workflow
from tempo_pack.client.errors import ClientError

INFO = {
    "KSampler": {"input": {"required": {"model": ["MODEL"], "seed": ["INT", {"default": 0, "control_after_generate": True}],
                                        "steps": ["INT", {"default": 20, "min": 1}]}},
                 "input_order": {"required": ["model", "seed", "steps"]}, "output": ["LATENT"]},
    "Loader": {"input": {"required": {"name": [["a.safetensors", "b.safetensors"]]}},
               "input_order": {"required": ["name"]}, "output": ["MODEL"]},
}
UI = {"nodes": [
    {"id": 1, "type": "Loader", "widgets_values": ["a.safetensors"], "inputs": [],
     "outputs": [{"name": "MODEL", "type": "MODEL", "links": [4]}]},
    {"id": 3, "type": "KSampler", "widgets_values": [1, "randomize", 20],
     "inputs": [{"name": "model", "type": "MODEL", "link": 4},
                {"name": "steps", "type": "INT", "link": 5, "widget": {"name": "steps"}}]},
    {"id": 9, "type": "PrimitiveNode", "widgets_values": [20, "fixed"], "inputs": [],
     "outputs": [{"name": "INT", "type": "INT", "links": [5]}]}],
    "links": [[4, 1, 0, 3, 0, "MODEL"], [5, 9, 0, 3, 1, "INT"]]}


def test_a_job_carries_the_workflow_with_its_own_values():
    api = workflow.to_api(UI, INFO)
    assert api["3"]["inputs"]["steps"] == 20 and api["3"]["inputs"]["seed"] == 1
    job = workflow.apply_overrides(api, {"3.seed": 77, "3.steps": 4, "Loader.name": "b.safetensors"}, INFO)
    before = copy.deepcopy(UI)
    carried = workflow.apply_to_ui(UI, api, job, INFO)
    assert UI == before, "the workflow given must not change"
    assert carried["nodes"][1]["widgets_values"] == [77, "randomize", 20]  # the seed's control stays in its slot
    assert carried["nodes"][2]["widgets_values"][0] == 4, "a value that comes from a primitive is written there"
    assert carried["nodes"][0]["widgets_values"] == ["b.safetensors"]
    assert workflow.to_api(carried, INFO) == job, "loading the carried workflow gives the job that ran"


def _jobs(n=3):
    return [{"3.seed": i} for i in range(n)]


def _finish(out, jobs, statuses, files=True):
    """A manifest as a run leaves it: a line per ended job, and the files it lists."""
    with open(out / runner.MANIFEST, "a") as f:
        for i, status in enumerate(statuses):
            if status is None:
                continue
            rel = f"{runner.job_dir_name(i)}/9_x.png"
            if files and status == "success":
                os.makedirs(out / runner.job_dir_name(i), exist_ok=True)
                (out / rel).write_bytes(b"png")
            f.write(json.dumps({"job": i, "overrides": jobs[i], "status": status, "files": [rel] if status == "success"
                                else [], "prompt_id": f"p{i}", "server": "http://a"}) + "\n")


def test_a_folder_holding_a_batch_is_refused_without_resume(tmp_path):
    api, jobs = {"3": {"class_type": "KSampler", "inputs": {}}}, _jobs()
    assert runner.prepare_output(str(tmp_path), api, jobs) == {}
    _finish(tmp_path, jobs, ["success", "error", None])
    with pytest.raises(ClientError, match="already holds a batch .* --resume .* another --output"):
        runner.prepare_output(str(tmp_path), api, jobs)


def test_resume_keeps_complete_jobs_only(tmp_path):
    api, jobs = {"3": {"class_type": "KSampler", "inputs": {}}}, _jobs(4)
    runner.prepare_output(str(tmp_path), api, jobs)
    _finish(tmp_path, jobs, ["success", "error", "success", "success"])
    (tmp_path / "job0003" / "9_x.png").write_bytes(b"")  # an empty file is not a complete output
    (tmp_path / "manifest.jsonl").open("a").write('{"job": 2, "overr')  # a client killed mid-line
    done = runner.prepare_output(str(tmp_path), api, jobs, "resume")
    assert sorted(done) == [0, 2]
    assert not (tmp_path / "job0003").exists(), "an incomplete job's old files go before it runs again"
    lines = [json.loads(l) for l in (tmp_path / "manifest.jsonl").read_text().splitlines()]
    assert [l["job"] for l in lines] == [0, 2], "the manifest keeps one line per job"


def test_resume_refuses_another_batch(tmp_path):
    api, jobs = {"3": {"class_type": "KSampler", "inputs": {"steps": 4}}}, _jobs()
    runner.prepare_output(str(tmp_path), api, jobs)
    _finish(tmp_path, jobs, ["success", None, None])
    with pytest.raises(ClientError, match="another workflow"):
        runner.prepare_output(str(tmp_path), {"3": {"class_type": "KSampler", "inputs": {"steps": 5}}}, jobs, "resume")
    with pytest.raises(ClientError, match="other jobs"):
        runner.prepare_output(str(tmp_path), api, _jobs(5), "resume")


def test_replace_clears_only_the_batch(tmp_path):
    api, jobs = {"3": {"class_type": "KSampler", "inputs": {}}}, _jobs()
    runner.prepare_output(str(tmp_path), api, jobs)
    _finish(tmp_path, jobs, ["success", "success", "success"])
    (tmp_path / "notes.txt").write_text("mine")
    assert runner.prepare_output(str(tmp_path), api, jobs, "replace") == {}
    assert sorted(os.listdir(tmp_path)) == ["batch.json", "manifest.jsonl", "notes.txt"]


def _batch(tmp_path, n, retries=0, keep_going=True, workers=2):
    api = {"3": {"class_type": "KSampler", "inputs": {}}}
    jobs = _jobs(n)
    runner.prepare_output(str(tmp_path), api, jobs)
    results = [runner.JobResult(i, j) for i, j in enumerate(jobs)]
    logs = []
    b = runner.Batch(api, [api] * n, None, {}, results, str(tmp_path), keep_going, retries, logs.append, False)
    b.live_workers = workers
    return b, results, logs


def _lines(tmp_path):
    return [json.loads(l) for l in (tmp_path / "manifest.jsonl").read_text().splitlines()]


def test_a_lost_servers_jobs_go_to_another_and_a_job_lost_twice_stops(tmp_path):
    b, results, logs = _batch(tmp_path, 3, workers=3)
    a0, a1 = b.take(), b.take()
    b.lost("http://a", [a0, a1], "the connection to http://a was lost")
    assert [j.index for j in b.waiting] == [0, 1, 2], "the lost jobs go first, in their order"
    assert "http://a stopped answering" in logs[-1] and "job(s) 0, 1 go to the other server(s)" in logs[-1]
    again = b.take()
    b.lost("http://b", [again], "timeout")
    assert again.status == "lost" and "lost with 2 servers (http://a, http://b)" in again.error
    line = _lines(tmp_path)[-1]
    assert line["job"] == 0 and line["status"] == "lost" and [t["server"] for t in line["tries"]] == ["http://a", "http://b"]
    rest = b.take()
    b.end(rest, "success", files=["job0001/x.png"])
    assert _lines(tmp_path)[-1]["tries"] == [{"server": "http://a", "status": "lost",
                                              "error": "the connection to http://a was lost"}]


def test_when_every_server_is_lost_each_job_left_gets_a_line(tmp_path):
    b, results, logs = _batch(tmp_path, 4, workers=1)
    held = [b.take(), b.take()]
    b.lost("http://a", held, "gone")
    assert all(r.status == "lost" for r in results)
    assert sorted(l["job"] for l in _lines(tmp_path)) == [0, 1, 2, 3]
    assert all("--resume" in l["error"] for l in _lines(tmp_path))


def test_a_failing_job_is_retried_only_when_asked(tmp_path):
    b, results, logs = _batch(tmp_path, 2, retries=1)
    job = b.take()
    job.server = "http://a"
    b.end(job, "error", "node #3 raised tempo.TempoInputError: bad")
    assert job.status == "pending" and b.waiting[-1] is job and "trying again (1 of 1 retries)" in logs[-1]
    b.take(), b.take()
    job.server = "http://b"
    b.end(job, "error", "node #3 raised tempo.TempoInputError: bad")
    assert job.status == "error" and _lines(tmp_path)[-1]["tries"][0]["server"] == "http://a"
    b2, results2, _ = _batch(tmp_path / "x", 2, retries=0, keep_going=False)
    j = b2.take()
    b2.end(j, "error", "bad")
    assert results2[1].status == "cancelled", "without --keep-going the first failure cancels the rest"


def test_exception_types_lose_their_filesystem_path():
    assert runner.exception_name("/tmp/x/custom_nodes/comfyui-tempo.loaders.files.CheckpointError") == "CheckpointError"
    assert runner.exception_name("tempo.TempoInputError") == "tempo.TempoInputError"
    assert runner.exception_name(None) == "an error"
