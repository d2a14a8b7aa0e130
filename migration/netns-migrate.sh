#!/usr/bin/env bash
# Host-to-host live migration over TCP, on one machine: two network namespaces joined by a veth pair stand for
# two hosts. The destination VMM listens in one (receive-migration tcp:DST_ADDR:PORT), the source VMM boots the
# checkguest in the other and migrates it across; the guest then verifies itself on the destination.
# Prints the total time, downtime and bytes, and the destination's CHECK. The namespaces are always removed.
#
#   migration/netns-migrate.sh [options]          (as root: creates namespaces)
#     -c debug|release   build configuration (default release)     -b BINARY   use this cloud-hypervisor
#     -w WORKLOADS       checkguest workloads (default memcheck:64,counter)
#     -m SIZE            guest memory (default 256M)      -p N   vCPUs (default 2)
#     -d MS              downtime_ms (default 300)        -a on|off   auto_converge (default on)
#     -t S               timeout_s (default 3600)         -l RATE     shape the link with tc, e.g. 1gbit
#     -z                 compress guest pages with zstd (send-migration compression=zstd)
# Needs /dev/kvm, ip (iproute2), curl, and tc for -l.
set -euo pipefail
cd "$(dirname "$0")/.."
. migration/lib.sh

config=release binary= workload=memcheck:64,counter memory=256M cpus=2 downtime=300 converge=on timeout=3600 rate= compression=none
while getopts "c:b:w:m:p:d:a:t:l:z" opt; do
    case $opt in
        c) config=$OPTARG ;; b) binary=$OPTARG ;; w) workload=$OPTARG ;; m) memory=$OPTARG ;; p) cpus=$OPTARG ;;
        d) downtime=$OPTARG ;; a) converge=$OPTARG ;; t) timeout=$OPTARG ;; l) rate=$OPTARG ;; z) compression=zstd ;;
        *) sed -n '2,15p' "$0"; exit 2 ;;
    esac
done
case $converge in on) converge=true ;; off) converge=false ;; *) echo "-a takes on or off" >&2; exit 2 ;; esac
[ "$(id -u)" = 0 ] || { echo "run as root: network namespaces and veth pairs need CAP_NET_ADMIN" >&2; exit 2; }
prepare "$config" "$binary"

# Names unique to this run (interface names: at most 15 bytes), so parallel runs do not collide.
tag=$$
src_ns=chmig-src-$tag dst_ns=chmig-dst-$tag
subnet=10.$((200 + tag % 50)).$((tag / 50 % 250)).
src_addr=${subnet}1 dst_addr=${subnet}2
work=$(mktemp -d /tmp/netns-migrate.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    exec 3>&- 4>&- || true
    ip netns del "$src_ns" 2>/dev/null || true   # takes the veth pair with it
    ip netns del "$dst_ns" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

ip netns add "$src_ns"
ip netns add "$dst_ns"
ip link add "mig$tag-s" netns "$src_ns" type veth peer name "mig$tag-d" netns "$dst_ns"
ip -n "$src_ns" addr add "$src_addr/24" dev "mig$tag-s"
ip -n "$dst_ns" addr add "$dst_addr/24" dev "mig$tag-d"
for ns in "$src_ns" "$dst_ns"; do ip -n "$ns" link set lo up; done
ip -n "$src_ns" link set "mig$tag-s" up
ip -n "$dst_ns" link set "mig$tag-d" up
if [ -n "$rate" ]; then
    tc -n "$src_ns" qdisc add dev "mig$tag-s" root tbf rate "$rate" burst 1mb latency 50ms
fi
echo "source in netns $src_ns ($src_addr), destination in netns $dst_ns ($dst_addr)${rate:+, link shaped to $rate}"

url="tcp:$dst_addr:6000"
src_exec=(ip netns exec "$src_ns") dst_exec=(ip netns exec "$dst_ns")
migrate_checkguest
