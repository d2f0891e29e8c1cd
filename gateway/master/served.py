"""Which config revision every serving worker has applied (the master's view).

An Admin API write is answered once *every* worker serves it, not only the one that took
the write: a client that writes a route and then sends a request, which any worker may
accept, must find the route there. Each worker reports the revision it has applied after
every change and once more right after it reports ready (`plane.APPLIED`); the fan-out
thread keeps those reports here and announces the lowest revision among the serving workers
(`plane.encode_served`). A worker's Admin write waits for that announcement.

Which workers serve is the master's own record (`Master.serving_pids`: ready and alive).
Pure bookkeeping, no I/O and no locks: the fan-out thread alone calls it.
"""

from __future__ import annotations

from collections.abc import Collection


class ServedRevisions:
    def __init__(self) -> None:
        self.applied: dict[int, int] = {}     # pid -> the last revision it applied

    def report_applied(self, pid: int, rev: int) -> None:
        if rev > self.applied.get(pid, -1):
            self.applied[pid] = rev

    def lowest(self, serving: Collection[int], published: int) -> int:
        """The revision every serving worker has applied: the lowest of theirs; with none
        serving, nothing lags: `published`.

        The reports of any other pid are dropped: an exited worker's for good, a booting
        one's until it serves (it syncs before it accepts anything, and reports again right
        after its ready report)."""
        for pid in [pid for pid in self.applied if pid not in serving]:
            del self.applied[pid]
        revs = [self.applied.get(pid, -1) for pid in serving]
        return min(revs) if revs else published
