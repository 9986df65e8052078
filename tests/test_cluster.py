"""Cluster use as the README and docs/cluster.md describe it: a job submitted to a real head node with the dashboard, the
cluster-launcher YAML checked by Ray's own validation, the KubeRay RayJob checked against the RayJob CRD
schema, and check_fits on a cluster that autoscales.

The head node is this test's own (`ray start --head --block` on free ports with its own --temp-dir, in a
new session); it is stopped by signalling that session's process group, never with `ray stop`, which
would stop every Ray instance on the machine.
"""
from __future__ import annotations

import json
import logging
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jsonschema
import pytest
import ray
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

from rayneas.config import load_run
from rayneas.scoring import cluster
from rayneas.spaces import nb201

ROOT = Path(__file__).resolve().parents[1]
CLUSTER = ROOT / "scripts" / "cluster"
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def head():
    """A head node with the dashboard (Jobs API); yields a JobSubmissionClient connected to it."""
    # As the `ray` CLI does: where a token exists (~/.ray/auth_token) the head requires it, so send it.
    from ray._private.authentication.authentication_token_setup import (
        maybe_enable_token_auth_if_token_available,
    )

    with pytest.MonkeyPatch.context() as mp:
        mp.delenv("RAY_AUTH_MODE", raising=False)  # and restored afterwards
        maybe_enable_token_auth_if_token_available(warn_if_disabled=False)
        yield from _head()


def _head():
    temp = tempfile.mkdtemp(prefix="rn-", dir="/tmp")  # short: Ray's socket paths must stay < 108 bytes
    dashboard = free_port()
    ports = {"port": free_port(), "dashboard-port": dashboard, "ray-client-server-port": free_port(),
             "dashboard-agent-listen-port": free_port(), "min-worker-port": 0, "max-worker-port": 0}
    args = [str(BIN / "ray"), "start", "--head", "--block", "--include-dashboard=true", "--num-cpus=2",
            "--dashboard-host=127.0.0.1", f"--temp-dir={temp}", *(f"--{k}={v}" for k, v in ports.items())]
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0"}
    env.pop("RAY_ADDRESS", None)
    log = open(Path(temp) / "head.log", "wb")
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    address = f"http://127.0.0.1:{dashboard}"
    try:
        yield _connect(address, proc, Path(temp) / "head.log")
    finally:
        _stop(proc, temp)
        log.close()


def _connect(address: str, proc: subprocess.Popen, log: Path):
    from ray.job_submission import JobSubmissionClient

    deadline = time.monotonic() + 120
    while True:
        assert proc.poll() is None, f"ray start --head exited: {log.read_text()[-2000:]}"
        try:
            return JobSubmissionClient(address)
        except Exception:  # the dashboard is not up yet (connection refused, 503, ...)
            assert time.monotonic() < deadline, f"no dashboard at {address}: {log.read_text()[-2000:]}"
            time.sleep(1)


def _stop(proc: subprocess.Popen, temp: str) -> None:
    """SIGTERM to the head's process group (`ray start --block` then stops what it started), then SIGKILL."""
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    # Ray workers run in sessions of their own and exit when their raylet is gone; anything of this
    # head's still alive after that (its command line names our --temp-dir) is ended by its pid.
    time.sleep(2)
    for pid in _pids_mentioning(temp):
        os.kill(pid, signal.SIGKILL)
    shutil.rmtree(temp, ignore_errors=True)


