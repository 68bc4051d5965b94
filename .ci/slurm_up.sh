#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, for the tests marked `slurm` (tests/test_slurm.py): munge, slurmctld and
# slurmd, with proctrack/linuxproc and task/none (no cgroups needed, so it runs in a container), accounting off, one
# node with this host's CPUs and memory, one partition `debug`, and timers of seconds so that requeues and time
# limits act quickly. Needs root (CI runs as root); installs slurm-wlm and munge with apt when they are missing.
# Idempotent: a second call finds the cluster up and returns at once. Prints one line; exits non-zero, saying why,
# when the cluster does not come up. It never replaces a slurm.conf that it did not write.
set -euo pipefail

CONF_DIR=/etc/slurm
LOG_DIR=/var/log/slurm
STATE_DIR=/var/spool/slurmctld
SPOOL_DIR=/var/spool/slurmd
HOST="$(hostname -s)"

cluster_up() {
    timeout 5 sinfo -h -N -o '%N %t' 2>/dev/null | grep -Eq "^$HOST (idle|mix|alloc)"
}

cpus="$(nproc)"
memory_mb="$(awk '/^MemTotal/ {print int($2 / 1024 * 0.9)}' /proc/meminfo)"
wanted_conf() {
    cat <<CONF
$MARK
ClusterName=dlfound
SlurmctldHost=$HOST
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
# A requeued job waits cred_expire seconds before it may start again (120 by default): 10 here.
AuthInfo=cred_expire=10
# No cgroups: processes tracked by parent id, tasks not bound to cores; works inside containers.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
# Accounting off, as on many small clusters (so sacct answers with an error; submitit falls back to squeue).
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
# Timers of seconds: the scheduler looks every second, a job past its time limit is ended at once, a killed job's
# processes get 5 s between SIGTERM and SIGKILL (time to save last.ckpt), a finished job is forgotten after 5 minutes.
SchedulerParameters=sched_interval=1,bf_interval=1,sched_min_interval=100000
OverTimeLimit=0
KillWait=5
MinJobAge=300
InactiveLimit=0
MessageTimeout=10
SlurmctldTimeout=10
SlurmdTimeout=30
ReturnToService=2
JobRequeue=1
StateSaveLocation=$STATE_DIR
SlurmdSpoolDir=$SPOOL_DIR
SlurmctldPidFile=/run/slurmctld.pid
SlurmdPidFile=/run/slurmd.pid
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
NodeName=$HOST CPUs=$cpus RealMemory=$memory_mb State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
}
MARK="# Written by .ci/slurm_up.sh: a one-node test cluster."
if command -v sinfo >/dev/null && cluster_up && wanted_conf | cmp -s - "$CONF_DIR/slurm.conf"; then
    echo "slurm_up: the one-node cluster is already up (node $HOST)"
    exit 0
fi
if [ -f "$CONF_DIR/slurm.conf" ] && [ "$(head -n 1 "$CONF_DIR/slurm.conf")" != "$MARK" ]; then
    echo "slurm_up: $CONF_DIR/slurm.conf was not written by this script: this machine belongs to a SLURM cluster" \
        "of its own, which is left alone (the slurm tests submit to whatever cluster sbatch reaches)." >&2
    exit 1
fi
if [ "$(id -u)" != 0 ]; then
    echo "slurm_up: starting a SLURM cluster needs root (munged, slurmctld, slurmd); run this script with sudo" >&2
    exit 1
fi
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null \
    || ! command -v sbatch >/dev/null; then
    echo "slurm_up: installing slurm-wlm and munge with apt" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
fi

mkdir -p "$CONF_DIR" "$LOG_DIR" "$STATE_DIR" "$SPOOL_DIR" /run/munge /var/lib/munge /var/log/munge

# munge: one key per machine (the package creates it; a container image may not have).
if [ ! -s /etc/munge/munge.key ]; then
    dd if=/dev/urandom bs=1 count=1024 of=/etc/munge/munge.key 2>/dev/null
fi
chown -R munge:munge /etc/munge /var/lib/munge /var/log/munge /run/munge 2>/dev/null || true
chmod 400 /etc/munge/munge.key
if ! pgrep -x munged >/dev/null; then
    runuser -u munge -- munged 2>/dev/null || munged --force
fi

# A changed configuration restarts the daemons (some settings, AuthInfo among them, are read only at start).
if ! wanted_conf | cmp -s - "$CONF_DIR/slurm.conf"; then
    wanted_conf > "$CONF_DIR/slurm.conf.new"
    mv "$CONF_DIR/slurm.conf.new" "$CONF_DIR/slurm.conf"
    for daemon in slurmd slurmctld; do
        pid="$(pgrep -x "$daemon" || true)"
        if [ -n "$pid" ]; then
            kill "$pid"
            while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
        fi
    done
fi
# Start whichever daemon is missing.
pgrep -x slurmctld >/dev/null || slurmctld
pgrep -x slurmd >/dev/null || slurmd

for _ in $(seq 1 60); do
    if ! pgrep -x slurmctld >/dev/null || ! pgrep -x slurmd >/dev/null; then
        break  # a daemon that exits at start has written why in its log
    fi
    if cluster_up; then
        echo "slurm_up: the one-node cluster is up (node $HOST, $cpus CPUs, partition debug)"
        exit 0
    fi
    state="$(timeout 5 sinfo -h -N -o '%t' 2>/dev/null || true)"
    if [ "$state" = "down" ] || [ "$state" = "drain" ] || [ "$state" = "down*" ]; then
        scontrol update NodeName="$HOST" State=RESUME >/dev/null 2>&1 || true
    fi
    sleep 1
done
echo "slurm_up: the cluster did not come up (within 60 s); see $LOG_DIR/slurmctld.log and $LOG_DIR/slurmd.log" >&2
tail -n 5 "$LOG_DIR/slurmctld.log" "$LOG_DIR/slurmd.log" >&2 2>/dev/null || true
exit 1
