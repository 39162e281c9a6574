#!/usr/bin/env python3
"""The checking client of examples/test-storm.sh: SIGKILLs nginx workers at
random while it reads every key, changes rows in SQLite and invalidates
them (POST /admin/set and DELETE /admin/item on the admin location, mlcctl
set and delete), then checks every answer against SQLite's history.

  storm-check.py --make-db FILE [--keys N]
  storm-check.py --base URL --master PID --db FILE --arena NAME
                 --mlcctl PATH [--keys N] [--kills N] [--workers N]
                 [--readers N] [--seed N] [--lock-timeout-ms MS]

A value is "KEY:GEN:" and filler whose length depends on KEY and GEN, so
every body names the row version it came from.  Each key's changes come
from one thread, one at a time: SQLite first (the time before is its
begin), then the cache (the time after is its done).  An answer to a GET
that started at S and ended at E must be a version G of that key with
  done(later versions) > S        (no version older than the last one
                                   invalidated before the GET began: else
                                   "stale")
  begin(G) < E                    (no version from the future: "wrong")
and byte for byte that version's value (else "wrong"); a 404 must match a
version in that window in which the row did not exist.  Keys that never
exist must be 404 always.  A stale answer to a GET that began within
MLC__LOG_STUCK_MS (100 ms) of the invalidation's end is counted apart
("within"), as docs/internals.md ("Bound") allows it.

After the storm (no kills, no changes): every key read from every worker
must be the last version ("stuck" otherwise), then every key is changed
once more and read from every worker again.  Hangs: every request, even
one dropped by a kill, must end within the lock timeout.

Prints the figures; exit 0 only when nothing was wrong, stale or stuck,
no request hung, and every `mlcctl check` said consistent.
"""
import argparse
import http.client
import os
import random
import signal
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.parse

NS = "items"
LOG_STUCK_MS = 100      # src/log.h MLC__LOG_STUCK_MS


def value_of(key, gen):
    """The row value of KEY at version GEN (bytes), 8 to ~1500 bytes."""
    head = "%s:%d:" % (key, gen)
    n = (sum(map(ord, key)) * 7919 + gen * 104729) % 1500
    filler = ("abcdefghijklmnopqrstuvwxyz0123456789" * 50)[:n]
    return (head + filler).encode()


class History:
    """Per key: a list of versions [gen, value or None, begin, done]."""

    def __init__(self, keys):
        self.v = {k: [[0, value_of(k, 0), 0.0, 0.0]] for k in keys}
        self.lock = threading.Lock()

    def begin(self, key, value):
        with self.lock:
            h = self.v[key]
            g = h[-1][0] + 1
            h.append([g, value, time.monotonic(), None])
            return g

    def done(self, key, gen):
        t = time.monotonic()
        with self.lock:
            for e in self.v[key]:
                if e[0] == gen:
                    e[3] = t

    def last(self, key):
        return self.v[key][-1]


def workers_of(master):
    """The pids of MASTER's worker processes, from /proc."""
    out = []
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                st = f.read()
            with open("/proc/%s/cmdline" % d, "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        fields = st[st.rindex(")") + 2:].split()
        if int(fields[1]) == master and fields[0] not in "ZX" and \
                b"worker process" in cmd:
            out.append(int(d))
    return sorted(out)


class Conn:
    """A keep-alive connection; None after a failure (reconnects)."""

    def __init__(self, host, port, timeout):
        self.host, self.port, self.timeout = host, port, timeout
        self.c = None

    def request(self, method, path, body=None):
        """(status, worker, body) or raises OSError/HTTPException."""
        if self.c is None:
            self.c = http.client.HTTPConnection(self.host, self.port,
                                                timeout=self.timeout)
        try:
            self.c.request(method, path, body=body)
            r = self.c.getresponse()
            data = r.read()
            return r.status, r.getheader("X-Worker"), data
        except (OSError, http.client.HTTPException):
            self.c.close()
            self.c = None
            raise


