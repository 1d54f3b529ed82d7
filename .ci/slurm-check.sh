#!/usr/bin/env bash
# Runs experiments/slurm/sweep.sbatch for real: a one-node Slurm cluster on this machine, the
# job array on experiments/ci.toml, the merge, then checks that every point ran exactly once
# and that resubmitting the array runs nothing.
#
#   .ci/slurm-check.sh [HARNESS_BINARY]
#
# The binary defaults to $HARNESS, else $CARGO_TARGET_DIR/release/harness (CI's build,
# ~/.cache/harness/target by default). Run as root (it installs Debian's slurm-wlm and munge if
# missing, and starts munged, slurmctld and slurmd itself: there is no systemd in CI's
# containers). Everything Slurm writes (its configuration, state, spool and logs) and the
# sweep's results live in one temporary folder; the repository's results/ is not touched, nor is
# /etc/slurm: the daemons and the commands read the configuration from $SLURM_CONF, and listen
# on their own ports (16817/16818), so a Slurm already installed on the machine is left alone.
# The daemons this script started are stopped when it exits, whatever the outcome.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
started=$SECONDS

experiment=experiments/ci.toml
sbatch_script=experiments/slurm/sweep.sbatch
ctld_port=16817
slurmd_port=16818

say() { printf 'slurm: %s\n' "$*"; }

harness=${1:-${HARNESS:-${CARGO_TARGET_DIR:-$HOME/.cache/harness/target}/release/harness}}
if [[ ! -x $harness ]]; then
  echo "slurm-check: no harness binary at $harness (build it first, or pass its path)" >&2
  exit 1
fi
harness=$(realpath "$harness")
if [[ $(id -u) != 0 ]]; then
  echo "slurm-check: run as root (it starts munged, slurmctld and slurmd)" >&2
  exit 1
fi

