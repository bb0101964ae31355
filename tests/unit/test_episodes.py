"""Terminal episodes and expected-duration estimates (service.episodes), on explicit timelines."""

from __future__ import annotations

from routeguard.core.events import RouteChanged, TerminalEngaged
from routeguard.service.episodes import EpisodeBook

T0 = 1_800_000_000.0


def _terminal(at: float) -> TerminalEngaged:
    return TerminalEngaged("p", "suspend", "no model left", at, notify=("ops",))


def _change(at: float, from_model: str | None, to_model: str | None, cooldown: float | None = None) -> RouteChanged:
    return RouteChanged("p", "all", from_model, to_model, "why", {}, cooldown, at, notify=("ops",))


def test_one_start_counted_requests_and_an_end_with_the_actual_duration() -> None:
    book = EpisodeBook()
    assert [r["phase"] for r in book.on_terminal(_terminal(T0))] == ["start"]
    for i in range(1, 12):
        assert book.on_terminal(_terminal(T0 + i)) == []
    end = book.on_change(_change(T0 + 252, None, "m1"))
    assert end is not None and (end["requests"], end["duration"], end["duration_s"]) == (12, "4m12s", 252.0)
    assert book.on_change(_change(T0 + 300, "m1", "m2")) is None  # no episode open any more


def test_an_idle_episode_is_closed_by_the_next_terminal_request() -> None:
    book = EpisodeBook(idle_s=60)
    book.on_terminal(_terminal(T0))
    records = book.on_terminal(_terminal(T0 + 600))
    assert [(r["phase"], r["requests"]) for r in records] == [("end", 1), ("start", 1)]
    assert records[0]["duration_s"] == 0.0


def test_the_basis_of_an_expected_duration() -> None:
    book = EpisodeBook()
    book.signals.note("m1", "down", "statuspage", 600.0, T0)
    assert book.change_estimate(_change(T0 + 100, "m1", "m2", cooldown=30.0))["expected_duration_basis"] == "signal_ttl"
    assert book.change_estimate(_change(T0 + 100, "m1", "m2", cooldown=30.0))["expected_duration_s"] == 500.0
    ejected = book.change_estimate(_change(T0 + 100, "m3", "m2", cooldown=30.0))
    assert (ejected["expected_duration"], ejected["expected_duration_basis"]) == ("30s", "next_check")
    assert book.change_estimate(_change(T0 + 100, "m3", "m2"))["expected_duration_basis"] == "unknown"
    assert book.change_estimate(_change(T0 + 700, "m1", "m2"))["expected_duration_basis"] == "unknown"  # expired
    book.signals.note("m1", "up", "statuspage", 600.0, T0 + 701)
    assert book.change_estimate(_change(T0 + 702, "m1", "m2"))["expected_duration_basis"] == "unknown"
