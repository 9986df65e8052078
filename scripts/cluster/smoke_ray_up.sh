#!/usr/bin/env bash
# Smoke test of scripts/cluster/cluster.yaml with the real cluster launcher, in the order docs/cluster.md gives:
# ray up -> ray dashboard -> ray job submit (with the token; and refused without it) -> ray submit -> ray down,
# against an sshd on 127.0.0.1 that this script starts, on a one-machine copy of the file (smoke_config.py:
# head 127.0.0.1, no workers, a token of its own, free ports, a private RAY_TMPDIR for the SSH user).
#
# Every command on the node, `ray stop` included, runs as the SSH user "rayneas", an unprivileged account this
# script creates: it cannot signal other users' processes, and its Ray files stay in its own RAY_TMPDIR. On
# exit the script stops what it started (ray down, the dashboard tunnel, sshd) and removes the account (its
# home, venv and authorized key) and the SSH key pair, if it created them. NEVER run it from CI or the tests.
# Needs root (apt-get, useradd, sshd) and the package index (the node's venv installs rayneas and torch); pip
# on the node reads the machine's global pip config (/etc/pip.conf, /etc/xdg/pip): point it at the CPU torch
# wheel there, or setup installs CUDA torch.
#
# Usage, from the repository root, with the venv of `make install` on PATH (for `ray` and `python`):
#   sudo -E env PATH="$PATH" scripts/cluster/smoke_ray_up.sh 2>&1 | tee docs/measurements/smoke_ray_up.log
set -euo pipefail
cd "$(dirname "$0")/../.."
SSH_USER=rayneas
KEY=~/.ssh/rayneas_cluster
WORK=$(mktemp -d /tmp/rayneas-smoke.XXXXXX)
CONFIG=$WORK/cluster.yaml
TOKEN=$WORK/auth_token
CREATED_USER=0
CREATED_KEY=0
SSHD_PID=
TUNNEL_PID=

cleanup() {
  set +e
  [ -f "$CONFIG" ] && ray down -y "$CONFIG"
  [ -n "$TUNNEL_PID" ] && kill "$TUNNEL_PID"
  [ -n "$SSHD_PID" ] && kill "$SSHD_PID"
  if [ "$CREATED_USER" = 1 ]; then
    pkill -u "$SSH_USER"; sleep 2   # only the account this script created: whatever it still runs
    userdel -r "$SSH_USER" && echo "removed the account $SSH_USER and its home"
  fi
  if [ "$CREATED_KEY" = 1 ]; then
    rm -f "$KEY" "$KEY.pub" && echo "removed the key pair $KEY"
  fi
  rm -rf "$WORK"
}
trap cleanup EXIT

apt-get install -y --no-install-recommends openssh-server rsync python3-venv
if ! id -u "$SSH_USER" >/dev/null 2>&1; then
  useradd --create-home --shell /bin/bash "$SSH_USER"
  CREATED_USER=1
  # useradd leaves the password field "!" (locked), and an sshd without PAM refuses every login to a locked
  # account, keys included; "*" means no password can match but the account is open to keys.
  usermod -p '*' "$SSH_USER"
else
  echo "the account $SSH_USER exists already: using it as it is, and leaving it afterwards" >&2
fi
mkdir -p ~/.ssh && chmod 700 ~/.ssh
if [ ! -f "$KEY" ]; then
  ssh-keygen -q -t ed25519 -N "" -f "$KEY"
  CREATED_KEY=1
fi
install -d -m 700 -o "$SSH_USER" "/home/$SSH_USER/.ssh"
install -m 600 -o "$SSH_USER" "$KEY.pub" "/home/$SSH_USER/.ssh/authorized_keys"

# The cluster's token: generated here, so the launching user's own ~/.ray/auth_token is left alone.
(umask 077 && python -c "import secrets; print(secrets.token_hex(32), end='')" > "$TOKEN")
DASHBOARD_PORT=$(python scripts/cluster/smoke_config.py "$CONFIG" "$TOKEN")
LOCAL_PORT=$(python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

# An sshd of our own on 127.0.0.1:22 (the copy's head_ip), stopped by its pid on exit.
if ss -ltn | grep -qE '(127\.0\.0\.1|0\.0\.0\.0|\*|\[::\]):22 '; then
  echo "port 22 is taken by another sshd; stop it or run this on a machine of its own" >&2
  exit 1
fi
ssh-keygen -q -t ed25519 -N "" -f "$WORK/host_key"
mkdir -p /run/sshd
/usr/sbin/sshd -f /dev/null -h "$WORK/host_key" -o ListenAddress=127.0.0.1 -o Port=22 \
  -o PasswordAuthentication=no -o PidFile="$WORK/sshd.pid"
# sshd writes its pid file after it has forked; on a loaded machine that can come after it returns.
for _ in $(seq 50); do [ -s "$WORK/sshd.pid" ] && break; sleep 0.2; done
SSHD_PID=$(cat "$WORK/sshd.pid")

ray up -y "$CONFIG"
ray dashboard -p "$LOCAL_PORT" --remote-port "$DASHBOARD_PORT" "$CONFIG" &
TUNNEL_PID=$!
ADDRESS=http://127.0.0.1:$LOCAL_PORT
# Up once the dashboard answers through the tunnel (401 without the token counts).
for _ in $(seq 60); do
  python -c $'import sys, urllib.error, urllib.request\ntry:\n    urllib.request.urlopen(sys.argv[1], timeout=2)\nexcept urllib.error.HTTPError:\n    pass' \
    "$ADDRESS" 2>/dev/null && break
  sleep 1
done
if RAY_AUTH_MODE=disabled ray job list --address "$ADDRESS" >"$WORK/open.log" 2>&1; then
  echo "the Jobs API answered without the token" >&2
  exit 1
fi
echo "without the token the Jobs API refuses: $(grep -m1 -i 'auth' "$WORK/open.log")"
export RAY_AUTH_MODE=token RAY_AUTH_TOKEN_PATH=$TOKEN
ray job submit --address "$ADDRESS" --working-dir . --runtime-env scripts/cluster/runtime_env.yaml -- \
  rayneas run configs/tune_tenas_nb201.yaml --set name=smoke_job --runs-dir "/home/$SSH_USER/runs" \
  | tee "$WORK/job.log"
grep -q '"finished": true' "$WORK/job.log"
ray exec "$CONFIG" "cat ~/runs/smoke_job/result.json"
ray submit "$CONFIG" scripts/cluster/search.py -- run rayneas/configs/tune_tenas_nb201.yaml \
  --runs-dir runs | tee "$WORK/submit.log"
grep -q '"finished": true' "$WORK/submit.log"
echo "smoke test passed: ray up / ray dashboard / ray job submit (token) / ray submit / ray down"
