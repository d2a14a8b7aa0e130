#!/usr/bin/env bash
# Same-host live migration of the checkguest between two of our VMMs, over a UNIX socket or TCP loopback:
# prints the source's measured total time, downtime and bytes, and has the guest verify itself afterwards.
#
#   migration/migrate-local.sh [unix|tcp] [options]
#     -c debug|release   build configuration (default release: the numbers to quote)
#     -b BINARY          use this cloud-hypervisor instead of building one
#     -w WORKLOADS       checkguest workloads (default memcheck:32,counter)
#     -m SIZE            guest memory (default 256M)      -p N   vCPUs (default 2)
#     -d MS              downtime_ms (default 300)
#     -a on|off          auto_converge (default on)   -t S   timeout_s (default 3600; timeout_strategy Cancel)
#     -l                 local migration (unix only): shared=on memory, handed over as memfds instead of copied
#     -z                 compress guest pages with zstd (send-migration compression=zstd; not with -l)
# Needs /dev/kvm, curl and the checkguest (make -C Tests/Guest). SCRATCH picks the build dir (.build).
set -euo pipefail
cd "$(dirname "$0")/.."
. migration/lib.sh

transport=${1:-unix}; shift || true
config=release binary= workload=memcheck:32,counter memory=256M cpus=2 downtime=300 converge=on timeout=3600 local_memory=false compression=none
while getopts "c:b:w:m:p:d:a:t:lz" opt; do
    case $opt in
        c) config=$OPTARG ;; b) binary=$OPTARG ;; w) workload=$OPTARG ;; m) memory=$OPTARG ;; p) cpus=$OPTARG ;;
        d) downtime=$OPTARG ;; a) converge=$OPTARG ;; t) timeout=$OPTARG ;; l) local_memory=true ;; z) compression=zstd ;;
        *) sed -n '2,14p' "$0"; exit 2 ;;
    esac
done
[ "$local_memory" = false ] || [ "$transport" = unix ] || { echo "-l (local migration) needs the unix transport" >&2; exit 2; }
case $converge in on) converge=true ;; off) converge=false ;; *) echo "-a takes on or off" >&2; exit 2 ;; esac
prepare "$config" "$binary"

work=$(mktemp -d /tmp/migrate-local.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; exec 3>&- 4>&- || true; rm -rf "$work"; }
trap cleanup EXIT

case $transport in
    unix) url="unix:$work/migration.sock" ;;
    tcp) url="tcp:127.0.0.1:$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')" ;;
    *) echo "transport must be unix or tcp" >&2; exit 2 ;;
esac
src_exec=() dst_exec=()
migrate_checkguest
