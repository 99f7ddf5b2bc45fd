"""One worker at a time per content: copies of one song claimed together are analysed once, then linked.

Each worker hashes its file and asks for its turn (protocol.Hashed). The
first to ask for a content goes at once; another asking for the same content
waits until the first one's task has ended, its result stored by then, so
it finds that analysis and links to it instead of analysing the same audio
again. The supervisor keeps this table in its one thread; nothing is shared.
Other hosts' workers are not in it: a turn given here is then asked of the
database (store/content_turns.py).
"""

from __future__ import annotations

from .pool import Slot


class ContentTurns:
    def __init__(self) -> None:
        self._holders: dict[str, Slot] = {}
        self._waiting: dict[str, list[Slot]] = {}
        # Contents whose holder here waits for the database's turn: the id of the job on another host that has
        # it, or None while the database has not answered (it is asked again).
        self.elsewhere: dict[str, int | None] = {}

    def ask(self, slot: Slot, content_hash: str) -> bool:
        """True when slot may go now; else it waits for `end` of the slot that holds the content."""
        holder = self._holders.setdefault(content_hash, slot)
        if holder is slot:
            return True
        self._waiting.setdefault(content_hash, []).append(slot)
        return False

    def held_by(self, slot: Slot) -> str | None:
        """The content whose turn slot holds, if any."""
        return next((content_hash for content_hash, holder in self._holders.items() if holder is slot), None)

    def waiting(self, slot: Slot) -> bool:
        """Whether slot waits for its turn, behind a worker here or a job on another host."""
        return any(slot in waiters for waiters in self._waiting.values()) \
            or any(self._holders[content_hash] is slot for content_hash in self.elsewhere)

    def waiting_elsewhere(self) -> list[Slot]:
        """The holders here that wait for the database's turn (another host's job has it, or no answer yet)."""
        return [self._holders[content_hash] for content_hash in self.elsewhere]

    def end(self, slot: Slot) -> list[Slot]:
        """Slot's task ended (stored, failed or killed): the slots whose turn comes now, one per content it held."""
        for waiters in self._waiting.values():
            if slot in waiters:
                waiters.remove(slot)
        turns = []
        for content_hash in [h for h, holder in self._holders.items() if holder is slot]:
            del self._holders[content_hash]
            self.elsewhere.pop(content_hash, None)
            waiters = self._waiting.pop(content_hash, [])
            if waiters:
                self._holders[content_hash] = waiters[0]
                if waiters[1:]:
                    self._waiting[content_hash] = waiters[1:]
                turns.append(waiters[0])
        return turns
