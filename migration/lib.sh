# Shared by migrate-local.sh and netns-migrate.sh (source it): build or pick the VMM, drive two VMMs over their
# REST sockets, migrate the checkguest between them and have it verify itself on the destination.
# Expects `work` (a scratch directory) and an array `pids` to which every started process is added.

# prepare CONFIG BINARY: sets `vmm` to BINARY, or builds CONFIG (scratch dir $SCRATCH, default .build); sets
# `guest` to the checkguest, built if needed.
prepare() {
    guest=Tests/Guest/build/checkguest.elf
    [ -f "$guest" ] || make -C Tests/Guest >/dev/null
    if [ -n "$2" ]; then vmm=$2; return; fi
    local scratch=${SCRATCH:-.build}
    swift build -c "$1" --scratch-path "$scratch" --product cloud-hypervisor >/dev/null
    vmm="$scratch/$1/cloud-hypervisor"
}

rest() { curl -s -m 120 --unix-socket "$1" -X PUT -H 'Content-Type: application/json' -d "$3" -w ' %{http_code}' "http://localhost/api/v1/$2"; }

wait_for() { # file pattern seconds
    for _ in $(seq $(($3 * 20))); do grep -qE "$2" "$1" && return 0; sleep 0.05; done
    echo "timed out waiting for /$2/ in $1" >&2; tail -20 "$1" >&2; exit 1
}

# The source's migration-* events, then one summary line for a finished migration: the source's downtime
# (pause → its reading of the Ok) and the guest's (pause → resumed on the destination, from both events).
migration_events() {
    python3 - "$work/src.events" "$work/dst.events" <<'PY'
import json, os, sys
def events(path):
    if not os.path.exists(path):
        return []
    return [json.loads(r) for r in open(path).read().split("\n\n") if r.strip()]
received = next((e["properties"] for e in events(sys.argv[2]) if e["event"] == "migration-received"), None)
for event in events(sys.argv[1]):
    if event["event"].startswith("migration-"):
        print(event["event"], json.dumps(event["properties"], sort_keys=True))
    if event["event"] == "migration-finished":
        p = event["properties"]
        guest = f", guest paused {(int(received['resumed_at_us']) - int(p['paused_at_us'])) / 1000:.2f} ms" if received else ""
        print(f"total {p['total_ms']} ms, downtime {p['downtime_ms']} ms{guest}, {int(p['transferred_bytes']) / 1e6:.1f} MB sent, "
              f"{p['iterations']} dirty passes, throttle {p['throttle_percent']} % at the end")
PY
}

# migrate_checkguest: boots the checkguest (workload, memory, cpus) in a source VMM, migrates it over `url` to a
# destination VMM (downtime, converge = true|false, timeout; local_memory = true: shared=on memory handed over as memfds,
# default false; compression = none|zstd, default none), and checks it there: TICKs go on, `check` answers
# CHECK ok, no workload reports a bad page. `src_exec`/`dst_exec` (arrays) prefix the VMM commands, e.g.
# (ip netns exec NS). Exits non-zero on any failure, after showing why.
# The dirty workload's rate on the source, one figure (MiB/s) per second since it started rewriting: the
# seconds after send-migration are those with its writes logged.
source_dirty_rates() {
    grep -qE '^DIRTY ' "$work/src.out" || return 0
    echo "source DIRTY MiB/s each second: $(grep -E '^DIRTY ' "$work/src.out" | sed -E 's/.*rate=([0-9.]+).*/\1/' | tr '\n' ' ')"
}

migrate_checkguest() {
    local shared= compress=
    [ "${compression:-none}" = none ] || compress=",\"compression\":\"$compression\""
    [ "${local_memory:-false}" = true ] && shared=,shared=on
    mkfifo "$work/src.in" "$work/dst.in"
    "${src_exec[@]}" "$vmm" -v --kernel "$guest" --cpus "boot=$cpus" --memory "size=$memory$shared" --serial tty --console off \
        --cmdline "workload=$workload" --api-socket "path=$work/src.api" --event-monitor "path=$work/src.events" \
        <"$work/src.in" >"$work/src.out" 2>&1 & pids+=($!)
    exec 3>"$work/src.in"
    "${dst_exec[@]}" "$vmm" -v --api-socket "path=$work/dst.api" --event-monitor "path=$work/dst.events" <"$work/dst.in" >"$work/dst.out" 2>&1 & pids+=($!)
    exec 4>"$work/dst.in"
    wait_for "$work/src.out" '^GUEST-BOOTED' 30
    sleep 2   # let the workloads fill their memory
    rest "$work/dst.api" vm.receive-migration "{\"receiver_url\":\"$url\"}" >"$work/receive.reply" &
    local receiver=$!
    for _ in $(seq 100); do
        case $url in
            unix:*) [ -S "${url#unix:}" ] && break ;;
            tcp:*) "${dst_exec[@]}" ss -ltn | grep -q ":${url##*:} " && break ;;
        esac
        sleep 0.05
    done
    echo "send-migration: $(rest "$work/src.api" vm.send-migration \
        "{\"destination_url\":\"$url\",\"downtime_ms\":$downtime,\"timeout_s\":$timeout,\"auto_converge\":$converge,\"local\":${local_memory:-false}$compress}")"
    wait "$receiver" || true
    echo "receive-migration: $(cat "$work/receive.reply")"
    if ! grep -q ' 204$' "$work/receive.reply"; then
        # A failed migration leaves the guest running on the source: show why, and that it is intact.
        migration_events
        echo check >&3
        wait_for "$work/src.out" '^CHECK ' 30
        echo "the migration failed; on the source: $(grep -E '^CHECK ' "$work/src.out")"
        grep -hoE 'migration: dirty log .*' "$work/src.out" || true
        source_dirty_rates
        exit 1
    fi
    wait "${pids[0]}" && echo "source VMM exited with status 0"
    migration_events
    # Where the downtime went (source's steps, destination's build).
    grep -hoE 'migration downtime .*|migration: dirty log .*|migration: the VM was finished .*|migration compression: .*' "$work/src.out" "$work/dst.out" || true
    source_dirty_rates
    wait_for "$work/dst.out" '^TICK' 10
    echo check >&4
    wait_for "$work/dst.out" '^CHECK ' 30
    echo "destination: $(grep -E '^CHECK ' "$work/dst.out")"
    # The workloads' own verdicts, printed each second.
    case $workload in *memcheck*|*dirty*) wait_for "$work/dst.out" '^(MEMCHECK|DIRTY) ' 5 ;; esac
    grep -E '^(MEMCHECK|DIRTY) ' "$work/dst.out" | tail -2 | sed 's/^/destination: /' || true
    echo "last source TICK: $(grep -E '^TICK' "$work/src.out" | tail -1 | cut -d' ' -f1-2)," \
         "first destination TICK: $(grep -E '^TICK' "$work/dst.out" | head -1 | cut -d' ' -f1-2)"
    if ! grep -q '^CHECK ok' "$work/dst.out" || grep -qE '^CHECK bad|\bbad=[1-9]|^PANIC' "$work/dst.out"; then
        echo "the guest found bad pages on the destination" >&2; exit 1
    fi
    if grep -q GUEST-BOOTED "$work/dst.out"; then echo "the guest rebooted on the destination" >&2; exit 1; fi
}
