#!/usr/bin/env bash
# Start a one-node SLURM cluster on this machine (loopback only, no systemd), for the SLURM tests
# (tests/gatetune/test_slurm.py) and for trying gatetune/slurm/*.sbatch by hand. Needs root and Debian's packages:
#
#   apt-get install -y slurm-wlm munge        # or: INSTALL=1 bash scripts/start_local_slurm.sh
#   bash scripts/start_local_slurm.sh         # idempotent: a running cluster is left as it is
#   bash scripts/start_local_slurm.sh stop
#
# The node is `localhost` (127.0.0.1) with the machine's CPUs, in partition `debug`. Processes are
# tracked without cgroups (proctrack/linuxproc, task/none), so it also runs inside containers.
# `AuthInfo=cred_expire=10` shortens the wait before a requeued job starts again from 121 s to ~24 s.
# An /etc/slurm/slurm.conf not written by this script is never overwritten.
set -euo pipefail

CONF=/etc/slurm/slurm.conf
MARKER="# written by gatetune scripts/start_local_slurm.sh"
LOG_DIR=/var/log/slurm

stop() {
    pkill -x slurmd 2>/dev/null || true
    pkill -x slurmctld 2>/dev/null || true
    pkill -x munged 2>/dev/null || true
}

if [[ "${1:-}" == "stop" ]]; then
    stop
    echo "local SLURM stopped"
    exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
    echo "error: starting slurmctld/slurmd/munged needs root" >&2
    exit 2
fi

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    if [[ "${INSTALL:-0}" == "1" ]]; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get install -y -q slurm-wlm munge >/dev/null || { apt-get update -q >/dev/null;
            apt-get install -y -q slurm-wlm munge >/dev/null; }
    else
        echo "error: slurmctld/munged not installed: apt-get install -y slurm-wlm munge (or INSTALL=1)" >&2
        exit 2
    fi
fi

# (the project's old name wrote the same file with its own marker: ours too)
if [[ -f "$CONF" ]] && ! grep -qF "$MARKER" "$CONF" && ! grep -qF "# written by finetune scripts/start_local_slurm.sh" "$CONF"; then
    echo "error: $CONF exists and was not written by this script; not touching a real cluster's config" >&2
    exit 2
fi

node_state() { sinfo -h -n localhost -o %T 2>/dev/null | head -n1; }

if pgrep -x slurmctld >/dev/null && pgrep -x slurmd >/dev/null && [[ "$(node_state)" =~ ^(idle|mixed|allocated) ]]; then
    echo "local SLURM already running: $(sinfo -h -o '%P %D %T %N' | head -n1)"
    exit 0
fi
stop
sleep 0.5

CPUS=$(nproc)
# The node's memory as SLURM sees it (MB, less 512 for the system): jobs that ask for memory (--mem-per-cpu,
# as data-checks --engine slurm's job arrays do) are placed only if it fits.
MEMORY=$(( $(awk '/^MemTotal:/ {print int($2 / 1024)}' /proc/meminfo) - 512 ))
mkdir -p /etc/slurm /var/spool/slurmctld /var/spool/slurmd "$LOG_DIR" /run/munge
chown munge:munge /run/munge
chmod 0755 /run/munge
if [[ ! -s /etc/munge/munge.key ]]; then
    mkdir -p /etc/munge
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
    chown munge:munge /etc/munge/munge.key
    chmod 0400 /etc/munge/munge.key
fi

cat > "$CONF.tmp" <<EOF
$MARKER
ClusterName=local
SlurmctldHost=$(hostname -s)(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=cred_expire=10
CredType=cred/munge
StateSaveLocation=/var/spool/slurmctld
SlurmdSpoolDir=/var/spool/slurmd
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
JobRequeue=1
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
KillWait=30
InactiveLimit=0
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$CPUS RealMemory=$MEMORY State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
mv "$CONF.tmp" "$CONF"

runuser -u munge -- /usr/sbin/munged
/usr/sbin/slurmctld
/usr/sbin/slurmd -N localhost

for _ in $(seq 1 60); do
    state=$(node_state || true)
    if [[ "$state" =~ ^(idle|mixed|allocated) ]]; then
        echo "local SLURM running: partition debug, node localhost ($CPUS CPUs), logs in $LOG_DIR"
        exit 0
    fi
    if [[ "$state" =~ ^(down|drain) ]]; then
        scontrol update NodeName=localhost State=RESUME >/dev/null 2>&1 || true
    fi
    sleep 0.5
done
echo "error: the node did not become idle within 30 s (state: ${state:-unknown}); see $LOG_DIR/slurmd.log" >&2
tail -n 5 "$LOG_DIR/slurmctld.log" "$LOG_DIR/slurmd.log" >&2 || true
exit 1
