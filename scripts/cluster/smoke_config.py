"""The copy of cluster.yaml that smoke_ray_up.sh runs on one machine shared with other Ray users.

Usage: python scripts/cluster/smoke_config.py OUT.yaml TOKEN_FILE  (prints the head's dashboard port)

The shipped file's addresses are placeholders, so the copy has head_ip
127.0.0.1 and no workers; its token file is the smoke test's own (the
launching user's ~/.ray/auth_token stays untouched); every port the start
command pins gets a free one instead of Ray's defaults (6379, 8265, ...),
which another user's Ray may hold; and the SSH user's Ray keeps its files
under its own RAY_TMPDIR: `ray stop` deletes the cluster-address file in
the default /tmp/ray, which is world-writable and shared by every user.
"""
from __future__ import annotations

import re
import socket
import sys
from pathlib import Path
from typing import Any

import yaml

CLUSTER_YAML = Path(__file__).with_name("cluster.yaml")
PORT_FLAGS = ("port", "dashboard-port", "node-manager-port", "object-manager-port", "runtime-env-agent-port",
              "dashboard-agent-grpc-port", "dashboard-agent-listen-port", "metrics-export-port")
PRIVATE_TMP = ["mkdir -p ~/ray-tmp",
               "grep -q RAY_TMPDIR ~/.bashrc || echo 'export RAY_TMPDIR=$HOME/ray-tmp' >> ~/.bashrc"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def smoke_config(config: dict[str, Any], token: Path) -> tuple[dict[str, Any], dict[str, int]]:
    """(the one-machine copy of ``config``, the free port chosen for each pinned port flag)."""
    ports = {flag: free_port() for flag in PORT_FLAGS}
    pattern = re.compile(r"--(" + "|".join(re.escape(f) for f in PORT_FLAGS) + r")=\d+")
    start = [pattern.sub(lambda m: f"--{m[1]}={ports[m[1]]}", command) for command in config["head_start_ray_commands"]]
    smoke = {**config,
             "provider": {**config["provider"], "head_ip": "127.0.0.1", "worker_ips": []},
             "file_mounts": {**config["file_mounts"], "~/.ray/auth_token": str(token)},
             "setup_commands": [*PRIVATE_TMP, *config["setup_commands"]],
             "head_start_ray_commands": start}
    return smoke, ports


def main(out: str, token: str) -> None:
    smoke, ports = smoke_config(yaml.safe_load(CLUSTER_YAML.read_text()), Path(token))
    Path(out).write_text(yaml.safe_dump(smoke, sort_keys=False, width=120))
    print(ports["dashboard-port"])


if __name__ == "__main__":
    main(*sys.argv[1:])
