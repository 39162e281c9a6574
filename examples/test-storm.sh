#!/usr/bin/env bash
# What production does to nginx with mlc in it (issue 18), with Debian's
# nginx, the module in examples/nginx, 4 workers and a SQLite loader:
#
#   examples/test-storm.sh [--build DIR] [--kills N] [--only storm|truncate]
#                          [--keep]
#
# storm     SIGKILLs of random workers (--kills, default 60, or
#           MLC_STORM_KILLS; one every 0.1-0.5 s) under load: wrk -t1 -c8
#           (if installed) and the checking client, examples/storm-check.py
#           (6 reader threads), while rows change in SQLite and are set or
#           deleted through the admin location and with mlcctl.  Every
#           answer is checked against SQLite's history: 0 wrong values, 0
#           stale after a set or delete had returned, 0 stuck keys (after
#           the storm every key, read from every worker, is SQLite's; then
#           every key is changed once more and read again), 0 hangs (every
#           request, wrk's too, ends within the 5 s lock timeout), `mlcctl
#           check` consistent every 10 kills and at the end, and no worker
#           dead of anything but our SIGKILLs.  Prints the figures.
# truncate  the arena file truncated under a running nginx: workers that
#           touch the lost pages die of SIGBUS once, and the new worker
#           refuses to start (exit code 2, which nginx does not respawn) and
#           says why in the error log; no crash-respawn loop under 4 s of
#           requests, the master stays, `nginx -s quit` stops it and
#           unlinks the name, mlcctl check calls the arena truncated, and a
#           restart makes a new arena and serves again.
#
# About 60-70 s with the defaults on 2 cores (the module is built first if
# $build/nginx-module has none newer than its source).  ./test.sh runs it
# in the end-to-end stage; MLC_STORM_KILLS=300 for a longer storm.
# Whatever happens, everything it started is stopped on exit, and nothing
# is left in /dev/shm.  Exit 77 when nginx-dev is not installed.
#
# Environment, as for examples/test-e2e.sh: MLC_E2E_PORTS=LO-HI takes
# nginx's port from that range (default: a random one in 20000-59999; a
# port in use is retried with another), MLC_E2E_PREFIX starts the arenas'
# names (default mlc-; storm- or trunc- and the pid follow).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
build=$root/build-ngx
kills=${MLC_STORM_KILLS:-60}
only=
keep=0
while [ $# -gt 0 ]; do
	case $1 in
	--build) build=$2; shift 2 ;;
	--kills) kills=$2; shift 2 ;;
	--only) only=$2; shift 2 ;;
	--keep) keep=1; shift ;;
	*) echo "usage: $0 [--build DIR] [--kills N] [--only storm|truncate] [--keep]" >&2; exit 2 ;;
	esac
