"""daemon/turns.py: one worker at a time per content, the next in line going when the holder's task ends."""

from __future__ import annotations

from beatwatch.daemon.pool import Slot
from beatwatch.daemon.turns import ContentTurns


def slot(name: str) -> Slot:
    return Slot(name=name, process=None, conn=None)  # type: ignore[arg-type]  # the table only compares slots


def test_the_second_asker_for_a_content_waits_for_the_first_to_end():
    turns, w1, w2, w3 = ContentTurns(), slot("w1"), slot("w2"), slot("w3")
    assert turns.ask(w1, "aa")
    assert not turns.ask(w2, "aa")
    assert not turns.ask(w3, "aa")
    assert turns.end(w1) == [w2]
    assert turns.end(w2) == [w3]
    assert turns.end(w3) == []
    assert turns.ask(w1, "aa")


def test_a_waiting_worker_that_is_killed_leaves_the_line():
    turns, w1, w2, w3 = ContentTurns(), slot("w1"), slot("w2"), slot("w3")
    turns.ask(w1, "aa")
    turns.ask(w2, "aa")
    turns.ask(w3, "aa")
    assert turns.end(w2) == []
    assert turns.end(w1) == [w3]
