"""Cluster use as docs/cluster.md describes it: a job submitted to a real head node with the dashboard, a head
that requires a token taking jobs with it only, the cluster-launcher YAML (and smoke_ray_up.sh's one-machine
copy of it) checked by Ray's own validation, its placeholders, ports and token settings, the KubeRay RayJob
(token auth, volume, GPU group) checked against the RayJob CRD schema, and check_fits on a cluster that
autoscales.

Each head node is this test's own (`ray start --head --block` on free ports with its own --temp-dir, in a
new session); it is stopped by signalling that session's process group, never with `ray stop`, which
would stop every Ray instance on the machine.
"""
from __future__ import annotations

import ipaddress
import json
import logging
import os
import secrets
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
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
IMAGE_CHECKOUT = "/home/ray/rayneas"  # where docker/Dockerfile puts this repository in the image


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


@pytest.fixture(scope="module")
def token_head(tmp_path_factory):
    """A head that requires a token of its own, as cluster.yaml's nodes run (RAY_AUTH_MODE=token and a token
    file); yields (dashboard address, token file)."""
    token = tmp_path_factory.mktemp("token") / "auth_token"
    token.write_text(secrets.token_hex(32))
    token.chmod(0o600)
    env = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token)}
    for address in _head(env, ready=_answers):
        yield address, token


def _head(extra_env: dict[str, str] | None = None, ready=None):
    temp = tempfile.mkdtemp(prefix="rn-", dir="/tmp")  # short: Ray's socket paths must stay < 108 bytes
    dashboard = free_port()
    ports = {"port": free_port(), "dashboard-port": dashboard, "ray-client-server-port": free_port(),
             "dashboard-agent-listen-port": free_port(), "min-worker-port": 0, "max-worker-port": 0}
    args = [str(BIN / "ray"), "start", "--head", "--block", "--include-dashboard=true", "--num-cpus=2",
            "--dashboard-host=127.0.0.1", f"--temp-dir={temp}", *(f"--{k}={v}" for k, v in ports.items())]
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}", "RAY_ENABLE_UV_RUN_RUNTIME_ENV": "0",
           **(extra_env or {})}
    env.pop("RAY_ADDRESS", None)
    log = open(Path(temp) / "head.log", "wb")
    proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    address = f"http://127.0.0.1:{dashboard}"
    try:
        yield (ready or _connect)(address, proc, Path(temp) / "head.log")
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


def _answers(address: str, proc: subprocess.Popen, log: Path) -> str:
    """``address`` once its dashboard answers HTTP (a 401 for want of a token counts)."""
    deadline = time.monotonic() + 120
    while True:
        assert proc.poll() is None, f"ray start --head exited: {log.read_text()[-2000:]}"
        try:
            urllib.request.urlopen(address, timeout=2)
            return address
        except urllib.error.HTTPError:
            return address
        except OSError:
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


def test_a_token_cluster_takes_jobs_with_the_token_only(token_head):
    """What docs/cluster.md tells a user: with RAY_AUTH_MODE=token and the cluster's token the Jobs API answers;
    without them (or with another token) it refuses."""
    address, token = token_head
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_AUTH")}
    env["PATH"] = f"{BIN}{os.pathsep}{env['PATH']}"

    def job_list(**auth: str) -> subprocess.CompletedProcess:
        return subprocess.run(["ray", "job", "list", "--address", address], env={**env, **auth}, capture_output=True,
                              text=True, timeout=180)

    accepted = job_list(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(token))
    assert accepted.returncode == 0, accepted.stderr[-2000:]
    other = token.with_name("other_token")
    other.write_text(secrets.token_hex(32))
    for refused in (job_list(RAY_AUTH_MODE="disabled"), job_list(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN_PATH=str(other))):
        assert refused.returncode != 0 and "Token authentication is enabled" in refused.stdout + refused.stderr


# --- cluster launcher and KubeRay files ------------------------------------------------------


def test_cluster_yaml_passes_rays_own_validation_and_pins_the_packages_ray():
    config = yaml.safe_load((CLUSTER / "cluster.yaml").read_text())
    prepared = prepare_config(config)
    validate_config(prepared)
    provider = config["provider"]
    # No max_workers: Ray keeps every listed worker (a max_workers below len(worker_ips) drops some).
    assert "max_workers" not in config and prepared["max_workers"] == len(provider["worker_ips"]) == 2
    assert prepared["provider"]["type"] == "local"
    setup = "\n".join(config["setup_commands"])
    assert '"$HOME/rayneas[cluster]"' in setup and "ray.__version__.startswith('2.60.')" in setup
    assert ray.__version__.startswith("2.60.")
    with pytest.raises(jsonschema.ValidationError, match="setup_command"):  # the validation is strict
        validate_config(prepare_config({**config, "setup_command": []}))


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:  # a host name
        return address.lower() == "localhost" or address.lower().endswith(".localhost")


