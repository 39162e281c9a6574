# What examples/test-e2e.sh and examples/test-storm.sh share: sourced by
# both, not run.  The caller sets `keep` (1: keep the scratch directory)
# before e2e_scratch.

# alive PID: running, not a zombie.  nginx runs daemonized (a binary
# upgrade needs it), so its masters are not our children, and the pid 1 of
# a container may not reap what it inherits: kill -0 would see the zombie.
alive() {
	local st
	st=$(cut -d' ' -f3 "/proc/$1/stat" 2>/dev/null) || return 1
	[ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

# pick_port [SALT]: a port to try, in PORT: from MLC_E2E_PORTS=LO-HI if
# set (so that runs side by side can be given ranges that do not meet),
# else from 20000-59999.  SALT varies the pick between tries.
pick_port() {
	local lo=20000 hi=59999 range=${MLC_E2E_PORTS:-}
	if [ -n "$range" ]; then lo=${range%-*}; hi=${range#*-}; fi
	PORT=$(( lo + (RANDOM * 7 + $$ + ${1:-0}) % (hi - lo + 1) ))
}

# workers_of PID: the worker processes of master PID (not a new master)
workers_of() {
	ps -o pid=,args= --ppid "$1" 2>/dev/null | awk '/worker process/ {print $1}' | sort -n | tr '\n' ' '
}

# e2e_scratch LABEL: a scratch directory in $work (mode 755: nginx workers
# run as nobody and read the database there), and a trap that, whatever
# happens, stops what the script registered in bgpids (background jobs),
# masters (nginx masters: TERM, then KILL with their children after 5 s)
# and unlinks the arenas named in arenas.  The directory is removed unless
# the script failed or keep=1.
e2e_scratch() {
	E2E_LABEL=$1
	work=$(mktemp -d "/tmp/mlc-$1.XXXXXX")
	chmod 755 "$work"
	masters=()
	arenas=()
	bgpids=()
	trap e2e_cleanup EXIT
	trap 'exit 130' INT TERM
}

e2e_cleanup() {
	local rc=$? pid kids t a
	for pid in "${bgpids[@]}"; do kill "$pid" 2>/dev/null || true; done
	for pid in "${masters[@]}"; do
		alive "$pid" || continue
		kids=$(pgrep -P "$pid" || true)
		kill -TERM "$pid" 2>/dev/null || true
		for t in $(seq 50); do alive "$pid" || break; sleep 0.1; done
		kill -KILL "$pid" $kids 2>/dev/null || true
	done
	for a in "${arenas[@]}"; do rm -f "/dev/shm/$a" /dev/shm/.mlc-tmp."$a".*; done
	if [ "${keep:-0}" = 1 ] || [ $rc -ne 0 ]; then
		echo "$E2E_LABEL: files kept in $work"
	else
		rm -rf "$work"
	fi
	exit $rc
}
