"""The master's bookkeeping of the revision every serving worker has applied."""

from gateway.master.served import ServedRevisions


def test_lowest_applied_revision_of_the_serving_workers():
    served = ServedRevisions()
    served.report_applied(1, 7)
    served.report_applied(2, 5)
    assert served.lowest({1, 2}, published=9) == 5
    served.report_applied(2, 9)
    assert served.lowest({1, 2}, published=9) == 7


def test_a_worker_not_yet_serving_does_not_hold_the_others_back():
    served = ServedRevisions()
    served.report_applied(1, 8)
    served.report_applied(2, 3)            # still booting: not serving yet
    assert served.lowest({1}, published=8) == 8
    served.report_applied(2, 3)            # its report again, right after its ready report
    assert served.lowest({1, 2}, published=8) == 3


def test_a_serving_worker_without_a_report_holds_the_announcement_back():
    served = ServedRevisions()
    served.report_applied(1, 8)
    assert served.lowest({1, 2}, published=8) == -1


def test_exited_workers_are_forgotten():
    served = ServedRevisions()
    served.report_applied(1, 8)
    served.report_applied(2, 2)
    assert served.lowest({1}, published=8) == 8     # pid 2 exited while behind
    assert served.applied == {1: 8}
    served.report_applied(2, 2)                      # a late report of a gone pid
    assert served.lowest({1}, published=8) == 8
    assert served.applied == {1: 8}


def test_no_serving_worker_means_nothing_lags():
    assert ServedRevisions().lowest(set(), published=4) == 4


def test_reports_never_move_a_worker_backwards():
    served = ServedRevisions()
    served.report_applied(1, 6)
    served.report_applied(1, 4)            # reordered or stale report
    assert served.lowest({1}, published=6) == 6