def test_cluster_yaml_placeholders_are_not_loopback_and_workers_refuse_a_loopback_head():
    provider = yaml.safe_load((CLUSTER / "cluster.yaml").read_text())["provider"]
    addresses = [provider["head_ip"], *provider["worker_ips"]]
    assert not any(_is_loopback(a) for a in addresses)
    assert all(a.endswith(".invalid") for a in addresses)  # placeholders that never resolve (RFC 2606)
    assert _is_loopback("127.0.1.1") and _is_loopback("localhost") and not _is_loopback("10.0.0.5")
    # The worker's first start command refuses a head that resolved to loopback before `ray start` runs.
    guard = yaml.safe_load((CLUSTER / "cluster.yaml").read_text())["worker_start_ray_commands"][0]
    for head, refused in [("127.0.1.1", True), ("localhost", True), ("10.0.0.5", False)]:
        run = subprocess.run(["bash", "-c", guard], env={**os.environ, "RAY_HEAD_IP": head}, capture_output=True,
                             text=True)
        assert (run.returncode != 0) == refused, (head, run.stderr)
        assert ("set provider.head_ip to an address the workers reach" in run.stderr) == refused


def test_cluster_yaml_lists_and_pins_the_ports_it_opens():
    text = (CLUSTER / "cluster.yaml").read_text()
    config = yaml.safe_load(text)
    starts = {"head": config["head_start_ray_commands"][-1], "worker": config["worker_start_ray_commands"][-1]}
    flags = ["--node-manager-port=6380", "--object-manager-port=6381", "--runtime-env-agent-port=6382",
             "--dashboard-agent-grpc-port=6383", "--dashboard-agent-listen-port=52365",
             "--metrics-export-port=6384", "--min-worker-port=10002", "--max-worker-port=19999"]
    for start in starts.values():
        assert all(flag in start for flag in flags), start
    assert "--port=6379" in starts["head"] and "--dashboard-host=127.0.0.1" in starts["head"]
    ports = text[text.index("# Ports to open"):text.index("cluster_name:")]
    for port in ("6379", "6380", "6381", "6382", "6383", "52365", "6384", "10002-19999", "22"):
        assert port in ports
    assert "8265 stays closed" in ports


def test_smoke_copy_runs_on_one_shared_machine_without_rays_default_ports(tmp_path):
    """smoke_ray_up.sh's copy of cluster.yaml: head 127.0.0.1, no workers, its own token, no default ports, and
    a RAY_TMPDIR of its own for the SSH user (its `ray stop` deletes /tmp/ray's address file otherwise)."""
    out, token = tmp_path / "smoke.yaml", tmp_path / "auth_token"
    run = subprocess.run([sys.executable, str(CLUSTER / "smoke_config.py"), str(out), str(token)], capture_output=True,
                         text=True, check=True)
    smoke = yaml.safe_load(out.read_text())
    validate_config(prepare_config(smoke))
    assert (smoke["provider"]["head_ip"], smoke["provider"]["worker_ips"]) == ("127.0.0.1", [])
    assert smoke["file_mounts"]["~/.ray/auth_token"] == str(token)
    assert smoke["setup_commands"][1].endswith("echo 'export RAY_TMPDIR=$HOME/ray-tmp' >> ~/.bashrc")
    start = smoke["head_start_ray_commands"][-1]
    assert f"--dashboard-port={int(run.stdout)} " in start
    for default in ("=6379 ", "=8265 ", "=6380 ", "=6381 ", "=6382 ", "=6383 ", "=52365 ", "=6384 "):
        assert default not in start


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


def _rayjob() -> tuple[dict, dict]:
    documents = {d["kind"]: d for d in yaml.safe_load_all((CLUSTER / "rayjob.yaml").read_text())}
    assert set(documents) == {"RayJob", "PersistentVolumeClaim"}
    return documents["RayJob"], documents["PersistentVolumeClaim"]


def _gpu_group() -> dict:
    """The commented GPU worker group of rayjob.yaml, uncommented."""
    lines = (CLUSTER / "rayjob.yaml").read_text().splitlines()
    first = lines.index("      # - groupName: gpu")
    block = [line.replace("# ", "", 1) for line in lines[first:] if line.startswith("      #")]
    return yaml.safe_load("\n".join(block))[0]


def test_both_cluster_files_turn_on_token_authentication():
    launcher = yaml.safe_load((CLUSTER / "cluster.yaml").read_text())
    assert launcher["file_mounts"]["~/.ray/auth_token"] == "~/.ray/auth_token"  # Ray's default token path
    setup = launcher["setup_commands"]
    assert "chmod 600 ~/.ray/auth_token" in setup
    assert "grep -q RAY_AUTH_MODE ~/.bashrc || echo 'export RAY_AUTH_MODE=token' >> ~/.bashrc" in setup
    # ~/.bashrc is sourced before every launcher command (setup runs before the start commands), so every
    # `ray start` and `ray submit` on a node runs with RAY_AUTH_MODE=token and reads the token file.
    job, _ = _rayjob()
    assert job["spec"]["rayClusterSpec"]["authOptions"] == {"mode": "token", "secretName": "rayneas-ray-token"}


