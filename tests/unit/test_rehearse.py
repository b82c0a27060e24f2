"""aihub.rehearse and aihub.reaper: the figures the rehearsal prints, and who the reaper stops."""

from types import SimpleNamespace

import pytest

from aihub import reaper
from aihub.labels import student_filter
from aihub.rehearse import Burst, percentile, spread, worst_lag_from_logs, worst_lag_from_metrics
from aihub.hubapi import SpawnResult


@pytest.mark.parametrize("fraction, expected", [(0.5, 5), (0.9, 9), (1.0, 10), (0.0, 1)])
def test_percentile_is_the_nearest_rank(fraction, expected):
    assert percentile(list(range(10, 0, -1)), fraction) == expected


def test_spread_reads_p50_p90_max():
    assert spread([1.0, 2.0, 3.0]) == "p50 2.0 s, p90 3.0 s, max 3.0 s"
    assert spread([]) == "none"


def metrics(counts: dict[str, int]) -> str:
    return "\n".join(f'jupyterhub_event_loop_interval_seconds_bucket{{le="{bound}"}} {count}.0'
                     for bound, count in counts.items())


def test_worst_lag_is_the_smallest_bucket_holding_every_new_interval():
    before = metrics({"0.05": 100, "0.25": 100, "1.0": 100, "+Inf": 100})
    after = metrics({"0.05": 150, "0.25": 159, "1.0": 160, "+Inf": 160})
    assert worst_lag_from_metrics(before, after) == 1.0
    assert worst_lag_from_metrics(before, before) is None
    stalled = metrics({"0.05": 150, "0.25": 159, "1.0": 160, "+Inf": 161})
    assert worst_lag_from_metrics(before, stalled) == float("inf")


def test_worst_lag_from_the_hubs_log_lines():
    logs = ("[W metrics:456] Event loop was unresponsive for at least 1.82s!\n"
            "[W metrics:456] Event loop was unresponsive for at least 6.46s!\n")
    assert worst_lag_from_logs(logs) == 6.46
    assert worst_lag_from_logs("all quiet") is None


def test_a_burst_splits_ready_from_failed():
    burst = Burst("with AI", spawns=[SpawnResult("a", 3.0), SpawnResult("b", 120.0, "timed out")])
    assert burst.ready == [3.0]
    assert [failure.name for failure in burst.failures] == ["b"]


class FakeContainer:
    def __init__(self, name):
        self.name, self.stopped, self.removed = name, False, False

    def stop(self, timeout):
        self.stopped = True

    def remove(self, force):
        self.removed = True


class FakeDocker:
    """The Docker client calls the reaper makes, answered from a list."""

    def __init__(self, hub_running: bool, students: list[FakeContainer]):
        self.hub_running, self.students, self.filters = hub_running, students, []
        self.containers = SimpleNamespace(list=self.list)

    def list(self, all=False, filters=None):
        self.filters.append(filters)
        if "com.docker.compose.service=hub" in filters["label"]:
            return ["hub"] if self.hub_running else []
        return self.students


def test_the_reaper_leaves_students_alone_while_the_hub_runs():
    students = [FakeContainer("class1-alice")]
    reaper.on_stack_stop(FakeDocker(True, students), "class1")
    assert not students[0].stopped


def test_the_reaper_stops_and_removes_this_stacks_students_when_the_stack_stops():
    students = [FakeContainer(f"class1-s{i}") for i in range(5)]
    client = FakeDocker(False, students)
    reaper.on_stack_stop(client, "class1")
    assert all(student.stopped and student.removed for student in students)
    assert student_filter("class1") in [{**f, "label": f["label"]} for f in client.filters]


def test_progress_events_split_over_chunks_are_read_whole():
    from aihub.hubapi import EventStream
    stream = EventStream()
    assert stream.feed(b'data: {"progress": 5, "mess') == []
    assert stream.feed(b'age": "in line"}\n\ndata: {"ready": true}\n') == [
        {"progress": 5, "message": "in line"}, {"ready": True}]
    assert stream.feed(b": keep-alive\n\n") == []
