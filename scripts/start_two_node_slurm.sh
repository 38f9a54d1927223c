#!/usr/bin/env bash
# Start a two-node SLURM cluster on this one machine, for tests/gatetune/test_slurm_two_nodes.py and for trying
# multi-node jobs by hand. Each node is a slurmd in its own network namespace (and UTS namespace, so its
# hostname is its node name) with its own address on a private bridge; slurmctld runs on the host, on the bridge.
# No traffic leaves the machine. Needs root, `ip` (iproute2) and Debian's slurm-wlm + munge.
#
#   bash scripts/start_two_node_slurm.sh          # idempotent: a running cluster is left as it is (INSTALL=1:
#                                                 # apt-get install iproute2 if `ip` is missing)
#   bash scripts/start_two_node_slurm.sh stop     # stops its daemons, removes the namespaces and the bridge
#   export SLURM_CONF=/etc/slurm-two-nodes/slurm.conf    # then sinfo, sbatch, scripts/submit.py use it
#
#   host (slurmctld, port 6917)  10.77.0.1  gtbr0 ──┬── veth ── [netns gtn1] gtnode1 10.77.0.11 (slurmd)
#                                                   └── veth ── [netns gtn2] gtnode2 10.77.0.12 (slurmd)
#
# The cluster is `twonodes`, partition `debug`, one CPU per node (the machine's cores are shared, so jobs
# use slurm=local_two_nodes: one process per node, one thread each). It lives beside the one-node cluster of
# scripts/start_local_slurm.sh (its own config, ports, state and logs) and shares its munged (started here
# when it is not running). Names resolve inside the namespaces through /etc/netns/gtnN/hosts, bind-mounted over
# /etc/hosts in each node's own mount namespace; the host's /etc/hosts is not touched.
set -euo pipefail

CONF_DIR=/etc/slurm-two-nodes
CONF=$CONF_DIR/slurm.conf
STATE=/var/spool/slurm-two-nodes
LOG_DIR=/var/log/slurm
BRIDGE=gtbr0
NET=10.77.0
NODES=(gtnode1 gtnode2)
export SLURM_CONF=$CONF

pid_of() { [[ -s "$1" ]] && cat "$1" 2>/dev/null; }

stop() {
    local pid
    for node in "${NODES[@]}"; do
        pid=$(pid_of "/run/slurmd-two-nodes-$node.pid" || true)
        [[ -n "$pid" ]] && kill "$pid" 2>/dev/null || true
    done
    pid=$(pid_of /run/slurmctld-two-nodes.pid || true)
    [[ -n "$pid" ]] && kill "$pid" 2>/dev/null || true
    # Daemons whose pid files are gone, and anything else still inside a node's namespace (a job's processes):
    # while one lives, deleting the namespace's name leaves the namespace and its veth behind, and the next
    # start fails on "RTNETLINK answers: File exists".
    pkill -f "slurm(ctl)?d -f $CONF" 2>/dev/null || true
    for i in 1 2; do
        ip netns pids "gtn$i" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
    done
    sleep 0.5
    for i in 1 2; do
        ip netns del "gtn$i" 2>/dev/null || true
        rm -rf "/etc/netns/gtn$i"
        # Deleting the host's end removes the pair, even when its peer sits in a namespace that outlived its name.
        ip link del "gtveth$i" 2>/dev/null || true
    done
    ip link del "$BRIDGE" 2>/dev/null || true
}

if [[ "${1:-}" == "stop" ]]; then
    stop
    echo "two-node SLURM stopped"
    exit 0
fi

if [[ $(id -u) -ne 0 ]]; then
    echo "error: network namespaces and the SLURM daemons need root" >&2
    exit 2
fi
PATH=$PATH:/usr/sbin
if [[ "${INSTALL:-0}" == "1" ]] && ! command -v ip >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q iproute2 >/dev/null
fi
for tool in ip unshare nsenter slurmctld slurmd munged; do
    command -v "$tool" >/dev/null || { echo "error: $tool not found (apt-get install iproute2 slurm-wlm munge;" \
        "INSTALL=1 installs iproute2)" >&2; exit 2; }
done

idle_nodes() { sinfo -h -N -o '%N %T' 2>/dev/null | grep -cE ' (idle|mixed|allocated)' || true; }

