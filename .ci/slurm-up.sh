#!/usr/bin/env bash
# Start a small real Slurm cluster on this host for the Slurm tests (tests/it/slurm.rs):
# munged, slurmctld and one slurmd per emulated node (n1, n2 by default), from Debian's
# packages, without systemd or cgroups. With MLP_SLURM_DBD=1 also MariaDB + slurmdbd, so
# that `sacct` works (otherwise mlp reads final job states with `scontrol show job`).
# Idempotent: with the daemons up it only checks them. Must run as root.
#
#   MLP_SLURM_STATE  state, logs and pid files (default /tmp/mlp-slurm)
#   MLP_SLURM_NODES  emulated nodes (default 2)
#   MLP_SLURM_CPUS   CPUs each node advertises (default 4: jobs may overcommit the host)
#   MLP_SLURM_DBD    1: accounting through slurmdbd (default 0)
set -euo pipefail

STATE=${MLP_SLURM_STATE:-/tmp/mlp-slurm}
NODES=${MLP_SLURM_NODES:-2}
CPUS=${MLP_SLURM_CPUS:-4}
DBD=${MLP_SLURM_DBD:-0}
HOST=$(hostname -s)
PIDS=$STATE/run
say() { echo "[slurm-up] $*"; }
# Not a zombie: this container's init reaps orphans only now and then.
running() { local s; s=$(ps -o stat= -p "$1" 2>/dev/null) || return 1; [[ $s != Z* ]]; }
alive() { [ -s "$1" ] && running "$(cat "$1")"; }
stop() { local pid; pid=$(cat "$1" 2>/dev/null) || return 0; kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 100); do running "$pid" || return 0; sleep 0.1; done; kill -9 "$pid" 2>/dev/null || true; }

[ "$(id -u)" = 0 ] || { echo "slurm-up: run me as root" >&2; exit 1; }

# -- packages ---------------------------------------------------------------------------
want=(slurmctld slurmd slurm-client munge)
[ "$DBD" = 1 ] && want+=(slurmdbd mariadb-server)
missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # Service start-up in postinst fails harmlessly without systemd.
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/tmp/mlp-slurm-apt.log 2>&1 \
    || { tail -20 /tmp/mlp-slurm-apt.log >&2; exit 1; }
fi
mkdir -p "$STATE"/{ctld,spool,log} "$PIDS" /etc/slurm

# -- munge (the key must be the same on every node of a real cluster) ---------------------
[ -s /etc/munge/munge.key ] || mungekey --create --keyfile=/etc/munge/munge.key
chown munge:munge /etc/munge/munge.key && chmod 600 /etc/munge/munge.key
install -d -o munge -g munge -m 755 /run/munge
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  rm -f /run/munge/munged.pid
  runuser -u munge -- /usr/sbin/munged
  cp /run/munge/munged.pid "$PIDS/munged.pid"   # ours: slurm-down stops it
fi

# -- slurm.conf ----------------------------------------------------------------------------
if [ "$DBD" = 1 ]; then
  acct="AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=$HOST
AccountingStoragePort=6819"
else
  acct="AccountingStorageType=accounting_storage/none"
fi
conf=$STATE/slurm.conf.new
{
  cat <<CONF
# Written by mlp's .ci/slurm-up.sh: $NODES emulated nodes on this host.
ClusterName=mlp
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=6817
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
MpiDefault=none
SwitchType=switch/none
MailProg=/bin/true
# No cgroups here: processes are tracked through /proc, memory limits are not enforced.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
$acct
JobCompType=jobcomp/none
SchedulerType=sched/backfill
# Start new batch jobs at the next scheduling tick, not up to 3 s later.
SchedulerParameters=batch_sched_delay=0
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SlurmdParameters=config_overrides
ReturnToService=2
# Finished jobs stay visible to squeue and scontrol for 10 minutes.
MinJobAge=600
KillWait=5
InactiveLimit=0
Waittime=0
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool/%n
SlurmctldPidFile=$PIDS/slurmctld.pid
SlurmdPidFile=$PIDS/slurmd-%n.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd-%n.log
SlurmctldDebug=info
SlurmdDebug=info
CONF
  for i in $(seq "$NODES"); do
    echo "NodeName=n$i NodeHostname=$HOST NodeAddr=127.0.0.1 Port=$((6829 + i)) CPUs=$CPUS RealMemory=8192 State=UNKNOWN"
  done
  echo "PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO"
} > "$conf"
changed=1
if cmp -s "$conf" /etc/slurm/slurm.conf; then changed=0; rm -f "$conf"; else mv "$conf" /etc/slurm/slurm.conf; fi

