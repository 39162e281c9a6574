#!/usr/bin/env bash
# End-to-end test of mlc-relay: three "hosts" in network namespaces made
# here, each with its own arena and three reader processes, and one
# redis-server (in a fourth namespace, on the bridge that joins them).
#
#   host A (10.213.77.11)  relay-test-host serve: 3 readers, worker 0 runs
#                          the in-process relay (publish + subscribe); the
#                          writer is a separate process with a publish-only
#                          in-process relay
#   host B (10.213.77.12)  3 readers, worker 0 runs the in-process relay
#   host C (10.213.77.13)  3 readers, no in-process relay: the mlc-relay
#                          daemon applies the other hosts' changes
#   redis  (10.213.77.1)   redis-server bound to the bridge address only
#
# Every loader reads a "database" in a control file in /dev/shm that all
# hosts share (it stands for the system of record); the caches are only
# refreshed by invalidations (TTL never), so a stale value shows.
#
# Phases: propagation latency over 200 changes (sets and deletes) on A to
# the readers' L1 on B and C; bulk throughput; a queue too small (drops ->
# PURGE published); B cut off for 3 s (gap counted, fresh after); Redis
# killed and restarted while A writes more than its queue holds (gaps on B
# and C, the overflow published as a PURGE, everyone fresh after); Redis
# refusing writes (out of memory) while A writes (each refused entry, and
# each refused purge, published again as a PURGE once it takes them).  Readers check
# all along that no key ever goes back to an older version.
#
# usage: relay/test-relay.sh [BUILD_DIR]     (default: build-relay)
# Exit 77: skipped (not root, no `ip netns`, no redis-server, not built).
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build-relay}
HOSTBIN=$BUILD/relay/relay-test-host
DAEMON=$BUILD/relay/mlc-relay

skip() { echo "SKIP: relay test: $*"; exit 77; }
[ -x "$HOSTBIN" ] && [ -x "$DAEMON" ] || skip "$BUILD/relay not built (hiredis missing?)"
command -v redis-server >/dev/null || skip "redis-server not installed"
command -v ip >/dev/null || skip "ip (iproute2) not installed"
[ "$(id -u)" = 0 ] || skip "needs root for ip netns"

TAG=${RELAY_TEST_TAG:-mlcr}$$	# names: namespaces, arenas, the control file
NR=${TAG}R NA=${TAG}A NB=${TAG}B NC=${TAG}C
NET=10.213.77
REDIS=$NET.1:6379
T=$(mktemp -d "${TMPDIR:-/tmp}/mlc-relay-test.XXXXXX")
CTL=/dev/shm/$TAG-ctl
PIDS=()
REDIS_PID=