# --- install ---------------------------------------------------------------------------------
missing=()
dpkg -s slurm-wlm >/dev/null 2>&1 || missing+=(slurm-wlm)
dpkg -s munge >/dev/null 2>&1 || missing+=(munge)
command -v python3 >/dev/null || missing+=(python3)
if ((${#missing[@]})); then
  say "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
install_s=$((SECONDS - started))

# A Slurm job's variables in this shell would make harness shard the checks below.
for var in "${!SLURM_@}"; do unset "$var"; done

tmp=$(mktemp -d /tmp/harness-slurm.XXXXXX)
chmod 0755 "$tmp"
work=$tmp/work
export SLURM_CONF=$tmp/etc/slurm.conf
ctld_pid='' slurmd_pid='' munged_pid='' job_ids=()

show_logs() {
  local log
  for log in "$tmp"/log/*.log "$tmp"/log/*.stderr "$work"/results/slurm-*.out; do
    [[ -s $log ]] || continue
    [[ $log == *.stderr && -s ${log%.stderr}.log ]] && continue
    echo "----- ${log#"$tmp"/} (last 40 lines)" >&2
    tail -n 40 "$log" >&2
  done
}

# Says what failed at once (a failure inside $(...) exits only that subshell; set -e then ends
# the script), and exits; the EXIT trap shows the daemons' and the tasks' logs.
fail() {
  echo "slurm-check: FAILED: $*" >&2
  exit 1
}

stop() {
  local pid=$1 name=$2 i
  [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
    sleep 0.1
  done
  echo "slurm-check: $name (pid $pid) did not stop in 10 s; killing it" >&2
  kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
}

cleanup() {
  local rc=$?
  set +e
  if ((${#job_ids[@]})) && [[ -n $ctld_pid ]] && kill -0 "$ctld_pid" 2>/dev/null; then
    scancel "${job_ids[@]}" 2>/dev/null
  fi
  if ((rc != 0)); then
    echo "slurm-check: failed (exit $rc); the logs:" >&2
    show_logs
  fi
  stop "$slurmd_pid" slurmd
  stop "$ctld_pid" slurmctld
  stop "$munged_pid" munged
  if ((rc == 0)); then
    rm -rf "$tmp"
  else
    echo "slurm-check: its files are kept in $tmp" >&2
  fi
  exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# --- munge -----------------------------------------------------------------------------------
mkdir -p "$tmp/log" "$tmp/etc" "$tmp/state" "$tmp/spool" "$work/results"
if [[ ! -s /etc/munge/munge.key ]]; then
  say "creating a munge key"
  install -d -o munge -g munge -m 0700 /etc/munge
  mungekey --create --keyfile=/etc/munge/munge.key
  chown munge:munge /etc/munge/munge.key
  chmod 0400 /etc/munge/munge.key
fi
munge_works() { munge -n 2>/dev/null | unmunge >/dev/null 2>&1; }
if munge_works; then
  say "munged is already running; using it"
else
  install -d -o munge -g munge -m 0755 /run/munge
  install -d -o munge -g munge -m 0700 "$tmp/munge"
  # As the munge user, as Debian's service runs it, and in the foreground, so that its pid is
  # ours to stop.
  setpriv --reuid=munge --regid=munge --init-groups \
    munged --foreground --log-file="$tmp/munge/munged.log" >"$tmp/log/munged.log" 2>&1 &
  munged_pid=$!
  for ((i = 0; i < 100; i++)); do
    munge_works && break
    kill -0 "$munged_pid" 2>/dev/null || fail "munged exited: $(cat "$tmp/munge/munged.log" 2>/dev/null)"
    sleep 0.1
  done
  munge_works || fail "munged did not answer within 10 s"
fi

# --- slurm.conf and the daemons --------------------------------------------------------------
host=$(hostname -s)
cpus=$(nproc)
mem_mb=$(awk '/^MemTotal:/ { print int($2 / 1024) }' /proc/meminfo)
real_mb=$((mem_mb * 95 / 100)) # a bit under: slurmd drains a node that has less than this
for port in $ctld_port $slurmd_port; do
  ! port_in_use "$port" || fail "port $port is in use (another slurm-check still running?)"
done
cat >"$SLURM_CONF" <<EOF
# One-node cluster for .ci/slurm-check.sh; everything under $tmp.
ClusterName=harness-ci
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$tmp/state
SlurmdSpoolDir=$tmp/spool
SlurmctldPidFile=$tmp/slurmctld.pid
SlurmdPidFile=$tmp/slurmd.pid
SlurmctldLogFile=$tmp/log/slurmctld.log
SlurmdLogFile=$tmp/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
# No cgroups in a container: track processes by parent pid, bind no tasks.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
# First in, first out: start the next array task as soon as one ends.
SchedulerType=sched/builtin
# Without this the next task starts up to 3 s after one ends (1 s with it).
SchedulerParameters=batch_sched_delay=0
MailProg=/bin/true
ReturnToService=2
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$real_mb State=UNKNOWN
PartitionName=ci Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF

daemons_from=$SECONDS
# In the foreground (-D) and in the background here, so that their pids are ours to stop; what
# they say before their log files are open goes to .stderr.
slurmctld -D -c >"$tmp/log/slurmctld.stderr" 2>&1 &
ctld_pid=$!
slurmd -D -c >"$tmp/log/slurmd.stderr" 2>&1 &
slurmd_pid=$!

state=''
for ((i = 0; i < 60; i++)); do
  kill -0 "$ctld_pid" 2>/dev/null || fail "slurmctld exited"
  kill -0 "$slurmd_pid" 2>/dev/null || fail "slurmd exited"
  state=$(sinfo -h -N -n "$host" -o %T 2>/dev/null || true)
  [[ $state == idle ]] && break
  if [[ $state == *drain* || $state == *inval* || $state == *fail* ]]; then
    fail "node $host is $state: $(sinfo -h -R -o %E 2>/dev/null)"
  fi
  sleep 0.5
done
[[ $state == idle ]] || fail "node $host is not idle after 30 s (sinfo says '${state:-nothing}')"
daemons_s=$((SECONDS - daemons_from))
say "one-node cluster up in ${daemons_s} s: $host, $cpus CPUs, ${real_mb} MB"

# --- the job array ---------------------------------------------------------------------------
# The sweep runs in a fresh folder with the experiment, its configs and the data, so that
# results/ is the array's alone.
cp -r "$repo/experiments" "$repo/configs" "$work/"
ln -s "$repo/data" "$work/data"
cd "$work"
export HARNESS=$harness

# The sbatch script asks for 2 CPUs and 4 GB per task; on a smaller node, ask for what it has
# (the command line overrides #SBATCH lines), otherwise submit it exactly as a user would.
overrides=()
script_cpus=$(sed -n 's/^#SBATCH --cpus-per-task=//p' "$sbatch_script")
((cpus >= ${script_cpus:-1})) || overrides+=("--cpus-per-task=$cpus")
((real_mb >= 4096)) || overrides+=("--mem=$((real_mb / 2))M")

cat >"$tmp/check.py" <<'PY'
import csv, re, sys

def rows(path):
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        missing = {"run_id", "status"} - set(reader.fieldnames or [])
        if missing:
            sys.exit(f"{path}: no column {', '.join(sorted(missing))}")
        return list(reader)

def runs(paths):
    """Rows, distinct run_ids and rows not ok, over the given runs files."""
    all_rows = [row for path in paths for row in rows(path)]
    ids = {row["run_id"] for row in all_rows}
    not_ok = [f"{row['run_id']}={row['status']}" for row in all_rows if row["status"] != "ok"]
    print(len(all_rows), len(ids), " ".join(not_ok) or "-")

SUMMARY = re.compile(r"^sweep .*: (\d+) ok, (\d+) diverged, (\d+) failed, (\d+) skipped, (\d+) not run")
SHARD = re.compile(r": shard (\d+)/(\d+): (\d+) of (\d+) points\b")

def logs(phase, paths):
    """Each array task's log: its shard, and what its sweep ran. Prints the points of the
    experiment, the tasks, and the points the tasks ran."""
    total, shards, ran = None, set(), 0
    for path in paths:
        text = open(path).read().splitlines()
        shard = [m for m in map(SHARD.search, text) if m]
        summary = [m for m in map(SUMMARY.match, text) if m]
        if len(shard) != 1 or len(summary) != 1:
            sys.exit(f"{path}: no shard line and summary line from harness sweep")
        k, n, size, points = map(int, shard[0].groups())
        ok, diverged, failed, skipped, not_run = map(int, summary[0].groups())
        if total not in (None, points):
            sys.exit(f"{path}: {points} points, another task saw {total}")
        total = points
        shards.add((k, n))
        if ok != size or diverged or failed or not_run:
            sys.exit(f"{path}: shard {k}/{n} of {size} points ended with {summary[0].group(0)}")
        if phase == "first" and skipped != 0:
            sys.exit(f"{path}: the first submission skipped {skipped} points")
        if phase == "again" and skipped != size:
            sys.exit(f"{path}: the resubmission ran {size - skipped} of {size} points")
        ran += size - skipped
    counts = {n for _, n in shards}
    if len(counts) != 1 or {k for k, _ in shards} != set(range(1, len(paths) + 1)) or counts != {len(paths)}:
        sys.exit(f"the {len(paths)} tasks ran shards {sorted(shards)}, not 1/{len(paths)} to {len(paths)}/{len(paths)}")
    print(total, len(paths), ran)

ROW = re.compile(r"^\s*(\d+)\s+(\S+)\s+(\S+)\s+(\S+)")
TAIL = re.compile(r"^(\d+) points, (\d+) to run, (\d+) done$")

def dry_run(listing, merged):
    """`harness sweep --dry-run` against the merged runs file: every point ok, each once in it."""
    lines = open(listing).read().splitlines()
    tail = [i for i, line in enumerate(lines) if TAIL.match(line)]
    head = [i for i, line in enumerate(lines) if line.split()[:2] == ["point", "run_id"]]
    if len(tail) != 1 or len(head) != 1:
        sys.exit(f"{listing}: no table of points and 'N points, N to run, N done' line")
    table = [m for m in map(ROW.match, lines[head[0] + 1:tail[0]]) if m]
    tail = [TAIL.match(lines[tail[0]])]
    points, to_run, done = map(int, tail[0].groups())
    if len(table) != points:
        sys.exit(f"{listing}: {len(table)} rows listed for {points} points")
    not_ok = [f"{m.group(2)}={m.group(4)}" for m in table if m.group(4) != "ok"]
    if not_ok or to_run:
        sys.exit(f"points not ok in the merged runs file: {' '.join(not_ok)} ({to_run} to run)")
    merged_rows = rows(merged)
    ids = [row["run_id"] for row in merged_rows]
    if len(merged_rows) != points or set(ids) != {m.group(2) for m in table}:
        sys.exit(f"{merged}: {len(merged_rows)} rows ({len(set(ids))} run_ids) for {points} points")
    print(points)

{"runs": lambda: runs(sys.argv[2:]),
 "logs": lambda: logs(sys.argv[2], sys.argv[3:]),
 "dry-run": lambda: dry_run(sys.argv[2], sys.argv[3])}[sys.argv[1]]()
PY
check() { python3 "$tmp/check.py" "$@" || fail "check '$1' failed (message above)"; }

# Submits the array and waits for every task; sets job_id.
run_array() {
  local id states i
  id=$(sbatch --parsable "${overrides[@]}" "$sbatch_script" "$experiment") ||
    fail "sbatch refused the job array"
  id=${id%%;*}
  job_ids+=("$id")
  job_id=$id
  for ((i = 0; i < 600; i++)); do
    [[ -z $(squeue -h -j "$id" -o %i 2>/dev/null) ]] && break
    kill -0 "$ctld_pid" 2>/dev/null || fail "slurmctld exited while job $id ran"
    sleep 0.5
  done
  [[ -z $(squeue -h -j "$id" -o %i 2>/dev/null) ]] ||
    fail "job array $id not done after 5 minutes: $(squeue -h -j "$id" -o '%i %T %R' | tr '\n' ';')"
  # Every task's end, from the controller (no accounting here; it keeps ended jobs 300 s).
  states=$(scontrol -o show job "$id" | awk '{
      for (i = 1; i <= NF; i++) {
        if ($i ~ /^JobState=/) state = substr($i, 10)
        if ($i ~ /^ExitCode=/) code = substr($i, 10)
      }
      print state, code
    }' | sort | uniq -c)
  [[ -n $states && $(awk '$2 != "COMPLETED" || $3 != "0:0"' <<<"$states") == '' ]] ||
    fail "job array $id did not complete cleanly: tasks by state and exit code:" \
      "$(awk '{ printf "%s%s x %s %s", sep, $1, $2, $3; sep = ", " }' <<<"$states")"
}

array_from=$SECONDS
run_array
first=$job_id
first_s=$((SECONDS - array_from))
shopt -s nullglob
first_logs=(results/slurm-"${first}"_*.out)
out=$(check logs first "${first_logs[@]}")
read -r points tasks ran <<<"$out"
shard_runs=(results/runs-*.csv)
((${#shard_runs[@]} == tasks)) || fail "${#shard_runs[@]} shard runs files for $tasks tasks"
out=$(check runs "${shard_runs[@]}")
read -r shard_rows shard_ids not_ok <<<"$out"
[[ $not_ok == - ]] || fail "runs not ok in the shard files: $not_ok"
((shard_rows == points && shard_ids == points)) ||
  fail "the shard files hold $shard_rows rows ($shard_ids run_ids) for $points points"
say "job array $first: $tasks tasks ran $ran of $points points in ${first_s} s"

"$harness" merge results/runs-*.csv -o results/runs.csv
"$harness" merge results/epochs-*.csv -o results/epochs.csv
"$harness" sweep "$experiment" --dry-run --set output.runs=results/runs.csv >"$tmp/dry-run.txt" ||
  fail "harness sweep --dry-run failed: $(cat "$tmp/dry-run.txt")"
merged=$(check dry-run "$tmp/dry-run.txt" results/runs.csv)
((merged == points)) || fail "the dry run lists $merged points, the tasks saw $points"

# Resubmitting the same array must find everything recorded and run nothing.
again_from=$SECONDS
run_array
again=$job_id
again_s=$((SECONDS - again_from))
again_logs=(results/slurm-"${again}"_*.out)
out=$(check logs again "${again_logs[@]}")
read -r _ again_tasks again_ran <<<"$out"
((again_tasks == tasks && again_ran == 0)) || fail "the resubmission ran $again_ran points"
out=$(check runs results/runs-*.csv)
read -r rows_after _ _ <<<"$out"
((rows_after == shard_rows)) ||
  fail "the shard runs files went from $shard_rows to $rows_after rows on resubmission"
say "job array $again (resubmitted): $again_tasks tasks ran nothing in ${again_s} s"

say "took $((SECONDS - started)) s: install ${install_s} s, daemons ${daemons_s} s," \
  "first array ${first_s} s, merge and checks $((again_from - array_from - first_s)) s," \
  "resubmission ${again_s} s"
echo "slurm: $points points ran once across $tasks array tasks; resubmission ran nothing"
