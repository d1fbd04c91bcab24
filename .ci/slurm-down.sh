#!/usr/bin/env bash
# Stop what .ci/slurm-up.sh started, by the pids it recorded (never by process name).
# Jobs still queued or running are cancelled through Slurm first.
#   MLP_SLURM_PURGE=1  also remove the state directory (job ids start again at 1)
set -uo pipefail
STATE=${MLP_SLURM_STATE:-/tmp/mlp-slurm}
PIDS=$STATE/run
running() { local s; s=$(ps -o stat= -p "$1" 2>/dev/null) || return 1; [[ $s != Z* ]]; }
stop() { # name pidfile
  local pid; [ -s "$2" ] || return 0; pid=$(cat "$2")
  if running "$pid"; then
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 100); do running "$pid" || break; sleep 0.1; done
    running "$pid" && kill -KILL "$pid" 2>/dev/null
    echo "[slurm-down] stopped $1 ($pid)"
  fi
  rm -f "$2"
}
if [ -s "$PIDS/slurmctld.pid" ] && running "$(cat "$PIDS/slurmctld.pid")"; then
  ids=$(squeue -h -t PD,R,CG,S -o %i 2>/dev/null | tr '\n' ' ')
  if [ -n "${ids// /}" ]; then
    # shellcheck disable=SC2086
    scancel $ids 2>/dev/null
    for _ in $(seq 100); do [ -z "$(squeue -h -t PD,R,CG,S -o %i 2>/dev/null)" ] && break; sleep 0.2; done
  fi
fi
for pf in "$PIDS"/slurmd-*.pid; do
  [ -e "$pf" ] && stop "$(basename "$pf" .pid)" "$pf" &
done
wait
stop slurmctld "$PIDS/slurmctld.pid"
stop slurmdbd "$PIDS/slurmdbd.pid"
stop mariadbd "$PIDS/mariadbd.pid"
if [ -s "$PIDS/munged.pid" ]; then stop munged "$PIDS/munged.pid"; rm -f /run/munge/munged.pid; fi
if [ "${MLP_SLURM_PURGE:-0}" = 1 ]; then rm -rf "$STATE"; fi
exit 0