cleanup() {
	local rc=$?
	set +e
	[ -e "$CTL" ] && "$HOSTBIN" quit --ctl "$CTL" 2>/dev/null
	sleep 0.3
	# Everything still running in our namespaces, by pid.
	for ns in $NA $NB $NC $NR; do
		for p in $(ip netns pids "$ns" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
	done
	for p in "${PIDS[@]}" $REDIS_PID; do kill -9 "$p" 2>/dev/null; done
	wait 2>/dev/null
	for ns in $NA $NB $NC $NR; do ip netns del "$ns" 2>/dev/null; done
	rm -f /dev/shm/$TAG-* "$CTL"
	if [ $rc != 0 ] && [ $rc != 77 ]; then
		echo "--- logs ($T)"
		for f in "$T"/*.log; do echo "== $f"; tail -n 20 "$f"; done
	fi
	rm -rf "$T"
	exit $rc
}
trap cleanup EXIT
trap 'exit 1' INT TERM

ip netns add $NR 2>/dev/null || skip "ip netns add not permitted"
t_start=$(date +%s.%N)
say() { printf '  %s\n' "$*"; }
fail() { echo "FAIL: $*"; exit 1; }
ms_since() { awk -v s="$1" -v e="$(date +%s.%N)" 'BEGIN { printf "%.0f", (e - s) * 1000 }'; }

# --- network: a bridge in the redis namespace, a veth to each host ------
ip -n $NR link set lo up
ip -n $NR link add br0 type bridge
ip -n $NR addr add $NET.1/24 dev br0
ip -n $NR link set br0 up
i=11
for h in A B C; do
	ns=${TAG}$h
	ip netns add "$ns"
	ip -n $NR link add v$h type veth peer name eth0 netns "$ns"
	ip -n $NR link set v$h master br0
	ip -n $NR link set v$h up
	ip -n "$ns" link set lo up
	ip -n "$ns" addr add $NET.$i/24 dev eth0
	ip -n "$ns" link set eth0 up
	i=$((i + 1))
done

# --- redis, listening on the bridge address only ----------------------
start_redis() {
	ip netns exec $NR redis-server --bind $NET.1 --port 6379 --save '' \
		--appendonly no --protected-mode no --dir "$T" \
		--logfile "$T/redis.log" --daemonize no &
	REDIS_PID=$!
	for _ in $(seq 100); do
		ip netns exec $NA redis-cli -h $NET.1 -p 6379 ping 2>/dev/null | grep -q PONG && return 0
		sleep 0.05
	done
	fail "redis did not start"
}
start_redis
say "network: 3 hosts + redis at $REDIS ($(ms_since "$t_start") ms)"

# --- 0. the daemon's options: refused before anything is made ------------
echo "0. mlc-relay refuses bad options (exit 2, no arena made); --bytes takes K/M/G"
refused() {	# what-the-message-names option...
	local what=$1 rc=0
	shift
	ip netns exec $NC timeout 5 "$DAEMON" --arena $TAG-opt --create --host $NET.1 "$@" \
		>"$T/opt.log" 2>&1 || rc=$?
	[ $rc = 2 ] || fail "mlc-relay $*: exit $rc, wanted 2: $(cat "$T/opt.log")"
	grep -q -- "$what" "$T/opt.log" || fail "mlc-relay $*: no '$what' in: $(cat "$T/opt.log")"
	[ ! -e /dev/shm/$TAG-opt ] || fail "mlc-relay $*: made the arena"
}
refused "--port" --host-id X --port notaport
refused "--port" --host-id X --port 70000
refused "--port" --host-id X --port 0
refused "--bytes" --host-id X --bytes lots
refused "--bytes" --host-id X --bytes 16Q
refused "--block-ms" --host-id X --block-ms 5x
refused "--maxlen" --host-id X --maxlen -1
refused "--maxlen" --host-id X --maxlen 9223372036854775808
refused "--stats-ms" --host-id X --stats-ms 99999999999
refused "--host-id" --host-id "$(printf '%064d' 0)"
refused "--host-id" --host-id ""
refused "--host" --host-id X --host "$(printf '%0256d' 0)"
refused "--unix" --host-id X --unix "$(printf '%0108d' 0)"
refused "--password" --host-id X --password "$(printf '%0128d' 0)"
refused "--stream" --host-id X --stream "$(printf '%0256d' 0)"
refused "--stream" --host-id X --stream ""
ip netns exec $NC "$DAEMON" --arena $TAG-opt --create --bytes 16M --host-id X \
	--host $NET.1 --io-timeout-ms 500 >"$T/opt.log" 2>&1 &
OPT=$!; PIDS+=($OPT)
for _ in $(seq 100); do [ -e /dev/shm/$TAG-opt ] && break; sleep 0.05; done
size=$(stat -c %s /dev/shm/$TAG-opt 2>/dev/null || echo none)
kill -TERM $OPT; wait $OPT || fail "mlc-relay --bytes 16M: $(cat "$T/opt.log")"
[ "$size" = 16777216 ] || fail "mlc-relay --bytes 16M made an arena of $size bytes: $(cat "$T/opt.log")"
rm -f /dev/shm/$TAG-opt
say "bad numbers, ports and strings over their limits refused; --bytes 16M made 16777216 bytes"

# --- hosts ---------------------------------------------------------------
"$HOSTBIN" init "$CTL" 16
RELAY_FLAGS=(--host $NET.1 --port 6379 --block-ms 1000 --io-timeout-ms 500
	     --backoff-max-ms 400 --max-offline-ms 1000)
ip netns exec $NA "$HOSTBIN" serve --ctl "$CTL" --arena $TAG-A --host 0 --id A \
	--workers 3 --relay $REDIS --stats-file "$T/stA" >"$T/hostA.log" 2>&1 &
PIDS+=($!); SERVE_A=$!
ip netns exec $NB "$HOSTBIN" serve --ctl "$CTL" --arena $TAG-B --host 1 --id B \
	--workers 3 --relay $REDIS --stats-file "$T/stB" >"$T/hostB.log" 2>&1 &
PIDS+=($!); SERVE_B=$!
ip netns exec $NC "$HOSTBIN" serve --ctl "$CTL" --arena $TAG-C --host 2 --id C \
	--workers 3 >"$T/hostC.log" 2>&1 &
PIDS+=($!); SERVE_C=$!
ip netns exec $NC "$DAEMON" --arena $TAG-C --host-id C "${RELAY_FLAGS[@]}" \
	--stats-file "$T/stC" >"$T/daemonC.log" 2>&1 &
PIDS+=($!); DAEMON_C=$!

stat_of() { sed -n "s/.*\b$2=\([0-9]*\).*/\1/p" "$T/st$1" 2>/dev/null || true; }
wstat() { sed -n "s/^writer relay: .*\b$2=\([0-9]*\).*/\1/p" "$1"; }	# log field
wait_stat() {	# host field min timeout_ms
	"$HOSTBIN" wait-stat --ctl "$CTL" --file "$T/st$1" --field "$2" --ge "$3" \
		--timeout-ms "$4" >/dev/null || fail "host $1: $2 did not reach $3: $(cat "$T/st$1" 2>/dev/null)"
}
for h in A B C; do wait_stat $h connected 2 5000; done
sleep 0.3	# readers warm: every key in every L1
say "hosts up, relays connected ($(ms_since "$t_start") ms)"

write() {	# on host A, through a publish-only in-process relay
	ip netns exec $NA "$HOSTBIN" write --ctl "$CTL" --arena $TAG-A --id A \
		--relay $REDIS "$@"
}
check() { "$HOSTBIN" check --ctl "$CTL" --hosts 7 "$@"; }
fresh_everywhere() {	# every host fresh within $1 ms, or fail
	local out
	out=$(check --timeout-ms "$1") || fail "$out"
	say "$out"
}

# --- 1. propagation latency: 200 changes on A, seen in L1 on B and C ----
echo "1. latency: 200 changes on A (set/delete alternately), each waited for on B and C"
write --rounds 200 --hosts 6 --interval-ms 2 --timeout-ms 3000 >"$T/w1.log"
grep -q ", 0 not seen" "$T/w1.log" || fail "changes not seen on B and C: $(cat "$T/w1.log")"
LAT=$("$HOSTBIN" report --ctl "$CTL" --hosts 6 --from 0 --to 200) || fail "$LAT"
say "$LAT (3 readers x 2 hosts x 200 changes)"
say "$(check --timeout-ms 2000)"

echo "1b. 20 changes made by a child forked after the writer's relay started"
write --fork --rounds 20 --hosts 6 --interval-ms 2 --timeout-ms 3000 >"$T/w1b.log"
grep -q ", 0 not seen" "$T/w1b.log" || fail "changes from a forked child not seen: $(cat "$T/w1b.log")"
say "$(grep '^writer relay' "$T/w1b.log") (the child's)"

# --- 2. throughput ------------------------------------------------------------
echo "2. throughput: 20000 sets on A, until all are read on B"
BULK=$(write --bulk 20000 --timeout-ms 20000 | grep '^bulk:')
say "$BULK"
case $BULK in *"-1.0 ms"*) fail "bulk not received" ;; esac

# --- 3. queue overflow: drops become a PURGE of the namespace --------------
echo "3. queue of 4 events, 300 changes as fast as possible"
write --rounds 300 --queue-len 4 >"$T/w3.log"
dropped=$(wstat "$T/w3.log" dropped)
purges=$(wstat "$T/w3.log" drop_purges)
say "writer dropped $dropped events and published $purges purges instead"
[ "${dropped:-0}" -gt 0 ] && [ "${purges:-0}" -gt 0 ] || fail "no drops/purges: $(cat "$T/w3.log")"
fresh_everywhere 5000

# --- 4. partition: B cut off for 3 s while A writes -------------------------
echo "4. B cut off for 3 s while A makes 60 changes"
g0=$(stat_of B gaps)
ip -n $NR link set vB down
t0=$(date +%s.%N)
write --rounds 60 --hosts 4 --interval-ms 40 --timeout-ms 2000 >"$T/w4.log"
sleep "$(awk -v s="$t0" -v e="$(date +%s.%N)" 'BEGIN { d = 3 - (e - s); print (d > 0 ? d : 0) }')"
ip -n $NR link set vB up
t_up=$(date +%s.%N)
wait_stat B gaps $((g0 + 1)) 10000
say "B reconnected and purged (gap) $(ms_since "$t_up") ms after the link came back"
fresh_everywhere 5000
say "B: $(cat "$T/stB")"

# --- 5. Redis killed and restarted while A writes -----------------------------
# (A queue of 8: the ~60 changes of the outage overflow it even if the
# writer's 25 ms naps take twice as long on a loaded machine; 32, which
# the 60 only just overflowed, could hold them all.)
echo "5. Redis killed (SIGKILL) for ~1.5 s while A makes 80 changes (writer queue: 8)"
gB=$(stat_of B gaps); gC=$(stat_of C gaps)
write --rounds 80 --interval-ms 25 --queue-len 8 >"$T/w5.log" &
W5=$!
sleep 0.5
kill -9 $REDIS_PID; wait $REDIS_PID 2>/dev/null || true
sleep 1.5
start_redis
t_up=$(date +%s.%N)
wait $W5 || fail "writer failed: $(cat "$T/w5.log")"
wait_stat B gaps $((gB + 1)) 10000
wait_stat C gaps $((gC + 1)) 10000
dropped=$(wstat "$T/w5.log" dropped)
purges=$(wstat "$T/w5.log" drop_purges)
published=$(wstat "$T/w5.log" published)
say "B and C purged (gap) after the restart; the writer queued and then published $published entries, dropped $dropped events and published $purges purges for them"
[ "${dropped:-0}" -gt 0 ] && [ "${purges:-0}" -gt 0 ] || fail "writer did not overflow during the outage: $(cat "$T/w5.log")"
fresh_everywhere 8000

# --- 6. Redis refuses the writes (out of memory) -------------------------------
echo "6. Redis refuses writes (maxmemory 1, noeviction) while A makes 20 changes, for ~1.5 s"
rcli() { ip netns exec $NA redis-cli -h $NET.1 -p 6379 "$@" >/dev/null; }
rcli config set maxmemory-policy noeviction
rcli config set maxmemory 1
write --rounds 20 --interval-ms 25 >"$T/w6.log" &
W6=$!
sleep 1.5
rcli config set maxmemory 0
wait $W6 || fail "writer failed: $(cat "$T/w6.log")"
errors=$(wstat "$T/w6.log" errors)
purges=$(wstat "$T/w6.log" drop_purges)
say "the writer's entries were refused $errors times; it published $purges purges once Redis took them"
[ "${errors:-0}" -gt 0 ] && [ "${purges:-0}" -gt 0 ] || fail "no refusals, or no purge published after them: $(cat "$T/w6.log")"
fresh_everywhere 5000

# --- the end -------------------------------------------------------------------
"$HOSTBIN" quit --ctl "$CTL"
rc=0
for p in $SERVE_A $SERVE_B $SERVE_C; do wait "$p" || rc=1; done
kill -TERM $DAEMON_C; wait $DAEMON_C || rc=1
grep -h "relay:\|worker" "$T"/host?.log | sed 's/^/  /'
grep -h "final" "$T/daemonC.log" | sed 's/^/  host C daemon /'
[ $rc = 0 ] || fail "a reader saw an old value after a newer one, or failed"
echo "relay test passed in $(ms_since "$t_start") ms"
echo "RESULT latency: $LAT"
echo "RESULT throughput: $BULK"
