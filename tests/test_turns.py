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


def test_a_holder_waiting_for_another_host_counts_as_waiting_until_its_turn_or_its_end():
    """The supervisor does not time out a worker while it waits (jobs.timeout_s counts from its turn)."""
    turns, w1, w2 = ContentTurns(), slot("w1"), slot("w2")
    assert turns.ask(w1, "aa") and not turns.waiting(w1)
    assert not turns.ask(w2, "aa") and turns.waiting(w2)
    turns.elsewhere["aa"] = None  # the database has not answered yet (store trouble): still waiting, asked again
    assert turns.waiting(w1) and turns.waiting_elsewhere() == [w1]
    turns.elsewhere["aa"] = 7  # job 7 on another host holds the content
    assert turns.waiting(w1) and turns.waiting_elsewhere() == [w1] and turns.held_by(w1) == "aa"
    del turns.elsewhere["aa"]  # its turn came
    assert not turns.waiting(w1)
    turns.elsewhere["aa"] = 7
    assert turns.end(w1) == [w2]
    assert turns.elsewhere == {} and not turns.waiting(w2) and turns.held_by(w2) == "aa"
