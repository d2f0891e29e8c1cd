"""Which config revision every serving worker has applied (the master's view).

An Admin API write is answered once *every* worker serves it, not only the one that took
the write: a client that writes a route and then sends a request, which any worker may
accept, must find the route there. Each worker reports the revision it has applied after
every change (`plane.APPLIED`) and once it accepts connections (`plane.WORKER_READY`); the
fan-out thread keeps those reports here and announces the lowest revision among the live,
serving workers (`plane.encode_served`). A worker's Admin write waits for that announcement.

Pure bookkeeping, no I/O and no locks: the fan-out thread alone calls it.
"""

from __future__ import annotations

from collections.abc import Collection


class ServedRevisions:
    def __init__(self) -> None:
        self.applied: dict[int, int] = {}     # pid -> the last revision it applied
        self.serving: set[int] = set()        # pids that reported they accept connections

    def report_applied(self, pid: int, rev: int) -> None:
        if rev > self.applied.get(pid, -1):
            self.applied[pid] = rev

    def report_ready(self, pid: int) -> None:
        self.serving.add(pid)

    def lowest(self, live: Collection[int], published: int) -> int:
        """The revision every live, serving worker has applied: the lowest of theirs.

        A worker that has not reported ready yet does not count (it accepts nothing; it
        syncs before it does). With none serving, nothing lags: `published`. The pids no
        longer in `live` (exited, retiring) are forgotten here."""
        for pid in [pid for pid in self.applied if pid not in live]:
            del self.applied[pid]
        self.serving.intersection_update(live)
        revs = [self.applied.get(pid, -1) for pid in self.serving]
        return min(revs) if revs else published