class Storm:
    def __init__(self, a):
        self.a = a
        u = urllib.parse.urlparse(a.base)
        self.host, self.port = u.hostname, u.port
        self.keys = ["k%d" % i for i in range(a.keys)]
        self.missing = ["nokey%d" % i for i in range(a.keys // 10 + 1)]
        self.hist = History(self.keys)
        self.db = sqlite3.connect(a.db, timeout=30, check_same_thread=False,
                                  isolation_level=None)
        self.db.execute("PRAGMA synchronous = OFF")
        self.dblock = threading.Lock()
        self.stop = threading.Event()
        self.timeout = a.lock_timeout_ms / 1000.0
        self.answers = []       # (key, t0, t1, status, body)
        self.alock = threading.Lock()
        self.n = dict(requests=0, dropped=0, errors=0, hangs=0, kills=0,
                      http_sets=0, http_deletes=0, ctl_sets=0,
                      ctl_deletes=0, row_deletes=0, retries=0, checks=0,
                      checks_bad=0, max_ms=0.0, respawned=0)
        self.problems = []
        self.plock = threading.Lock()
        self.kill_times = []

    def problem(self, kind, msg):
        """Count one; the first 10 of each kind are printed."""
        with self.plock:
            self.n[kind] = self.n.get(kind, 0) + 1
            if self.n[kind] <= 10:
                self.problems.append("%s: %s" % (kind, msg))

    def latency(self, t0, t1, what):
        ms = (t1 - t0) * 1000
        with self.plock:
            if ms > self.n["max_ms"]:
                self.n["max_ms"] = ms
        if ms >= self.a.lock_timeout_ms:
            self.problem("hangs", "%s took %.0f ms" % (what, ms))

    # ---- the database -------------------------------------------------
    def db_write(self, key, value):
        with self.dblock:
            if value is None:
                self.db.execute("DELETE FROM items WHERE key = ?", (key,))
            else:
                self.db.execute("INSERT OR REPLACE INTO items (key, value, "
                                "delay_ms) VALUES (?, ?, 0)", (key, value))

    # ---- threads --------------------------------------------------------
    def reader(self, seed):
        rnd = random.Random(seed)
        c = Conn(self.host, self.port, self.timeout * 2)
        while not self.stop.is_set():
            if rnd.random() < 0.05:
                key = rnd.choice(self.missing)
            else:
                key = self.keys[min(int(rnd.paretovariate(1.0)) - 1,
                                    len(self.keys) - 1)] \
                    if rnd.random() < 0.5 else rnd.choice(self.keys)
            t0 = time.monotonic()
            try:
                st, _, body = c.request("GET", "/item?key=" + key)
            except (OSError, http.client.HTTPException) as e:
                t1 = time.monotonic()
                self.latency(t0, t1, "GET %s (dropped: %s)" % (key, e))
                with self.plock:
                    self.n["dropped"] += 1
                continue
            t1 = time.monotonic()
            self.latency(t0, t1, "GET " + key)
            with self.alock:
                self.answers.append((key, t0, t1, st, body))

    def invalidate_http(self, c, key, value, op):
        end = time.monotonic() + 4 * self.timeout
        while time.monotonic() < end:
            try:
                if op == "set":
                    st, _, body = c.request("POST", "/admin/set?key=" + key,
                                            value)
                else:
                    st, _, body = c.request("DELETE", "/admin/item?key=" + key)
                if st == 200:
                    return
                self.problem("errors", "%s %s: %d %r" % (op, key, st,
                                                         body[:80]))
            except (OSError, http.client.HTTPException):
                pass            # its worker was killed: again
            with self.plock:
                self.n["retries"] += 1
            time.sleep(0.01)
        self.problem("stuck", "%s %s: no success in %.0f s" % (
            op, key, 4 * self.timeout))

    def invalidate_ctl(self, key, value, op):
        cmd = [self.a.mlcctl, self.a.arena, op, NS, key]
        if op == "set":
            cmd += ["-", "--ttl", "never"]
        for _ in range(3):
            r = subprocess.run(cmd, input=value if op == "set" else None,
                               capture_output=True)
            if r.returncode == 0:
                return
            self.problem("errors", "mlcctl %s %s: exit %d %r" % (
                op, key, r.returncode, r.stderr[:200]))
            time.sleep(0.05)
        self.problem("stuck", "mlcctl %s %s: failed 3 times" % (op, key))

    def mutator(self, seed, keys, via):
        rnd = random.Random(seed)
        c = Conn(self.host, self.port, self.timeout * 2)
        while not self.stop.is_set():
            key = rnd.choice(keys)
            last = self.hist.last(key)
            if last[1] is not None and rnd.random() < 0.1:
                value = None            # the row goes away
            else:
                value = value_of(key, last[0] + 1)
            op = "set" if value is not None and rnd.random() < 0.5 \
                else "delete"
            g = self.hist.begin(key, value)
            self.db_write(key, value)
            if via == "http":
                self.invalidate_http(c, key, value, op)
            else:
                self.invalidate_ctl(key, value, op)
            self.hist.done(key, g)
            with self.plock:
                self.n[("http_" if via == "http" else "ctl_") + op + "s"] += 1
                if value is None:
                    self.n["row_deletes"] += 1
            time.sleep(rnd.uniform(0, 0.01))

    def mlcctl_check(self):
        r = subprocess.run([self.a.mlcctl, self.a.arena, "check"],
                           capture_output=True, text=True)
        self.n["checks"] += 1
        if r.returncode != 0:
            self.n["checks_bad"] += 1
            self.problem("checks_bad", "mlcctl check: exit %d: %s" % (
                r.returncode, (r.stdout + r.stderr)[-400:]))

    def killer(self, seed):
        rnd = random.Random(seed)
        seen = set(workers_of(self.a.master))
        while self.n["kills"] < self.a.kills:
            time.sleep(rnd.uniform(0.1, 0.5))
            ws = workers_of(self.a.master)
            seen.update(ws)
            if not ws:
                continue
            w = rnd.choice(ws)
            try:
                os.kill(w, signal.SIGKILL)
                self.kill_times.append(time.monotonic())
                self.n["kills"] += 1
            except ProcessLookupError:
                pass
            if self.n["kills"] % 10 == 0:
                self.mlcctl_check()
        time.sleep(0.5)
        seen.update(workers_of(self.a.master))
        self.n["respawned"] = len(seen) - self.a.workers

    # ---- the checks -----------------------------------------------------
    def judge(self, key, t0, t1, st, body):
        """None if the answer is right, else (kind, message)."""
        if key not in self.hist.v:
            if st == 404:
                return None
            return ("wrong", "%s never exists, got %d %r" % (key, st,
                                                             body[:40]))
        if st not in (200, 404):
            return ("errors", "GET %s: %d %r" % (key, st, body[:80]))
        h = self.hist.v[key]
        lo = 0                  # the last version done before t0
        for i, e in enumerate(h):
            if e[3] is not None and e[3] < t0:
                lo = i
        hi = lo                 # the last version begun before t1
        for i, e in enumerate(h):
            if e[2] < t1:
                hi = max(hi, i)
        want = None if st == 404 else body
        match = [i for i, e in enumerate(h) if e[1] == want]
        if any(lo <= i <= hi for i in match):
            return None
        if any(i < lo for i in match):
            # A log cell claimed before the invalidation and not yet
            # published (its writer killed, or descheduled, between its
            # claim and its publish) holds other handles' L1 back until
            # MLC__LOG_STUCK_MS after its claim (docs/internals.md,
            # "Bound"): so within that much of the invalidation's end,
            # stale is the documented cost; later, it is a bug.
            after = (t0 - h[lo][3]) * 1000
            kills = [k for k in self.kill_times if k < t0]
            msg = "GET %s at +%.3f s: version %s, but version %d was " \
                "invalidated %.1f ms before it began (last kill %s)" % (
                    key, t0 - self.t_start,
                    "absent" if want is None else max(
                        i for i in match if i < lo),
                    lo, after, "%.1f ms before" % ((t0 - kills[-1]) * 1000)
                    if kills else "none")
            if after < LOG_STUCK_MS:
                return ("stale_held", msg)
            return ("stale", msg)
        return ("wrong", "GET %s: %d %r matches no version in %d..%d" % (
            key, st, body[:40], lo, hi))

    def judge_all(self):
        for a in self.answers:
            self.n["requests"] += 1
            j = self.judge(*a)
            if j:
                self.problem(*j)

    def conns_per_worker(self):
        """A connection to each worker (reuseport spreads them)."""
        by = {}
        for _ in range(400):
            c = Conn(self.host, self.port, self.timeout * 2)
            try:
                st, w, _ = c.request("GET", "/admin/stats")
            except (OSError, http.client.HTTPException):
                continue
            by.setdefault(w, c)
            if len(by) >= self.a.workers:
                return list(by.values())
        return list(by.values())

    def read_everywhere(self, conns, key, what):
        want = self.hist.last(key)[1]
        for c in conns:
            t0 = time.monotonic()
            try:
                st, w, body = c.request("GET", "/item?key=" + key)
            except (OSError, http.client.HTTPException) as e:
                self.problem("stuck", "%s: GET %s: %s" % (what, key, e))
                continue
            self.latency(t0, time.monotonic(), "GET " + key)
            self.n["requests"] += 1
            got = None if st == 404 else body
            if st not in (200, 404) or got != want:
                self.problem("stuck", "%s: %s from worker %s: %d %r, want "
                             "%r" % (what, key, w, st, body[:40],
                                     want[:40] if want else "404"))

    def after(self):
        ws = []
        for _ in range(100):
            ws = workers_of(self.a.master)
            if len(ws) == self.a.workers:
                break
            time.sleep(0.1)
        conns = self.conns_per_worker()
        if len(conns) < self.a.workers:
            self.problem("stuck", "only %d of %d workers answer after the "
                         "storm" % (len(conns), self.a.workers))
        for key in self.keys:
            self.read_everywhere(conns, key, "after the storm")
        c = Conn(self.host, self.port, self.timeout * 2)
        for i, key in enumerate(self.keys):
            value = value_of(key, self.hist.last(key)[0] + 1)
            g = self.hist.begin(key, value)
            self.db_write(key, value)
            self.invalidate_http(c, key, value,
                                 "set" if i % 2 else "delete")
            self.hist.done(key, g)
        for key in self.keys:
            self.read_everywhere(conns, key, "changed after the storm")
        self.mlcctl_check()

    def run(self):
        self.t_start = time.monotonic()
        w0 = workers_of(self.a.master)
        if len(w0) != self.a.workers:
            print("storm: %d workers, want %d" % (len(w0), self.a.workers))
            return 1
        th = [threading.Thread(target=self.reader, args=(i,))
              for i in range(self.a.readers)]
        even, odd = self.keys[0::2], self.keys[1::2]
        th.append(threading.Thread(target=self.mutator,
                                   args=(101, even, "http")))
        th.append(threading.Thread(target=self.mutator,
                                   args=(102, odd, "ctl")))
        for t in th:
            t.start()
        self.killer(7 + self.a.seed)
        self.stop.set()
        for t in th:
            t.join()
        self.secs = time.monotonic() - self.t_start
        self.judge_all()
        self.after()
        return 0


def make_db(path, keys):
    """The table the nginx loader reads (the SQL of test-e2e.sh)."""
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("CREATE TABLE items (key TEXT PRIMARY KEY, value BLOB, "
               "delay_ms INTEGER NOT NULL DEFAULT 0)")
    db.execute("BEGIN")
    for i in range(keys):
        k = "k%d" % i
        db.execute("INSERT INTO items VALUES (?, ?, 0)", (k, value_of(k, 0)))
    db.execute("COMMIT")
    db.close()
    return 0


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--make-db", metavar="FILE",
                   help="only create the database with --keys rows")
    p.add_argument("--base")
    p.add_argument("--master", type=int)
    p.add_argument("--db")
    p.add_argument("--arena")
    p.add_argument("--mlcctl")
    p.add_argument("--keys", type=int, default=1000)
    p.add_argument("--kills", type=int, default=60)
    p.add_argument("--workers", type=int, default=4)
    p.add_argument("--readers", type=int, default=6)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lock-timeout-ms", type=int, default=5000)
    a = p.parse_args()
    if a.make_db:
        return make_db(a.make_db, a.keys)
    if None in (a.base, a.master, a.db, a.arena, a.mlcctl):
        p.error("--base, --master, --db, --arena and --mlcctl are needed")
    s = Storm(a)
    if s.run():
        return 1
    n = s.n
    muts = n["http_sets"] + n["http_deletes"] + n["ctl_sets"] + \
        n["ctl_deletes"]
    print("storm: %d SIGKILLs of workers in %.1f s (%d respawned), "
          "%d answers checked (%d dropped by a kill), %d changes "
          "(admin set %d, admin delete %d, mlcctl set %d, mlcctl delete "
          "%d; %d rows removed; %d retried after a kill)" % (
              n["kills"], s.secs, n["respawned"], n["requests"],
              n["dropped"], muts, n["http_sets"], n["http_deletes"],
              n["ctl_sets"], n["ctl_deletes"], n["row_deletes"],
              n["retries"]))
    print("storm: wrong %d, stale %d (and %d within the %d ms a stuck log "
          "cell allows), stuck %d, errors %d, hangs %d; "
          "max latency %.0f ms (lock timeout %d ms); mlcctl check %d "
          "times, %d not consistent" % (
              n.get("wrong", 0), n.get("stale", 0), n.get("stale_held", 0),
              LOG_STUCK_MS, n.get("stuck", 0),
              n.get("errors", 0), n.get("hangs", 0), n["max_ms"],
              a.lock_timeout_ms, n["checks"], n["checks_bad"]))
    for m in s.problems:
        print("  " + m)
    bad = sum(n.get(k, 0) for k in ("wrong", "stale", "stuck", "errors",
                                    "hangs", "checks_bad"))
    if n["kills"] < a.kills:
        bad += 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
