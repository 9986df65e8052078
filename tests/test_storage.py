"""Outputs in object storage: a real S3-compatible server (moto's, on 127.0.0.1) started by the test.

Everything goes through the AWS variables a user would set (`helpers.s3_server`): a NetPool at an
``s3://`` location shared by Ray workers; a run folder mirrored to S3 (`rayneas.runs.staging`), pushed
after every save with only what changed; a TE-NAS run killed and resumed from S3 with the
uninterrupted run's table, then plotted and exported from there; an EAS search whose run folder and
NetPool live in S3; a Tune experiment stored in S3 interrupted and finished with ``--resume``.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pyarrow.fs as pafs
import pytest
import ray
import yaml
from ray.tune import Tuner

from helpers import interrupt_tune, rayneas_process, s3_server, stored_sizes, wait_for
from rayneas.cli import main
from rayneas.config import load_document, parse_run
from rayneas.eas.netpool import NetPoolStore, NetRecord, call, evaluate_once, netpool_actor, netpool_name
from rayneas.runs.staging import MANIFEST, Mirror
from rayneas.storage import Location, StorageError, check_shared, open_location
from rayneas.tenas.search import run_tenas
from rayneas.spaces import nb201
from rayneas.tune.experiment import load_experiment, trainable
from test_cluster import BIN, CLUSTER, ROOT, head  # noqa: F401 (head: the job test's fixture)
from test_netpool import ARCHS, fake_result, wait_until_gone, worker

CONFIGS = ROOT / "configs"


def read(uri: str) -> bytes:
    return open_location(uri).read_bytes()


@pytest.fixture(scope="module")
def s3():
    with s3_server() as server:
        yield server


@pytest.fixture(scope="module")
def ray_s3(s3):
    """A local Ray started after the server, so that its workers inherit the AWS variables."""
    ray.cloudpickle.register_pickle_by_value(sys.modules["test_netpool"])
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


def test_a_mirror_uploads_what_changed_and_a_push_cut_short_keeps_the_last_whole_checkpoint(s3, tmp_path,
                                                                                            monkeypatch):
    run, uri = tmp_path / "run", f"{s3.bucket}/mirror/run"
    for rel, text in {"state.json": "1", "checkpoint/a": "a1", "checkpoint/b": "b1", "tb/events": "e1",
                      ".state.json.tmp": "half"}.items():
        (run / rel).parent.mkdir(parents=True, exist_ok=True)
        (run / rel).write_text(text)
    mirror = Mirror(uri, run)
    uploads: list[str] = []
    upload = Mirror._upload
    monkeypatch.setattr(Mirror, "_upload", lambda self, rel: (uploads.append(rel), upload(self, rel)))
    mirror.push(atomic=["checkpoint"])
    assert sorted(uploads) == ["checkpoint/a", "checkpoint/b", "state.json", "tb/events"]  # no temporary file
    assert read(f"{uri}/checkpoint.v1/a") == b"a1" and read(f"{uri}/state.json") == b"1"
    uploads.clear()
    (run / "state.json").write_text("2")
    mirror.push(atomic=["checkpoint"])
    assert uploads == ["state.json"]  # only what changed
    (run / "checkpoint" / "a").write_text("a2")
    mirror.push(atomic=["checkpoint"])
    assert sorted(uploads[1:]) == ["checkpoint/a", "checkpoint/b"]  # the whole folder, as a new version
    assert not open_location(f"{uri}/checkpoint.v1").exists() and read(f"{uri}/checkpoint.v2/b") == b"b1"

    (run / "checkpoint" / "a").write_text("a3")  # a push killed after its first upload:
    (run / "checkpoint" / "b").write_text("b3")
    monkeypatch.setattr(Mirror, "_upload", lambda self, rel: (_ for _ in ()).throw(KeyboardInterrupt)
                        if uploads.append(rel) or len(uploads) > 4 else upload(self, rel))
    with pytest.raises(KeyboardInterrupt):
        mirror.push(atomic=["checkpoint"])
    copy = tmp_path / "copy"
    assert Mirror(uri, copy).pull()
    assert (copy / "checkpoint" / "a").read_text() == "a2" and (copy / "checkpoint" / "b").read_text() == "b1"
    assert sorted(p.relative_to(copy).as_posix() for p in copy.rglob("*") if p.is_file()) == [
        "checkpoint/a", "checkpoint/b", "state.json", "tb/events"]


def test_a_local_runs_dir_on_a_cluster_of_several_nodes_fails_before_any_work(tmp_path):
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    cluster.add_node(num_cpus=1)
    try:
        runs, log = tmp_path / "runs", tmp_path / "log.txt"
        args = ["run", str(CONFIGS / "tune_tenas_nb201.yaml"), "--runs-dir", str(runs)]
        assert rayneas_process(args, cluster.address, log).wait(timeout=300) == 2
        assert (f"rayneas: error: --runs-dir {runs} is on one node's disk, but the Ray cluster has 2 nodes; give a URI "
                "every node reaches (s3://bucket/runs, gs://bucket/runs) or a shared mount as file:///mount/runs"
                in log.read_text())
        assert not runs.exists()  # nothing was started
    finally:
        cluster.shutdown()


def test_a_netpool_in_s3_is_shared_by_ray_workers_and_reloaded_by_a_new_actor(ray_s3, s3):
    location = f"{s3.bucket}/netpool-test/netpool.parquet"
    pool = netpool_actor(location)
    a, b = ray.get([worker.remote(ARCHS, location), worker.remote(ARCHS[::-1], location)])
    assert set(a).isdisjoint(b) and set(a) | set(b) == set(ARCHS)
    evaluate_once(pool, "conv-4-3", lambda: fake_result("conv-4-3"), weights=lambda: b"W")
    bucket = open_location(location)
    assert isinstance(bucket.fs, pafs.S3FileSystem)
    assert len(bucket.files(".parquet")) == len(ARCHS) + 1  # one part per record, in the bucket
    ray.kill(pool)
    wait_until_gone(netpool_name(location))
    restarted = netpool_actor(location)
    assert sorted(r.arch for r in ray.get(restarted.records.remote())) == sorted([*ARCHS, "conv-4-3"])
    assert call(restarted, "weights", "conv-4-3", "") == b"W"
    assert NetPoolStore(location).get("conv-4-3") == NetRecord("conv-4-3", 0.08, 2, 0.5)
    ray.kill(restarted)


def tenas_doc(**changes) -> dict:
    """configs/tune_tenas_nb201.yaml's small search, scored in the driver (so a kill is the driver's)."""
    data = {**load_document(CONFIGS / "tune_tenas_nb201.yaml"), **changes}
    data["scoring"] = {**data["scoring"], "num_actors": 0}
    return data


@pytest.fixture(scope="module")
def tenas_reference(tmp_path_factory) -> dict:
    """The uninterrupted local run: its state.json."""
    run_dir = tmp_path_factory.mktemp("reference")
    run_tenas(parse_run({k: v for k, v in tenas_doc().items() if k != "tune"})[1], run_dir)
    return json.loads((run_dir / "state.json").read_text())


def test_a_killed_tenas_run_resumes_from_s3_with_the_uninterrupted_table_and_plots_and_exports_there(
        ray_s3, s3, tenas_reference, tmp_path):
    data = tenas_doc(name="killed")
    config = tmp_path / "small.yaml"
    config.write_text(yaml.safe_dump(data))
    runs, log = f"{s3.bucket}/runs", tmp_path / "log.txt"
    args = ["run", str(config), "--runs-dir", runs]
    proc = rayneas_process(args, ray_s3, log)
    wait_for(lambda: stored_sizes(runs, f"killed/{MANIFEST}"), proc, "round 1's state in S3")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not json.loads(read(f"{runs}/killed/state.json"))["finished"]
    assert main([*args, "--resume"]) == 0
    state = json.loads(read(f"{runs}/killed/state.json"))
    assert state["finished"] and state["candidates"] == tenas_reference["candidates"]
    assert json.loads(read(f"{runs}/killed/result.json"))["genotype"] == state["genotype"]
    assert main(["plot", f"{runs}/killed"]) == 0 and read(f"{runs}/killed/trajectory.png")[:4] == b"\x89PNG"
    assert main(["export", f"{runs}/killed"]) == 0
    assert json.loads(read(f"{runs}/killed/export/genotype.json"))["genotype"] == state["genotype"]


def test_an_eas_search_writes_its_run_folder_and_netpool_to_s3_and_exports_from_there(ray_s3, s3, tmp_path):
    data = {**load_document(CONFIGS / "eas_digits.yaml"), "name": "eas", "start": {"epochs": 1},
            "child": {"finetune_epochs": 1},
            "budget": {"networks": 2},
            "controller": {"algorithm": "reinforce", "networks_per_iteration": 2, "num_env_runners": 1}}
    config = tmp_path / "eas.yaml"
    config.write_text(yaml.safe_dump(data))
    runs = f"{s3.bucket}/runs"
    assert main(["run", str(config), "--runs-dir", runs]) == 0
    run = f"{runs}/eas"
    result = json.loads(read(f"{run}/result.json"))
    assert open_location(f"{run}/networks.parquet").read_parquet().num_rows == result["networks_evaluated"] == 2
    manifest = json.loads(read(f"{run}/{MANIFEST}"))
    assert json.loads(read(f"{run}/checkpoint.v{manifest['versions']['checkpoint']}/search.json"))["iterations"] == 1
    pool = NetPoolStore(f"{run}/netpool.parquet")  # written there directly, not through the mirror
    assert any(r.arch == result["best"]["arch"] and pool.weights(r.arch, r.setting) for r in pool.records())
    assert not [f for f in manifest["files"] if "netpool" in f]
    assert main(["export", run]) == 0 and read(f"{run}/export/state_dict.pt")


def test_an_interrupted_tune_experiment_in_s3_finishes_with_resume(ray_s3, s3, tenas_reference, tmp_path):
    data = tenas_doc()
    data["tune"] = {**data["tune"], "storage_path": f"{s3.bucket}/tune", "params": {"seed": {"grid": [0]}}}
    config = tmp_path / "tune.yaml"
    config.write_text(yaml.safe_dump(data))
    experiment = load_experiment(config)
    interrupt_tune(config, ray_s3, experiment.path, "*/checkpoint_000000/state.json", "*/checkpoint_000003",
                   tmp_path / "log.txt")
    assert main(["tune", str(config), "--resume"]) == 0
    (result,) = Tuner.restore(experiment.path, trainable(experiment)).get_results()
    assert result.error is None and result.metrics["training_iteration"] == 4
    assert result.metrics["iterations_since_restore"] < 4  # continued, not restarted
    state = Location(result.filesystem, f"{result.path}/run/state.json").read_bytes()  # Tune's path has no scheme
    assert json.loads(state)["candidates"] == tenas_reference["candidates"]


def test_a_relative_output_inside_a_ray_job_fails_and_an_absolute_path_or_uri_passes(tmp_path, monkeypatch):
    job = tmp_path / "runtime_resources" / "working_dir_files" / "_ray_pkg_1"
    job.mkdir(parents=True)
    monkeypatch.chdir(job)
    with pytest.raises(StorageError, match=r"^--runs-dir runs is relative to this Ray job's working directory, "
                                           r"which Ray deletes after the job; give a URI"):
        check_shared("runs", "--runs-dir")
    check_shared(str(tmp_path / "runs"), "--runs-dir")  # absolute: stays
    check_shared("s3://bucket/runs", "--runs-dir")


def test_a_job_submitted_as_docs_storage_says_leaves_its_result_in_s3(head, s3, tmp_path):  # noqa: F811
    """docs/storage.md's example to the letter: the S3 settings in a copy of the runtime env, the output a URI."""
    runtime_env = yaml.safe_load((CLUSTER / "runtime_env.yaml").read_text())
    runtime_env["env_vars"].update(s3.env)
    (tmp_path / "runtime_env_s3.yaml").write_text(yaml.safe_dump(runtime_env))
    address = head.get_address()
    command = [str(BIN / "ray"), "job", "submit", "--address", address, "--working-dir", ".",
               "--runtime-env", str(tmp_path / "runtime_env_s3.yaml"), "--",
               "rayneas", "run", "configs/tune_tenas_nb201.yaml", "--set", "name=job",
               "--runs-dir", f"{s3.bucket}/jobs"]
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and k != "RAY_ADDRESS"}
    done = subprocess.run(command, cwd=ROOT, env={**env, "PATH": f"{BIN}{os.pathsep}{env['PATH']}"},
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    result = json.loads(read(f"{s3.bucket}/jobs/job/result.json"))  # read back here, after the job
    nb201.parse(result["genotype"])
    assert f'"run_dir": "{s3.bucket}/jobs/job"' in done.stdout
