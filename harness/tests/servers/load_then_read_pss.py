"""The load command of tests/servers.rs: runs wrk, then, at once, reads what
`allocbench measure` reads at its `loaded` sample, taken right after this
command exits: `Pss:` of /proc/PID/smaps_rollup summed over the measured tree.

Usage: python3 load_then_read_pss.py OUT WRK-ARGS...

Appends one JSON line to OUT: {"pids": [...], "pss_kib": N}. The measured tree
is every descendant of allocbench (this script's parent) but this script and
allocbench's watchdog (`allocbench __watchdog`). wrk's output goes to this
script's stdout, where measure reads its `Requests/sec:` line.
"""

import json
import os
import subprocess
import sys

out, wrk_args = sys.argv[1], sys.argv[2:]
wrk = subprocess.run(["wrk", *wrk_args])
if wrk.returncode != 0:
    sys.exit(wrk.returncode)


def read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:  # the process has ended
        return None


children = {}
for name in os.listdir("/proc"):
    if name.isdigit():
        stat = read(f"/proc/{name}/stat")
        if stat:
            ppid = int(stat.rsplit(b") ", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(name))

me, tree, todo = os.getpid(), [], [os.getppid()]
while todo:
    for pid in children.get(todo.pop(), []):
        if pid == me or b"__watchdog" in (read(f"/proc/{pid}/cmdline") or b""):
            continue
        tree.append(pid)
        todo.append(pid)

pss_kib = 0
for pid in tree:
    for line in (read(f"/proc/{pid}/smaps_rollup") or b"").splitlines():
        if line.startswith(b"Pss:"):
            pss_kib += int(line.split()[1])

with open(out, "a") as f:
    f.write(json.dumps({"pids": sorted(tree), "pss_kib": pss_kib}) + "\n")