# -- accounting ----------------------------------------------------------------------------
if [ "$DBD" = 1 ]; then
  install -d -o mysql -g mysql /run/mysqld
  if ! alive "$PIDS/mariadbd.pid"; then
    [ -d /var/lib/mysql/mysql ] || mariadb-install-db --user=mysql >/dev/null
    rm -f /run/mysqld/mariadbd.pid
    (setsid /usr/sbin/mariadbd --user=mysql --pid-file=/run/mysqld/mariadbd.pid \
       --socket=/run/mysqld/mysqld.sock --bind-address=127.0.0.1 \
       >"$STATE/log/mariadbd.log" 2>&1 </dev/null &)
    for _ in $(seq 300); do mariadb -e 'select 1' >/dev/null 2>&1 && break; sleep 0.1; done
    cp /run/mysqld/mariadbd.pid "$PIDS/mariadbd.pid"
    mariadb -e "CREATE DATABASE IF NOT EXISTS slurm_acct_db;
      CREATE USER IF NOT EXISTS 'slurm'@'localhost' IDENTIFIED BY 'slurm';
      GRANT ALL ON slurm_acct_db.* TO 'slurm'@'localhost'; FLUSH PRIVILEGES;"
  fi
  cat > "$STATE/slurmdbd.conf" <<CONF
AuthType=auth/munge
DbdHost=$HOST
DbdAddr=127.0.0.1
DbdPort=6819
SlurmUser=root
StorageType=accounting_storage/mysql
StorageHost=localhost
StorageLoc=slurm_acct_db
StorageUser=slurm
StoragePass=slurm
LogFile=$STATE/log/slurmdbd.log
PidFile=$PIDS/slurmdbd.pid
CONF
  install -m 600 "$STATE/slurmdbd.conf" /etc/slurm/slurmdbd.conf
  if ! alive "$PIDS/slurmdbd.pid"; then
    /usr/sbin/slurmdbd
    for _ in $(seq 100); do sacctmgr -n list cluster >/dev/null 2>&1 && break; sleep 0.1; done
  fi
fi

# -- controller and nodes ----------------------------------------------------------------------
if [ "$changed" = 1 ]; then
  # Ports, nodes and accounting need a restart, not `scontrol reconfigure`.
  for pf in "$PIDS"/slurmd-*.pid "$PIDS/slurmctld.pid"; do
    [ -e "$pf" ] || continue
    alive "$pf" && stop "$pf"
    rm -f "$pf"
  done
fi
alive "$PIDS/slurmctld.pid" || /usr/sbin/slurmctld
for i in $(seq "$NODES"); do
  mkdir -p "$STATE/spool/n$i"
  alive "$PIDS/slurmd-n$i.pid" || /usr/sbin/slurmd -N "n$i"
done
ready=0
for _ in $(seq 300); do
  ready=$(sinfo -h -N -o '%N %T' 2>/dev/null | awk '$2 ~ /^(idle|mixed|allocated|completing)$/' | wc -l)
  [ "$ready" -ge "$NODES" ] && break
  sleep 0.1
done
if [ "$ready" -lt "$NODES" ]; then
  scontrol update nodename="n[1-$NODES]" state=resume 2>/dev/null || true
  sleep 2
  ready=$(sinfo -h -N -o '%N %T' 2>/dev/null | awk '$2 ~ /^(idle|mixed|allocated|completing)$/' | wc -l)
  if [ "$ready" -lt "$NODES" ]; then
    echo "slurm-up: only $ready of $NODES nodes ready" >&2; sinfo -N >&2 || true
    tail -5 "$STATE"/log/*.log >&2 || true
    exit 1
  fi
fi
say "$NODES node(s) ready$( [ "$DBD" = 1 ] && echo ', with accounting')"
sinfo