if [[ -f /run/slurmctld-two-nodes.pid ]] && kill -0 "$(cat /run/slurmctld-two-nodes.pid)" 2>/dev/null \
        && [[ "$(idle_nodes)" == 2 ]]; then
    echo "two-node SLURM already running: $(sinfo -h -o '%P %D %T %N' | head -n1) (SLURM_CONF=$CONF)"
    exit 0
fi
stop

# The network: a bridge on the host and one namespace per node, joined to it by a veth pair.
if ! ip link add "$BRIDGE" type bridge 2>/dev/null; then
    echo "error: cannot create a bridge here (no CAP_NET_ADMIN, or no network namespaces in this container)" >&2
    exit 2
fi
ip addr add "$NET.1/24" dev "$BRIDGE"
ip link set "$BRIDGE" up
HOST=$(hostname -s)
for i in 1 2; do
    ns=gtn$i
    ip netns add "$ns"
    ip link add "gtveth$i" type veth peer name eth0 netns "$ns"
    ip link set "gtveth$i" master "$BRIDGE" up
    ip -n "$ns" addr add "$NET.1$i/24" dev eth0
    ip -n "$ns" link set eth0 up
    ip -n "$ns" link set lo up
    mkdir -p "/etc/netns/$ns"
    printf '127.0.0.1 localhost\n%s.1 %s\n%s.11 gtnode1\n%s.12 gtnode2\n' "$NET" "$HOST" "$NET" "$NET" \
        > "/etc/netns/$ns/hosts"
done

# munge: the host's daemon; its socket is a file, so the namespaces reach it too.
mkdir -p /run/munge "$LOG_DIR" "$CONF_DIR" "$STATE/ctld"
chown munge:munge /run/munge
if [[ ! -s /etc/munge/munge.key ]]; then
    mkdir -p /etc/munge
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 status=none
    chown munge:munge /etc/munge/munge.key
    chmod 0400 /etc/munge/munge.key
fi
pgrep -x munged >/dev/null || runuser -u munge -- /usr/sbin/munged

cat > "$CONF.tmp" <<EOF
# written by gatetune scripts/start_two_node_slurm.sh
ClusterName=twonodes
SlurmctldHost=$HOST($NET.1)
SlurmctldPort=6917
SlurmdPort=6918
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=cred_expire=10
CredType=cred/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/%n
SlurmctldPidFile=/run/slurmctld-two-nodes.pid
SlurmdPidFile=/run/slurmd-two-nodes-%n.pid
SlurmctldLogFile=$LOG_DIR/two-nodes-slurmctld.log
SlurmdLogFile=$LOG_DIR/two-nodes-slurmd-%n.log
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
NodeName=gtnode1 NodeAddr=$NET.11 CPUs=1 State=UNKNOWN
NodeName=gtnode2 NodeAddr=$NET.12 CPUs=1 State=UNKNOWN
PartitionName=debug Nodes=gtnode1,gtnode2 Default=YES MaxTime=INFINITE State=UP
EOF
mv "$CONF.tmp" "$CONF"

/usr/sbin/slurmctld -f "$CONF"
for i in 1 2; do
    node=gtnode$i
    mkdir -p "$STATE/$node"
    # The node's network namespace, plus its own UTS namespace (its processes see the node name as their
    # hostname: gloo and torchrun use it) and mount namespace (its /etc/hosts). Not `ip netns exec`: that
    # remounts /sys, which hides the cgroup filesystem slurmd needs.
    nsenter --net="/run/netns/gtn$i" unshare --uts --mount sh -c \
        "mount --bind /etc/netns/gtn$i/hosts /etc/hosts && hostname $node && exec /usr/sbin/slurmd -f '$CONF' -N $node"
done

for _ in $(seq 1 60); do
    if [[ "$(idle_nodes)" == 2 ]]; then
        echo "two-node SLURM running: partition debug, nodes gtnode1 ($NET.11) and gtnode2 ($NET.12)," \
             "1 CPU each; export SLURM_CONF=$CONF; logs in $LOG_DIR/two-nodes-*"
        exit 0
    fi
    for node in "${NODES[@]}"; do
        if sinfo -h -n "$node" -o %T 2>/dev/null | grep -qE '^(down|drain)'; then
            scontrol update NodeName="$node" State=RESUME >/dev/null 2>&1 || true
        fi
    done
    sleep 0.5
done
echo "error: the two nodes did not become idle within 30 s; see $LOG_DIR/two-nodes-*.log" >&2
sinfo -N >&2 || true
tail -n 5 "$LOG_DIR"/two-nodes-*.log >&2 || true
exit 1
