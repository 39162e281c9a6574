#!/usr/bin/env bash
# Tests of the OpenResty binding (lua/lib/resty/mlc.lua) in a real nginx
# from Debian's packages: 4 workers on 127.0.0.1, driven with curl.
#
#   lua/t/run.sh [path/to/libmlc.so]
#
# libmlc: the argument, else $MLC_LIB, else a build of this tree in
# build-lua-t/.  Prints one "ok"/"not ok" line per check and exits non-zero
# if any failed.  Skips (exit 0, with a message) when nginx or its Lua
# module is not installed.  nginx runs in its own prefix under /tmp and is
# stopped, and its arena removed, however the script ends.
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
luadir=$(dirname "$here")
root=$(dirname "$luadir")
WORKERS=4

skip() { echo "SKIP: $*"; exit 0; }

NGINX=$(command -v nginx || true)
[ -x "${NGINX:-}" ] || [ -x /usr/sbin/nginx ] && NGINX=${NGINX:-/usr/sbin/nginx}
[ -x "${NGINX:-}" ] || skip "nginx is not installed (apt-get install nginx)"
moddir=/usr/lib/nginx/modules
[ -f $moddir/ngx_http_lua_module.so ] && [ -f $moddir/ndk_http_module.so ] ||
	skip "the nginx Lua module is not installed (apt-get install libnginx-mod-http-lua)"
restylib=/usr/share/lua/5.1
[ -f $restylib/resty/core.lua ] || skip "lua-resty-core is not installed"
[ -f $restylib/resty/lrucache.lua ] || skip "lua-resty-lrucache is not installed"
command -v curl >/dev/null || skip "curl is not installed"

lib=${1:-${MLC_LIB:-}}
if [ -z "$lib" ]; then
	b="$root/build-lua-t"
	if [ ! -f "$b/build.ninja" ]; then
		meson setup "$b" "$root" >/dev/null || exit 1
	fi
	ninja -C "$b" src/libmlc.so >/dev/null 2>&1 || ninja -C "$b" >/dev/null || exit 1
	lib=$(ls "$b"/libmlc.so "$b"/src/libmlc.so 2>/dev/null | head -1)
fi
lib=$(readlink -f "$lib")
[ -f "$lib" ] || { echo "not ok - libmlc not found: $lib"; exit 1; }

prefix=$(mktemp -d /tmp/mlc-lua-t.XXXXXX)
chmod 755 "$prefix"
mkdir -p "$prefix/conf" "$prefix/logs" "$prefix/tmp"

# The FFI declarations against mlc.h: every struct's fields (by name, in
# order) checked here, and a C program that prints every sizeof, offsetof
# and constant as the compiler sees them, for the test ffi_layout.
layout="$prefix/layout.txt"
layout_err=$(python3 "$here/ffi_layout.py" "$luadir/lib/resty/mlc.lua" \
	"$root/include/mlc.h" "$prefix/layout.c" 2>&1 >/dev/null &&
	${CC:-cc} -I "$root/include" -o "$prefix/layout" "$prefix/layout.c" 2>&1 &&
	"$prefix/layout" >"$layout" 2>&1)
layout_rc=$?
chmod 644 "$layout" 2>/dev/null
# This run's arenas: $arena and $arena-* (the tests name theirs so); the
# pid keeps them apart from those of any other run.
arena="mlc-lua-t-$$"
# The port: a free one that the kernel picks.  nginx listens with
# reuseport, so a second nginx of the same user on that port (another run
# of this script) would bind it too and take part of the connections.
# Every run picks its port and starts nginx (bound when its command
# returns: it daemonizes after) under one lock, so that the kernel never
# picks a port that another run has picked.  nginx does not inherit the
# lock's descriptor (it would hold the lock as long as it runs).
exec {lockfd}>>/tmp/mlc-lua-t.lock
if command -v flock >/dev/null; then
	flock -w 120 "$lockfd" || echo "# could not take /tmp/mlc-lua-t.lock: going on"
fi
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base="http://127.0.0.1:$port"
conf="$prefix/conf/nginx.conf"
failed=0
n=0

