#!/usr/bin/env bash
# Smoke test of scripts/cluster/cluster.yaml with the real cluster launcher: `ray up`, `ray submit` of a
# small search, `ray down`, against an sshd on 127.0.0.1 that this script starts (and stops).
#
# NEVER run it from CI or the tests, and not on a machine where anyone else runs Ray: cluster.yaml's
# head_start_ray_commands and `ray down` run `ray stop`, which stops every Ray process of the SSH user
# (here the user "rayneas", so other users' Ray survives, but run it on a machine of its own anyway).
# Needs root (apt-get, useradd, sshd) and network access for apt and pip. Run once by hand on 2026-12-04:
# docs/measurements/smoke_ray_up.log. pip on the node reads the machine's global pip config
# (/etc/pip.conf, /etc/xdg/pip): point it at the CPU torch wheel there, or setup installs CUDA torch.
#
# Usage, from the repository root, with the venv of `make install` on PATH (for `ray`):
#   sudo -E env PATH="$PATH" scripts/cluster/smoke_ray_up.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
CONFIG=scripts/cluster/cluster.yaml
KEY=~/.ssh/rayneas_cluster
SSH_USER=rayneas
SSHD_DIR=$(mktemp -d /tmp/rayneas-sshd.XXXXXX)

apt-get install -y --no-install-recommends openssh-server rsync python3-venv
id -u "$SSH_USER" >/dev/null 2>&1 || useradd --create-home --shell /bin/bash "$SSH_USER"
# useradd leaves the password field "!" (locked), and an sshd without PAM refuses every login to a
# locked account, keys included; "*" means no password can match but the account is open to keys.
usermod -p '*' "$SSH_USER"
mkdir -p ~/.ssh && chmod 700 ~/.ssh
test -f "$KEY" || ssh-keygen -q -t ed25519 -N "" -f "$KEY"
install -d -m 700 -o "$SSH_USER" "/home/$SSH_USER/.ssh"
install -m 600 -o "$SSH_USER" "$KEY.pub" "/home/$SSH_USER/.ssh/authorized_keys"

# An sshd of our own on 127.0.0.1:22 (cluster.yaml's head_ip), stopped by its pid on exit.
if ss -ltn | grep -qE '(127\.0\.0\.1|0\.0\.0\.0|\*|\[::\]):22 '; then
  echo "port 22 is taken by another sshd; stop it or run this on a machine of its own" >&2
  exit 1
fi
ssh-keygen -q -t ed25519 -N "" -f "$SSHD_DIR/host_key"
mkdir -p /run/sshd
/usr/sbin/sshd -f /dev/null -h "$SSHD_DIR/host_key" -o ListenAddress=127.0.0.1 -o Port=22 \
  -o PasswordAuthentication=no -o PidFile="$SSHD_DIR/sshd.pid"
cleanup() {
  ray down -y "$CONFIG" || true
  kill "$(cat "$SSHD_DIR/sshd.pid")" || true
  rm -rf "$SSHD_DIR"
}
trap cleanup EXIT

ray up -y "$CONFIG"
ray submit "$CONFIG" scripts/cluster/search.py -- run rayneas/configs/tune_tenas_nb201.yaml \
  --runs-dir rayneas/runs | tee "$SSHD_DIR/submit.log"
grep -q '"finished": true' "$SSHD_DIR/submit.log"
echo "smoke test passed: ray up / ray submit / ray down"