def test_rayjob_matches_the_rayjob_crd_schema_and_runs_a_valid_config():
    schema = _strict(yaml.safe_load((ROOT / "tests" / "data" / "ray.io_rayjobs.v1.excerpt.yaml").read_text()))
    job, claim = _rayjob()
    assert (job["apiVersion"], job["kind"]) == ("ray.io/v1", "RayJob")
    jsonschema.validate(job, schema)
    spec = job["spec"]
    assert spec["rayClusterSpec"]["rayVersion"] == ray.__version__
    assert spec["backoffLimit"] > 0 and spec["activeDeadlineSeconds"] > 0
    runtime_env = ray.runtime_env.RuntimeEnv(**yaml.safe_load(spec["runtimeEnvYAML"]))  # a runtime env Ray accepts
    assert "pip" not in runtime_env and "working_dir" not in runtime_env  # the image has everything
    head = spec["rayClusterSpec"]["headGroupSpec"]["template"]["spec"]
    [head_container] = head["containers"]
    assert head_container["resources"]["requests"] == head_container["resources"]["limits"]
    # The run folder is on the claim, mounted where the entrypoint writes it.
    [mount] = head_container["volumeMounts"]
    [volume] = head["volumes"]
    assert volume == {"name": mount["name"], "persistentVolumeClaim": {"claimName": claim["metadata"]["name"]}}
    entrypoint = spec["entrypoint"]
    assert f"--runs-dir {mount['mountPath']}" in entrypoint
    assert f"if [ -f {mount['mountPath']}/tenas_nb201/state.json ]; then RESUME=--resume; fi;" in entrypoint
    args = shlex.split(entrypoint.split(";")[-1])
    assert args[:4] == ["python", "-m", "rayneas", "run"] and args[-1] == "$RESUME"
    config = ROOT / Path(args[4]).relative_to(IMAGE_CHECKOUT)
    _, cfg = load_run(config, [a for a in args[7:-1] if a != "--set"])
    assert cfg.scoring.autoscaling and cfg.name == "tenas_nb201"
    bad = {**job, "spec": {**spec, "entrypoint_typo": "x"}}
    with pytest.raises(jsonschema.ValidationError, match="entrypoint_typo"):
        jsonschema.validate(bad, schema)


def test_rayjob_images_come_from_the_dockerfile_and_the_gpu_group_is_valid_when_uncommented():
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    assert f"ARG RAY_VERSION={ray.__version__}\n" in dockerfile
    assert "FROM rayproject/ray:${RAY_VERSION}-py311-${VARIANT}" in dockerfile
    assert "ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu" in dockerfile  # CPU torch by default
    assert f"WORKDIR {IMAGE_CHECKOUT}" in dockerfile
    job, _ = _rayjob()
    cluster_spec = job["spec"]["rayClusterSpec"]
    groups = [cluster_spec["headGroupSpec"], *cluster_spec["workerGroupSpecs"]]
    assert {c["image"] for g in groups for c in g["template"]["spec"]["containers"]} == {"REGISTRY/rayneas:COMMIT-cpu"}
    gpu = _gpu_group()
    schema = _strict(yaml.safe_load((ROOT / "tests" / "data" / "ray.io_rayjobs.v1.excerpt.yaml").read_text()))
    with_gpu = {**job, "spec": {**job["spec"], "rayClusterSpec": {
        **cluster_spec, "workerGroupSpecs": [*cluster_spec["workerGroupSpecs"], gpu]}}}
    jsonschema.validate(with_gpu, schema)
    [container] = gpu["template"]["spec"]["containers"]
    assert container["image"] == "REGISTRY/rayneas:COMMIT-gpu"
    assert container["resources"]["requests"]["nvidia.com/gpu"] == container["resources"]["limits"]["nvidia.com/gpu"]
    assert (ROOT / ".dockerignore").read_text().splitlines()[1:4] == [".git", ".venv", "runs"]


# --- check_fits on an autoscaling cluster -----------------------------------------------------------


def test_check_fits_refuses_a_fixed_cluster_and_warns_on_an_autoscaling_one(monkeypatch, caplog):
    monkeypatch.setattr(ray, "nodes", lambda: [{"Alive": True, "Resources": {"CPU": 2.0}},
                                               {"Alive": False, "Resources": {"CPU": 64.0}}])
    with pytest.raises(ValueError, match=r"holds only 2 of them; .* or set scoring.autoscaling: true"):
        cluster.check_fits(4, 1, 0)
    with caplog.at_level(logging.WARNING, logger="rayneas.scoring.cluster"):
        cluster.check_fits(4, 1, 0, autoscaling=True)
    assert "holds only 2 of them now; waiting for the autoscaler to add nodes" in caplog.text