stop_nginx() {
	local pid
	pid=$(cat "$prefix/logs/nginx.pid" 2>/dev/null) || return 0
	kill -TERM "$pid" 2>/dev/null || return 0
	for _ in $(seq 50); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	kill -KILL "$pid" 2>/dev/null
	pkill -KILL -P "$pid" 2>/dev/null
	return 0
}

cleanup() {
	stop_nginx
	rm -f "/dev/shm/$arena" "/dev/shm/$arena"-* /dev/shm/.mlc-tmp."$arena".* \
		/dev/shm/.mlc-tmp."$arena"-*.* 2>/dev/null
	if [ "$failed" -ne 0 ] && [ -s "$prefix/logs/error.log" ]; then
		echo "# nginx error log (last 40 lines):"
		tail -40 "$prefix/logs/error.log" | sed 's/^/#   /'
	fi
	rm -rf "$prefix"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

user=
[ "$(id -u)" -eq 0 ] && user="user nobody nogroup;"

# server_rewrite_by_lua (lua-nginx-module 0.10.23 of Debian 12 has it; an
# older module would refuse the directive): its check is skipped without it
srw=""
grep -qa server_rewrite_by_lua_block $moddir/ngx_http_lua_module.so &&
	srw='server_rewrite_by_lua_block { require("mlc_t").in_server_rewrite() }'

cat >"$conf" <<EOF
$user
worker_processes $WORKERS;
daemon on;
master_process on;
pid logs/nginx.pid;
error_log logs/error.log warn;
load_module $moddir/ndk_http_module.so;
load_module $moddir/ngx_http_lua_module.so;
env MLC_LIB;
env MLC_T_ARENA;
env MLC_T_LAYOUT;
env MLC_T_BENCH;

events {
    worker_connections 256;
}

http {
    access_log off;
    client_body_temp_path tmp/body;
    proxy_temp_path tmp/proxy;
    fastcgi_temp_path tmp/fastcgi;
    uwsgi_temp_path tmp/uwsgi;
    scgi_temp_path tmp/scgi;

    lua_package_path "$luadir/lib/?.lua;$here/?.lua;$restylib/?.lua;;";
    lua_shared_dict counters 1m;
    lua_shared_dict miss 1m;
    lua_shared_dict locks 1m;
    lua_shared_dict ipc 1m;
    lua_shared_dict bench 64m;

    init_by_lua_block {
        require("mlc_t").init()
    }

    init_worker_by_lua_block {
        require("mlc_t").init_worker()
    }

    server {
        listen 127.0.0.1:$port reuseport;

        $srw

        location = /t {
            content_by_lua_block { require("mlc_t").run_test() }
        }

        location = /xw {
            content_by_lua_block { require("mlc_t").xw() }
        }

        location = /set {
            set_by_lua_block \$r { return require("mlc_t").in_set() }
            return 200 "\$r\n";
        }

        location = /bench {
            content_by_lua_block { require("mlc_t").bench() }
        }

        location = /l1fill {
            content_by_lua_block { require("mlc_t").l1fill() }
        }

        location = /n {
            content_by_lua_block { require("mlc_t").count() }
        }
    }
}
EOF

report() {	# report <ok:0|1> <name> [details...]
	n=$((n + 1))
	if [ "$1" -eq 0 ]; then
		echo "ok $n - $2"
	else
		failed=$((failed + 1))
		echo "not ok $n - $2"
		shift 2
		for d in "$@"; do
			[ -n "$d" ] && printf '%s\n' "$d" | sed 's/^/#   /'
		done
	fi
}

MLC_LIB="$lib" MLC_T_ARENA="$arena" MLC_T_LAYOUT="$layout" \
	MLC_T_BENCH="${MLC_T_BENCH:-0}" "$NGINX" -p "$prefix" -c "$conf" \
	-e "$prefix/logs/error.log" 2>"$prefix/logs/start.err" {lockfd}>&-
started=$?
exec {lockfd}>&-		# the port is nginx's: the next run may pick
if [ $started -ne 0 ]; then
	failed=1
	report 1 "nginx starts" "$(cat "$prefix/logs/start.err")"
	exit 1
fi
up=1
for _ in $(seq 100); do
	curl -s -o /dev/null "$base/n?key=x" && { up=0; break; }
	sleep 0.05
done
report $up "nginx starts with $WORKERS workers on 127.0.0.1:$port (libmlc $lib)" \
	"$(cat "$prefix/logs/start.err" 2>/dev/null)"
[ $up -eq 0 ] || exit 1

field() {	# field <name> <line>
	local x=" $2 "
	x=${x#* $1=}
	printf '%s' "${x%% *}"
}

batch() {	# batch <query> <count>: that many requests, one per connection
	local urls=() i
	for ((i = 0; i < $2; i++)); do urls+=("$base/xw?$1"); done
	curl -s --max-time 30 -H 'Connection: close' "${urls[@]}"
}

# MLC_T_BENCH=only: the benchmarks alone (while working on them)
if [ "${MLC_T_BENCH:-0}" = only ]; then
	curl -s --max-time 600 "$base/bench" | sed 's/^/# bench: /'
	exit 0
fi

# ---- fork: L1 entries inherited from the master ---------------------------
# init_by_lua loaded "init-key" (so the master's L1 holds it), and no worker
# has used its cache yet.  Change it from one worker: every worker must answer
# the new value, not the copy it inherited.
out=$(curl -s -H 'Connection: close' "$base/xw?op=set&ns=c&key=init-key&val=changed")
seen=""
for _ in $(seq 40); do
	while read -r line; do
		w=$(field w "$line")
		[ -z "$w" ] || [[ $seen == *"[$w]"* ]] && continue
		seen+="[$w]"
		[[ $line =~ v=changed ]] || inherited+="$line"$'\n'
	done < <(batch "op=get&ns=c&key=init-key&val=unused" 8)
	[ "$(grep -o '\[' <<<"$seen" | wc -l)" -ge $WORKERS ] && break
done
[ -z "${inherited:-}" ] && [ "$(grep -o '\[' <<<"$seen" | wc -l)" -ge $WORKERS ]
report $? "fork: no worker serves the L1 entry it inherited from init_by_lua" \
	"${inherited:-}" "set: $out" "workers: $seen"

# ---- in-worker tests (each one request, one worker) -----------------------
[ $layout_rc -eq 0 ]
report $? "ffi layout: resty.mlc's structs have mlc.h's fields, in order" \
	"$layout_err"

# resty.mlc's _VERSION is the rockspec's version (opm takes _VERSION)
modver=$(sed -n 's/^ *_VERSION = "\([^"]*\)",*$/\1/p' "$luadir/lib/resty/mlc.lua")
spec=$(ls "$luadir"/lua-resty-mlc-*.rockspec)
specver=$(sed -n 's/^version = "\(.*\)-[0-9]*"$/\1/p' "$spec")
[ -n "$modver" ] && [ "$modver" = "$specver" ] &&
	[ "$(basename "$spec")" = "lua-resty-mlc-$modver-1.rockspec" ]
report $? "version: resty.mlc _VERSION ($modver) is the rockspec's ($specver)" \
	"$(basename "$spec")"
for t in levels types negative ttl ttl_ngx errors resurrect resurrect_foreign \
	l1_serializer recreate arena_size \
	peek set_delete_purge bulk bulk_order validation options ipc lock anon \
	lru_size custom_lru oversize killed timer hash_index ffi_layout stats \
	l1_versions; do
	body=$(curl -s --max-time 30 "$base/t?test=$t")
	if [ "$(head -1 <<<"$body")" = ok ]; then
		report 0 "$t"
	else
		report 1 "$t" "$(tail -n +2 <<<"$body")" "${body:0:0}"
		[ -z "$body" ] && echo "#   (no response)"
	fi
done

# arena_size: the warning that an arena that exists keeps its size
grep -q "mlc arena '$arena-size' exists with 8388608 bytes, not the 16777216 of opts.size" \
	"$prefix/logs/error.log"
report $? "arena_size: mlc.arena() with another size than the arena's logs a warning"

# ---- cross-worker tests ---------------------------------------------------
# Every request opens a new connection; reuseport spreads them over the
# workers.  Each response line is "w=<id> v=<value> h=<hit> e=<err>".

# first_answers <query> <want-regex>: query until every worker answered;
# checks that the first answer of each worker matches; writes those first
# answers to $prefix/firsts.
first_answers() {
	local seen=() bad="" tries=0 line w firsts=""
	while [ ${#seen[@]} -lt $WORKERS ] && [ $tries -lt 40 ]; do
		tries=$((tries + 1))
		while read -r line; do
			w=$(field w "$line")
			[ -z "$w" ] && continue
			if [ -z "${seen[$w]:-}" ]; then
				seen[$w]=1
				firsts+="$line"$'\n'
				[[ $line =~ $2 ]] || bad+="$line (wanted /$2/)"$'\n'
			fi
		done < <(batch "$1" 8)
	done
	printf '%s' "$firsts" >"$prefix/firsts"
	if [ ${#seen[@]} -lt $WORKERS ]; then
		bad+="only ${#seen[@]} of $WORKERS workers answered"$'\n'
	fi
	[ -z "$bad" ] && return 0
	printf '%s' "$bad"
	return 1
}

# warm <query>: until every worker answered from its L1 (h=1).
warm() {
	local seen=() tries=0 line
	while [ ${#seen[@]} -lt $WORKERS ] && [ $tries -lt 40 ]; do
		tries=$((tries + 1))
		while read -r line; do
			[ "$(field h "$line")" = 1 ] && seen[$(field w "$line")]=1
		done < <(batch "$1" 8)
	done
	[ ${#seen[@]} -eq $WORKERS ]
}

cross_worker() {	# cross_worker <ns>
	local ns=$1 key="xw-$1-$$" out setter msg
	local q="op=get&ns=$ns&key=$key"

	warm "$q&val=old"
	report $? "[$ns] every worker holds the key in L1"

	out=$(batch "op=set&ns=$ns&key=$key&val=new" 1)
	setter=$(field w "$out")
	[ "$(field v "$out")" = true ]
	report $? "[$ns] set in worker $setter" "$out"

	# the setter answers from its L1, every other worker from L2
	msg=$(first_answers "$q&val=unused" "v=new h=[12] ")
	report $? "[$ns] set: every worker's next get returns the new value" "$msg"
	local bad=""
	while read -r line; do
		[ -z "$line" ] && continue
		if [ "$(field w "$line")" = "$setter" ]; then
			[ "$(field h "$line")" = 1 ] || bad+="$line (setter: wanted h=1)"$'\n'
		else
			[ "$(field h "$line")" = 2 ] || bad+="$line (wanted h=2: L1 invalidated)"$'\n'
		fi
	done <"$prefix/firsts"
	[ -z "$bad" ]
	report $? "[$ns] set: other workers re-read L2 (h=2), the setter kept L1 (h=1)" "$bad"

	warm "$q&val=unused" >/dev/null
	out=$(batch "op=delete&ns=$ns&key=$key" 1)
	msg=$(first_answers "$q&val=reloaded" "v=reloaded h=[23] ")
	report $? "[$ns] delete: every worker's next get reloads" "$msg" "delete: $out"

	warm "$q&val=unused" >/dev/null
	out=$(batch "op=purge&ns=$ns" 1)
	msg=$(first_answers "$q&val=after-purge" "v=after-purge h=[23] ")
	report $? "[$ns] purge: every worker's next get reloads" "$msg" "purge: $out"

	# set nil: a negative entry everywhere
	warm "$q&val=unused" >/dev/null
	out=$(batch "op=set&ns=$ns&key=$key" 1)
	msg=$(first_answers "$q&val=unused" "v=nil h=[12] e=nil")
	report $? "[$ns] set(nil): every worker's next get returns a cached nil" "$msg"
}

cross_worker c	# arena by name, handle opened in init_by_lua (before fork)
cross_worker w	# arena attached by name in init_worker_by_lua
cross_worker a	# anonymous arena made in init_by_lua

# single flight: concurrent requests on a cold key from every worker
single_flight() {	# single_flight <ns> <extra query> <want-regex> <what>
	local key="sf-$1-$$-$RANDOM" urls=() out count workers h3 bad i
	for ((i = 0; i < 24; i++)); do
		urls+=("$base/xw?op=get&ns=$1&key=$key&sleep=0.4&$2")
	done
	out=$(curl -s --max-time 30 --parallel --parallel-immediate 2>/dev/null \
		--parallel-max 24 -H 'Connection: close' "${urls[@]}")
	count=$(curl -s "$base/n?key=$key")
	workers=$(grep -o 'w=[0-9]*' <<<"$out" | sort -u | wc -l)
	h3=$(grep -c ' h=3 ' <<<"$out")
	bad=$(grep -Ev "$3" <<<"$out")
	[ "$count" = 1 ] && [ -z "$bad" ] && [ "$(wc -l <<<"$out")" -eq 24 ] &&
		[ "$workers" -ge 2 ]
	report $? "[$1] single flight $4: 24 concurrent requests on $workers workers, callback ran $count time(s), $h3 at L3" \
		"$bad" "$(sort <<<"$out" | uniq -c | head -8)"
}
single_flight c "val=loaded" "v=loaded h=[23] e=nil" "(value)"
single_flight a "val=loaded" "v=loaded h=[23] e=nil" "(anonymous arena)"
single_flight c "fail=down" "v=nil h=nil e=down" "(error shared with the waiters)"

# a storm of mixed gets, sets and deletes on a few keys from every worker,
# then each key set once more: every worker must answer that last value
urls=()
for ((i = 0; i < 400; i++)); do
	k="storm-$$-$((RANDOM % 12))"
	case $((RANDOM % 4)) in
	0) urls+=("$base/xw?op=set&ns=c&key=$k&val=s$i") ;;
	1) urls+=("$base/xw?op=delete&ns=c&key=$k") ;;
	*) urls+=("$base/xw?op=get&ns=c&key=$k&val=g$i") ;;
	esac
done
out=$(curl -s --max-time 60 --parallel --parallel-max 32 2>/dev/null \
	-H 'Connection: close' "${urls[@]}")
good=$(grep -c '^w=[0-9]* v=.* e=nil$' <<<"$out")
[ "$good" -eq 400 ]
report $? "storm: 400 concurrent mixed gets, sets and deletes all succeed ($good)" \
	"$(grep -v '^w=[0-9]* v=.* e=nil$' <<<"$out" | head -5)"
bad=""
for ((i = 0; i < 12; i++)); do
	k="storm-$$-$i"
	batch "op=set&ns=c&key=$k&val=final$i" 1 >/dev/null
	msg=$(first_answers "op=get&ns=c&key=$k&val=unused" "v=final$i h=[12] ") ||
		bad+="$k: $msg"$'\n'
done
[ -z "$bad" ]
report $? "storm: then every worker answers each key's last value" "$bad"

# Two workers each fill their L1 with the same 100,000 keys at once (each
# one's loads publish records the other reads), then read them all: every
# read must be an L1 hit.  Requests go to random workers: 6 at once, each
# worker fills once, the others answer "dup".  A worker that found a log
# record left unpublished for 100 ms (a writer descheduled that long, on a
# loaded machine: log_stuck) rightly empties its L1; such a run proves
# nothing either way and is run again (up to 3 times).
for try in 1 2 3; do
	out=$(curl -s --max-time 120 --parallel --parallel-immediate \
		--parallel-max 6 2>/dev/null -H 'Connection: close' \
		$(for i in 1 2 3 4 5 6; do printf '%s ' "$base/l1fill?n=100000&run=$$-$try"; done))
	grep -q ' stuck [1-9]\| overruns [1-9]' <<<"$out" || break
	echo "# L1 fill: a writer was held up (log_stuck/overruns), again: $(grep -c stuck <<<"$out") workers"
done
fills=$(grep -c '^filled ' <<<"$out")
bad=$(grep '^filled ' <<<"$out" | grep -v ' l1_hits=100000 wrong=0 ')
[ "$fills" -ge 2 ] && [ -z "$bad" ]
report $? "L1: $fills workers each filled 100,000 keys at once, then read them: 100% L1 hits" \
	"$(grep -v '^dup' <<<"$out")"

# a phase that cannot yield (set_by_lua): a loader runs the callback, a
# waiter does not wait (it would block the worker): it times out at once
out=$(curl -s "$base/set?key=set-$$")
[[ $out =~ ^v=set_by_lua\ e=nil\ h=3 ]]
report $? "set_by_lua: get() loads in a phase that cannot yield" "$out"
# The loader is seen inside its callback (its count, /n) before the waiter
# asks, and holds it 3 s: a waiter that blocked would wait for it (or the
# 5 s lock timeout), far beyond the 0.5 s allowed here.
key="set-wait-$$"
curl -s -o /dev/null "$base/xw?op=get&ns=c&key=$key&val=slow&sleep=3" &
loader=$!
for _ in $(seq 200); do
	[ "$(curl -s "$base/n?key=$key")" = 1 ] && break
	sleep 0.05
done
out=$(curl -s "$base/set?key=$key")
wait $loader
t=$(field t "$out")
[[ $out =~ ^v=nil\ e=could\ not\ acquire\ callback\ lock:\ timeout ]] &&
	awk -v t="$t" 'BEGIN { exit !(t < 0.5) }'
report $? "set_by_lua: a waiter gives up at once instead of blocking" "$out"

# server_rewrite_by_lua can yield (ngx.sleep): a waiter there waits for the
# loader as in rewrite_by_lua, instead of giving up at once
if [ -n "$srw" ]; then
	key="srw-wait-$$"
	curl -s -o /dev/null "$base/xw?op=get&ns=c&key=$key&val=slow&sleep=1" &
	loader=$!
	sleep 0.3
	out=$(curl -s "$base/n?srw=$key")
	wait $loader
	[[ $out =~ ^p=server_rewrite\ v=slow\ e=nil\ h=2 ]]
	report $? "server_rewrite_by_lua: a waiter waits for the loader" "$out"
else
	echo "# skipped: the nginx Lua module has no server_rewrite_by_lua"
fi

if [ "${MLC_T_BENCH:-0}" = 1 ]; then
	curl -s --max-time 600 "$base/bench" | sed 's/^/# bench: /'
fi

# ---- reload (HUP) ---------------------------------------------------------
# nginx runs init_by_lua again in a new Lua VM of the master, which opens its
# arenas anew, and closes the old VM.  The handles the old VM opened must go
# with it: else the master keeps every earlier generation's arenas mapped for
# good (an anonymous arena's memory is never given back).  Counted: the
# master's shared mappings of /dev/shm (the named arenas; the first
# generation's show the temporary name they were made under) and of
# anonymous shared memory (the anonymous arena; the lua_shared_dicts, which
# nginx keeps across reloads).
master=$(cat "$prefix/logs/nginx.pid")
arena_maps() {
	grep -cE ' rw-s .* (/dev/shm/|/dev/zero \(deleted\)$)' "/proc/$master/maps"
}
maps_before=$(arena_maps)
reloaded=0
for _ in 1 2 3; do
	old_workers=" $(pgrep -P "$master" | tr '\n' ' ')"
	kill -HUP "$master"
	# the reload is done once a worker of the new generation runs
	for _ in $(seq 100); do
		new=$(pgrep -P "$master" | while read -r p; do
			[[ $old_workers == *" $p "* ]] || echo "$p"; done)
		[ -n "$new" ] && { reloaded=$((reloaded + 1)); break; }
		sleep 0.05
	done
done
maps_after=$(arena_maps)
out=$(curl -s -H 'Connection: close' "$base/xw?op=get&ns=c&key=after-reload-$$&val=v")
[ "$reloaded" -eq 3 ] && [ "$maps_after" -eq "$maps_before" ] &&
	[[ $out =~ v=v\ h=3 ]]
report $? "reload: 3 HUPs, the master keeps no earlier generation's arenas mapped ($maps_before mappings, then $maps_after)" \
	"reloads done: $reloaded of 3" "get after the reloads: $out"

# ---- the error log --------------------------------------------------------
bad=$(grep -E '\[(alert|crit|emerg)\]|runtime error|\[error\]' "$prefix/logs/error.log" | head -5)
[ -z "$bad" ]
report $? "no errors in the nginx error log" "$bad"

echo "# $n checks, $failed failed"
[ "$failed" -eq 0 ]
