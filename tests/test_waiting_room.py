"""The waiting room on its own: priority order per key, due times, releases, the bound."""

import pytest

from scrapy_proxybalance.core.waiting import WaitingRoom


def drain_due(room, now):
    out = []
    while (due := room.pop_due(now)) is not None:
        out.append(due[1])
    return out


def test_requests_of_a_key_leave_in_priority_order_then_arrival():
    room = WaitingRoom(10)
    for name, priority in (("low-1", 0), ("high", 5), ("low-2", 0), ("mid", 1)):
        assert room.add(name, "k", priority, due=10) is None
    assert room.pop_due(9) is None and room.next_due() == 10
    assert drain_due(room, 10) == ["high", "mid", "low-1", "low-2"]
    assert len(room) == 0 and not room.waiting("k")


def test_keys_are_offered_earliest_due_first_and_a_deferred_head_keeps_its_place():
    room = WaitingRoom(10)
    room.add("a1", "a", 0, due=5)
    room.add("a2", "a", 0, due=5)
    room.add("b1", "b", 0, due=3)
    assert room.pop_due(6) == ("b", "b1")
    key, item = room.pop_due(6)
    assert (key, item) == ("a", "a1")
    room.defer(key, item, 0, due=8)  # it must wait on: back at the head of a, due at 8
    assert room.pop_due(7) is None and room.next_due() == 8
    assert drain_due(room, 8) == ["a1", "a2"]


def test_a_newcomer_can_join_a_waiting_key_without_moving_its_due_time():
    room = WaitingRoom(10)
    room.add("first", "k", 0, due=5)
    room.add("next", "k", 0, due=float("inf"))
    assert room.next_due() == 5 and drain_due(room, 5) == ["first", "next"]


def test_a_release_makes_the_oldest_key_waiting_for_one_due_now():
    room = WaitingRoom(10)
    room.add("a", "a", 0, due=100, on_release=True)
    room.add("b", "b", 0, due=100, on_release=True)
    room.add("c", "c", 0, due=100)
    room.released(now=1)
    assert drain_due(room, 1) == ["a"]
    room.released(now=2)
    assert drain_due(room, 2) == ["b"]
    room.released(now=3)  # c waits for a time, not a release
    assert room.pop_due(3) is None
    room.wake_all(now=4)
    assert drain_due(room, 4) == ["c"]


def test_a_full_room_hands_back_the_newcomer_or_the_lowest_of_its_key():
    room = WaitingRoom(2)
    assert room.add("x", "k", 1, due=0) is None
    assert room.add("y", "k", 1, due=0) is None
    assert room.full
    assert room.add("z", "other", 9, due=0) == "z"  # no lower request of its key to give way
    assert room.add("w", "k", 0, due=0) == "w"  # not above the lowest of k
    assert room.add("v", "k", 5, due=0) == "y"  # outranks the lowest of k, which goes back instead
    assert drain_due(room, 0) == ["v", "x"]


def test_drain_empties_the_room_keeping_each_key_s_order():
    room = WaitingRoom(10)
    room.add("a2", "a", 0, due=1)
    room.add("a1", "a", 1, due=1)
    room.add("b", "b", 0, due=2, on_release=True)
    assert list(room.drain()) == ["a1", "a2", "b"]
    assert len(room) == 0 and room.next_due() is None and room.pop_due(10) is None


class _Timer:
    def cancel(self) -> None:
        pass


def test_requests_due_within_one_tick_wake_together_on_one_timer(monkeypatch):
    """A paced crawl wakes once per tick, not once per waiting request: the scheduler's timer
    is set for the earliest due time rounded up to WAKE_TICK, and every request due by then goes."""
    import scrapy_proxybalance.scheduler as scheduler

    timers: list[float] = []
    monkeypatch.setattr(scheduler, "call_later", lambda delay, fire: timers.append(delay) or _Timer())
    s = scheduler.ProxyScheduler(None, None, 100)  # type: ignore[arg-type]
    now, tick = 1000.0, scheduler.WAKE_TICK
    dues = [now + 12 * tick + tick * f for f in (0.1, 0.3, 0.9)]  # three requests due within one tick
    for i, due in enumerate(dues):
        s.room.add(f"r{i}", ("site", i), 0, due)
        s._arm(now)
    assert len(timers) == 1  # one timer for the three
    fires_at = now + timers[0]
    assert fires_at == pytest.approx(now + 13 * tick) and fires_at >= max(dues)
    assert [s.room.pop_due(fires_at) for _ in dues] == [(("site", i), f"r{i}") for i in range(3)]