done
case $build in /*) ;; *) build=$PWD/$build ;; esac

WORKERS=4
PREFIX=${MLC_E2E_PREFIX:-mlc-}
KEYS=1000
LOCK_MS=5000
SQL='SELECT value FROM items WHERE key = ?1 AND sleep_ms(abs(delay_ms)) = 0'
failed=0

say() { printf '  %s\n' "$*"; }
ok() { printf '  ok   %s\n' "$*"; }
fail() { failed=$((failed + 1)); printf '  FAIL %s\n' "$*"; return 1; }
. "$root/examples/e2e-lib.sh"

if [ ! -f /usr/share/nginx/src/conf_flags ] || [ ! -x /usr/sbin/nginx ]; then
	echo "storm: SKIPPED, nginx-dev is not installed (apt-get install nginx nginx-dev)"
	exit 77
fi
for tool in curl python3; do
	command -v $tool >/dev/null || { echo "storm: $tool is not installed (scripts/deps.sh)"; exit 1; }
done

# --- build: mlc, and the module unless one newer than its source exists ----
if [ ! -f "$build/build.ninja" ]; then
	meson setup "$build" "$root" --buildtype=release >/dev/null
fi
ninja -C "$build" >/dev/null
so=$build/nginx-module/objs/ngx_http_mlc_module.so
if [ ! -f "$so" ] || [ "$root/examples/nginx/ngx_http_mlc_module.c" -nt "$so" ] ||
	[ "$root/include/mlc.h" -nt "$so" ] || [ "$root/examples/nginx/config" -nt "$so" ]; then
	so=$("$root/examples/nginx/build.sh" "$build" "$build/nginx-module" | tail -1)
fi
mlcctl=$build/tools/mlcctl

# --- scratch, and stopping everything whatever happens ----------------------
e2e_scratch storm

# start_nginx NAME ARENA SIZE: nginx with 4 workers in $work/NAME on a free
# port; sets PID (master), BASE, LOG (error log), CONF
start_nginx() {
	local arena=$2 size=$3 dir=$work/$1 port try i user=
	mkdir -p "$dir"
	CONF=$dir/nginx.conf LOG=$dir/error.log PID=
	[ "$(id -u)" = 0 ] && user="user nobody $(id -gn nobody);"
	arenas+=("$arena")
	for try in 1 2 3 4 5; do
		pick_port "$try"; port=$PORT
		# any socket on it, not only a listener: a client's local
		# port (wrk's, curl's) makes bind() fail too
		ss -tan 2>/dev/null | grep -q ":$port " && continue
		cat >"$CONF" <<EOF
load_module $so;
$user
worker_processes $WORKERS;
daemon on;
pid $dir/nginx.pid;
error_log $LOG notice;
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $dir/body;
    proxy_temp_path $dir/proxy;
    fastcgi_temp_path $dir/fastcgi;
    uwsgi_temp_path $dir/uwsgi;
    scgi_temp_path $dir/scgi;
    keepalive_requests 1000000;
    mlc_arena $arena $size;
    server {
        listen 127.0.0.1:$port reuseport;
        location = /item {
            mlc_cache items $work/items.db "$SQL" ttl=60000 lock_timeout=$LOCK_MS;
        }
        location /admin/ { mlc_admin items; }
    }
}
EOF
		rm -f "$dir/nginx.pid"
		if nginx -p "$dir" -c "$CONF" 2>>"$dir/stderr" </dev/null; then
			for i in $(seq 50); do [ -s "$dir/nginx.pid" ] && break; sleep 0.1; done
			PID=$(cat "$dir/nginx.pid" 2>/dev/null || true)
		fi
		[ -n "$PID" ] && masters+=("$PID")
		BASE=http://127.0.0.1:$port
		for i in $(seq 100); do
			curl -s -o /dev/null --max-time 1 "$BASE/admin/stats" && return 0
			[ -n "$PID" ] && alive "$PID" || break
			sleep 0.1
		done
		grep -q "Address already in use" "$LOG" "$dir/stderr" 2>/dev/null || break
		# Taken meanwhile: the next port's nginx gets a clean log (the
		# checks read $LOG for alerts), this one's is kept aside.
		mv -f "$LOG" "$LOG.port-$port" 2>/dev/null || true
		mv -f "$dir/stderr" "$dir/stderr.port-$port" 2>/dev/null || true
	done
	cat "$LOG" "$dir/stderr" 2>/dev/null
	fail "nginx did not start"
}

# stop_nginx: nginx -s quit, then the master gone and the arena unlinked
stop_nginx() {
	local arena=$1 i
	nginx -p "$(dirname "$CONF")" -c "$CONF" -s quit 2>/dev/null || { fail "nginx -s quit"; return 1; }
	for i in $(seq 100); do alive "$PID" || break; sleep 0.1; done
	alive "$PID" && { fail "nginx $PID did not quit in 10 s"; return 1; }
	[ ! -e "/dev/shm/$arena" ] || { fail "/dev/shm/$arena left behind"; return 1; }
}

# wrk_max_ms OUT: max latency in ms, from wrk's "Latency avg stdev max" line
wrk_max_ms() {
	awk '$1 == "Latency" && NF >= 4 {
		v = $4; u = v; sub(/[0-9.]+/, "", u); sub(/[a-z]+$/, "", v)
		printf "%d", (u == "us" ? v / 1000 : u == "s" ? v * 1000 : u == "m" ? v * 60000 : v)
		exit }' <<<"$1"
}

# --- the SIGKILL storm ---------------------------------------------------------
run_storm() {
	local arena=${PREFIX}storm-$$ rc=0 wpid='' cpid wout='' wmax sig9 other
	echo "=== SIGKILL storm: nginx $(nginx -v 2>&1 | sed 's/.*\///'), $WORKERS workers, $KEYS keys in SQLite, $kills kills"
	python3 "$root/examples/storm-check.py" --make-db "$work/items.db" --keys $KEYS
	chmod 644 "$work/items.db"
	start_nginx storm "$arena" 64m || return 1
	ok "nginx on $BASE (master $PID, workers $(workers_of "$PID"))"
	if command -v wrk >/dev/null; then
		# until told to stop (SIGINT makes wrk print its summary)
		MLC_WRK_KEYS=$KEYS wrk -t1 -c8 -d600s --timeout 30s --latency \
			-s "$root/examples/server/wrk-items.lua" "$BASE" >"$work/wrk.out" 2>&1 &
		wpid=$!
		bgpids+=("$wpid")
	else
		say "wrk not installed: the checking client alone makes the load"
	fi
	# in the background, so that a signal to this script runs the trap
	# at once (bash runs it only after a foreground command ends)
	python3 "$root/examples/storm-check.py" --base "$BASE" --master "$PID" \
		--db "$work/items.db" --arena "$arena" --mlcctl "$mlcctl" \
		--keys $KEYS --kills "$kills" --workers $WORKERS \
		--lock-timeout-ms $LOCK_MS --seed $$ >"$work/storm.out" 2>&1 &
	cpid=$!
	bgpids+=("$cpid")
	wait "$cpid" || rc=$?
	cat "$work/storm.out"
	if [ -n "$wpid" ]; then
		# the storm is over; wrk ran through it and the checks after it
		kill -INT "$wpid" 2>/dev/null || true
		wait "$wpid" || true
		wout=$(cat "$work/wrk.out")
		wmax=$(wrk_max_ms "$wout")
		say "wrk during the storm: $(grep -o '[0-9]* requests in [0-9.a-z]*' <<<"$wout"), max latency ${wmax:-?} ms, $(grep -o 'Socket errors:.*' <<<"$wout" || echo 'no socket errors'); $(grep -o 'Non-2xx.*' <<<"$wout" || echo 'no non-2xx')"
		[ -n "$wmax" ] && [ "$wmax" -lt $LOCK_MS ] ||
			fail "wrk: max latency ${wmax:-?} ms, not under the $LOCK_MS ms lock timeout"
		grep -q 'timeout [1-9]' <<<"$wout" && fail "wrk: requests timed out: $(grep -o 'Socket errors:.*' <<<"$wout")"
	fi
	[ $rc = 0 ] && ok "every answer right: no wrong, stale or stuck key, no hang, mlcctl check consistent" ||
		fail "the checking client found problems (above)"
	# nginx's own account: every worker death is one of our SIGKILLs
	sig9=$(grep -c 'exited on signal 9' "$LOG" || true)
	other=$(grep 'exited on signal\|exited with' "$LOG" | grep -v 'exited on signal 9' || true)
	if [ -n "$other" ]; then
		fail "workers died of something else: $(head -3 <<<"$other")"
	else
		ok "nginx logged $sig9 workers killed by signal 9 and no other death"
	fi
	if grep -E '\[(alert|crit|emerg)\]' "$LOG" | grep -v 'exited on signal 9'; then
		fail "alerts in the error log (above)"
	fi
	stop_nginx "$arena" && ok "nginx -s quit: master gone, /dev/shm/$arena unlinked"
}

# --- the arena truncated under nginx --------------------------------------------
run_truncate() {
	local arena=${PREFIX}trunc-$$ bytes i t started deaths sigbus fatal n=0 codes out rc want
	echo "=== the arena truncated under a running nginx ($WORKERS workers)"
	[ -f "$work/items.db" ] || { python3 "$root/examples/storm-check.py" --make-db "$work/items.db" --keys $KEYS; chmod 644 "$work/items.db"; }
	start_nginx trunc "$arena" 16m || return 1
	for i in $(seq 40); do curl -s -o /dev/null --max-time 2 "$BASE/item?key=k$i"; done
	bytes=$(stat -c %s "/dev/shm/$arena")
	truncate -s 8192 "/dev/shm/$arena"
	say "truncated /dev/shm/$arena from $bytes to 8192 bytes; 4 s of requests"
	t=$(( $(date +%s%N) + 4000000000 ))
	while [ "$(date +%s%N)" -lt $t ]; do
		# new connections: reuseport spreads them over every worker
		for i in 1 2 3 4; do
			curl -s -o /dev/null --max-time 0.3 "$BASE/item?key=k$((RANDOM % KEYS))" &
		done
		wait
		n=$((n + 4))
	done
	codes=$(grep -o 'exited on signal [0-9]*\|exited with fatal code [0-9]*' "$LOG" | sort | uniq -c | sed 's/^ *//' | tr '\n' ',' | sed 's/,$//; s/,/, /g')
	deaths=$(grep -c 'exited on signal\|exited with code' "$LOG" || true)
	started=$(grep -c 'start worker process [0-9]' "$LOG" || true)
	sigbus=$(grep -c 'exited on signal 7' "$LOG" || true)
	fatal=$(grep -c 'exited with fatal code 2 and cannot be respawned' "$LOG" || true)
	say "$n requests; worker processes started $started, exits $deaths (${codes:-none}), left: $(workers_of "$PID")"
	alive "$PID" || { fail "the master died"; return 1; }
	# each worker dies of SIGBUS at most once; its successor refuses
	if [ "$deaths" -le $((2 * WORKERS)) ] && [ "$started" -le $((2 * WORKERS)) ]; then
		ok "no crash-respawn loop: $started worker processes in all for $WORKERS workers, $deaths exits ($sigbus of SIGBUS)"
	else
		fail "a respawn loop: $started worker processes for $WORKERS workers, $deaths exits ($sigbus of SIGBUS)"
	fi
	if [ "$fatal" -ge 1 ] &&
		grep -q "\[emerg\].*mlc_arena \"$arena\": /dev/shm/$arena is 8192 bytes but $bytes are mapped: the file was truncated" "$LOG"; then
		ok "the error log says why: $(grep -o 'is 8192 bytes but [0-9]* are mapped: the file was truncated[^;]*' "$LOG" | head -1), and $fatal workers exited with code 2 (not respawned)"
	else
		fail "no reason in the error log ($fatal exits with code 2): $(grep -i 'mlc\|exited' "$LOG" | tail -3)"
	fi
	out=$("$mlcctl" "$arena" check 2>&1) && rc=0 || rc=$?
	if [ $rc = 2 ] && grep -qi truncated <<<"$out"; then
		ok "mlcctl check: exit 2, '$(grep -i truncated <<<"$out" | head -1 | sed 's/^ *//')'"
	else
		fail "mlcctl check on the truncated arena: exit $rc: $out"
	fi
	stop_nginx "$arena" || return 1
	ok "nginx -s quit (no workers left): master gone, /dev/shm/$arena unlinked"
	# the way out the log suggests: a restart makes a new arena
	start_nginx trunc "$arena" 16m || return 1
	out=$(curl -sS --max-time 5 -w ' %{http_code} %header{x-cache-level}' "$BASE/item?key=k1")
	want=$(python3 -c 'import sqlite3, sys
sys.stdout.write(sqlite3.connect(sys.argv[1]).execute("SELECT value FROM items WHERE key = ?", ("k1",)).fetchone()[0].decode())' "$work/items.db")
	[ "$out" = "$want 200 3" ] ||
		{ fail "after a restart: '${out: -20}'"; return 1; }
	ok "restarted: a new $(stat -c %s "/dev/shm/$arena")-byte arena, k1 loaded and served again ($(workers_of "$PID" | wc -w) workers)"
	stop_nginx "$arena"
}

[ "$only" = truncate ] || run_storm || true
[ "$only" = storm ] || run_truncate || true
echo
echo "storm: $([ $failed = 0 ] && echo passed || echo "$failed failed")"
[ $failed = 0 ]
