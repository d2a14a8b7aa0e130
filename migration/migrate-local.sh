#!/usr/bin/env bash
# Same-host live migration of the checkguest between two of our VMMs, over a UNIX socket or TCP loopback:
# prints the source's measured total time, downtime and bytes, and has the guest verify itself afterwards.
#
#   migration/migrate-local.sh [unix|tcp] [options]
#     -c debug|release   build configuration (default release: the numbers to quote)
#     -w WORKLOADS       checkguest workloads (default memcheck:32,counter)
#     -m SIZE            guest memory (default 256M)      -p N   vCPUs (default 2)
#     -d MS              downtime_ms (default 300)
#     -a on|off          auto_converge (default on)   -t S   timeout_s (default 3600; timeout_strategy Cancel)
# Needs /dev/kvm, curl and the checkguest (make -C Tests/Guest). SCRATCH picks the build dir (.build-mig).
set -euo pipefail
cd "$(dirname "$0")/.."

transport=${1:-unix}; shift || true
config=release workload=memcheck:32,counter memory=256M cpus=2 downtime=300 converge=on timeout=3600
while getopts "c:w:m:p:d:a:t:" opt; do
    case $opt in
        c) config=$OPTARG ;; w) workload=$OPTARG ;; m) memory=$OPTARG ;; p) cpus=$OPTARG ;; d) downtime=$OPTARG ;;
        a) converge=$OPTARG ;; t) timeout=$OPTARG ;;
        *) sed -n '2,11p' "$0"; exit 2 ;;
    esac
done
scratch=${SCRATCH:-.build-mig}
swift build -c "$config" --scratch-path "$scratch" --product cloud-hypervisor >/dev/null
vmm="$scratch/$config/cloud-hypervisor"
guest=Tests/Guest/build/checkguest.elf
[ -f "$guest" ] || make -C Tests/Guest >/dev/null

work=$(mktemp -d /tmp/migrate-local.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; exec 3>&- 4>&- || true; rm -rf "$work"; }
trap cleanup EXIT

case $converge in on) converge=true ;; off) converge=false ;; *) echo "-a takes on or off" >&2; exit 2 ;; esac
case $transport in
    unix) url="unix:$work/migration.sock" ;;
    tcp) url="tcp:127.0.0.1:$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')" ;;
    *) echo "transport must be unix or tcp" >&2; exit 2 ;;
esac

rest() { curl -s -m 120 --unix-socket "$1" -X PUT -H 'Content-Type: application/json' -d "$3" -w ' %{http_code}' "http://localhost/api/v1/$2"; }
wait_for() { # file pattern seconds
    for _ in $(seq $(($3 * 20))); do grep -qE "$2" "$1" && return 0; sleep 0.05; done
    echo "timed out waiting for /$2/ in $1" >&2; tail -20 "$1" >&2; exit 1
}

mkfifo "$work/src.in" "$work/dst.in"
"$vmm" --kernel "$guest" --cpus "boot=$cpus" --memory "size=$memory" --serial tty --console off \
    --cmdline "workload=$workload" --api-socket "path=$work/src.api" --event-monitor "path=$work/src.events" \
    <"$work/src.in" >"$work/src.out" 2>&1 & pids+=($!)
exec 3>"$work/src.in"
"$vmm" --api-socket "path=$work/dst.api" <"$work/dst.in" >"$work/dst.out" 2>&1 & pids+=($!)
exec 4>"$work/dst.in"
wait_for "$work/src.out" '^GUEST-BOOTED' 30
sleep 2   # let the workloads fill their memory
rest "$work/dst.api" vm.receive-migration "{\"receiver_url\":\"$url\"}" >"$work/receive.reply" &
receiver=$!
for _ in $(seq 100); do
    if [ "$transport" = unix ]; then [ -S "${url#unix:}" ] && break
    else ss -ltn 2>/dev/null | grep -q ":${url##*:} " && break; fi
    sleep 0.05
done
echo "send-migration: $(rest "$work/src.api" vm.send-migration "{\"destination_url\":\"$url\",\"downtime_ms\":$downtime,\"timeout_s\":$timeout,\"auto_converge\":$converge}")"
wait "$receiver"
echo "receive-migration: $(cat "$work/receive.reply")"
migration_events() {
    python3 - "$work/src.events" <<'PY'
import json, sys
for record in open(sys.argv[1]).read().split("\n\n"):
    if record.strip():
        event = json.loads(record)
        if event["event"].startswith("migration-"):
            print(event["event"], json.dumps(event["properties"], sort_keys=True))
PY
}
if ! grep -q ' 204$' "$work/receive.reply"; then
    # A failed migration leaves the guest running on the source: show why, and that it is intact.
    migration_events
    echo check >&3
    wait_for "$work/src.out" '^CHECK ' 30
    echo "the migration failed; on the source: $(grep -E '^CHECK ' "$work/src.out")"
    exit 1
fi
wait "${pids[0]}" && echo "source VMM exited with status 0"
migration_events
wait_for "$work/dst.out" '^TICK' 10
echo check >&4
wait_for "$work/dst.out" '^CHECK ' 30
grep -E '^CHECK ' "$work/dst.out"
echo "last source TICK: $(grep -E '^TICK' "$work/src.out" | tail -1 | cut -d' ' -f1-2)," \
     "first destination TICK: $(grep -E '^TICK' "$work/dst.out" | head -1 | cut -d' ' -f1-2)"
! grep -q GUEST-BOOTED "$work/dst.out" || { echo "the guest rebooted on the destination" >&2; exit 1; }