def _pids_mentioning(text: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and text in (entry / "cmdline").read_bytes().decode(errors="replace"):
                pids.append(int(entry.name))
        except OSError:  # ended meanwhile, or not ours to read
            continue
    return pids


def test_job_submitted_as_the_readme_says_succeeds_and_logs_the_result(head, tmp_path):
    from ray.job_submission import JobStatus

    runtime_env = yaml.safe_load((CLUSTER / "runtime_env.yaml").read_text())
    entrypoint = f"rayneas run configs/tune_tenas_nb201.yaml --set name=job --runs-dir {shlex.quote(str(tmp_path))}"
    job = head.submit_job(entrypoint=entrypoint, runtime_env={**runtime_env, "working_dir": str(ROOT)})
    deadline = time.monotonic() + 300
    while not (status := head.get_job_status(job)).is_terminal():
        assert time.monotonic() < deadline, f"job {job} still {status} after 300 s"
        time.sleep(1)
    logs = head.get_job_logs(job)
    assert status == JobStatus.SUCCEEDED, logs[-3000:]
    result = json.loads((tmp_path / "job" / "result.json").read_text())
    nb201.parse(result["genotype"])
    assert f'"genotype": "{result["genotype"]}"' in logs and '"finished": true' in logs
    assert "round 3 (ops)" in logs  # the search's own progress lines reach the job log too


# --- cluster launcher and KubeRay files ------------------------------------------------------


def test_cluster_yaml_passes_rays_own_validation_and_pins_the_packages_ray():
    config = yaml.safe_load((CLUSTER / "cluster.yaml").read_text())
    prepared = prepare_config(config)
    validate_config(prepared)
    assert prepared["provider"]["type"] == "local" and prepared["max_workers"] == 0
    setup = "\n".join(config["setup_commands"])
    assert '"$HOME/rayneas[cluster]"' in setup and "ray.__version__.startswith('2.60.')" in setup
    assert ray.__version__.startswith("2.60.")
    with pytest.raises(jsonschema.ValidationError, match="setup_command"):  # the validation is strict
        validate_config(prepare_config({**config, "setup_command": []}))


def _strict(schema: dict) -> dict:
    """Reject unknown fields, as `kubectl apply --validate=strict` does, except where the CRD keeps them."""
    schema = dict(schema)
    if "properties" in schema:
        schema["properties"] = {k: _strict(v) for k, v in schema["properties"].items()}
        if not schema.get("x-kubernetes-preserve-unknown-fields"):
            schema.setdefault("additionalProperties", False)
    if "items" in schema:
        schema["items"] = _strict(schema["items"])
    return schema


def test_rayjob_matches_the_rayjob_crd_schema_and_runs_a_valid_config():
    schema = yaml.safe_load((ROOT / "tests" / "data" / "ray.io_rayjobs.v1.excerpt.yaml").read_text())
    job = yaml.safe_load((CLUSTER / "rayjob.yaml").read_text())
    assert (job["apiVersion"], job["kind"]) == ("ray.io/v1", "RayJob")
    jsonschema.validate(job, _strict(schema))
    spec = job["spec"]
    images = [c["image"] for group in [spec["rayClusterSpec"]["headGroupSpec"], *spec["rayClusterSpec"]
                                       ["workerGroupSpecs"]] for c in group["template"]["spec"]["containers"]]
    assert set(images) == {f"rayproject/ray:{ray.__version__}-py311-cpu"}
    assert spec["rayClusterSpec"]["rayVersion"] == ray.__version__
    ray.runtime_env.RuntimeEnv(**yaml.safe_load(spec["runtimeEnvYAML"]))  # a runtime env Ray accepts
    args = shlex.split(spec["entrypoint"])
    assert args[:4] == ["python", "-m", "rayneas", "run"]
    _, cfg = load_run(ROOT / args[4], [a for a in args[5:] if a != "--set"])
    assert cfg.scoring.autoscaling
    bad = {**job, "spec": {**spec, "entrypoint_typo": "x"}}
    with pytest.raises(jsonschema.ValidationError, match="entrypoint_typo"):
        jsonschema.validate(bad, _strict(schema))


# --- check_fits on an autoscaling cluster -----------------------------------------------------------


def test_check_fits_refuses_a_fixed_cluster_and_warns_on_an_autoscaling_one(monkeypatch, caplog):
    monkeypatch.setattr(ray, "nodes", lambda: [{"Alive": True, "Resources": {"CPU": 2.0}},
                                               {"Alive": False, "Resources": {"CPU": 64.0}}])
    with pytest.raises(ValueError, match=r"holds only 2 of them; .* or set scoring.autoscaling: true"):
        cluster.check_fits(4, 1, 0)
    with caplog.at_level(logging.WARNING, logger="rayneas.scoring.cluster"):
        cluster.check_fits(4, 1, 0, autoscaling=True)
    assert "holds only 2 of them now; waiting for the autoscaler to add nodes" in caplog.text
