"""Run CMD and write its wall time, peak RSS and exit code to OUT (like GNU `time -f "%e %M"`).

Usage: python -S bench/rusage.py OUT.json CMD [ARGS...]

Why a launcher: Linux carries a process's RSS high-water mark across fork and exec, so a
command started straight from the (large) benchmark process would report the benchmark's own
peak. Forked from this small process instead, the command's peak is its own (plus at most this
launcher's few MiB).
"""

import json
import os
import sys
import time

out, cmd = sys.argv[1], sys.argv[2:]
started = time.perf_counter()
pid = os.fork()
if pid == 0:
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    try:
        os.execvp(cmd[0], cmd)  # noqa: S606 - argv list, no shell on purpose
    finally:
        os._exit(127)
_, status, usage = os.wait4(pid, 0)
wall = time.perf_counter() - started
with open(out, "w") as f:
    json.dump(
        {"wall_s": wall, "maxrss_kib": usage.ru_maxrss, "exit": os.waitstatus_to_exitcode(status)},
        f,
    )
