"""A worker's side of the inference process: the same methods as `beatwatch.analysis.nets.networks.Networks`.

The Analyzer cannot tell it from local networks. A request that finds the
socket closed or gone (the process was killed and is being restarted) is
sent again on a new connection until RETRY_S passes; only then does the job
fail, as a transient error the queue retries later.
"""

from __future__ import annotations

import itertools
import logging
import time
from multiprocessing.connection import Client, Connection

from beatwatch.analysis.nets.device import Device
from beatwatch.analysis.errors import AnalysisError

from .protocol import InferenceAnswer, InferenceHello, InferenceMethod, InferenceRequest

log = logging.getLogger(__name__)

RETRY_S = 120.0
RECONNECT_S = 0.2


class InferenceUnavailable(AnalysisError):
    """The inference process did not answer within RETRY_S."""


class InferenceClient:
    def __init__(self, address: str, *, retry_s: float = RETRY_S) -> None:
        self.address = address
        self.retry_s = retry_s
        self._ids = itertools.count(1)
        self._conn: Connection | None = None
        self.hello: InferenceHello  # set by each (re)connection: the process greets first
        # How many requests shared the batch that answered the last call (1 = ran alone).
        self.last_batch = 0
        self._connection(time.monotonic() + retry_s)

    @property
    def device(self) -> Device:
        return Device(self.hello.device, f"inference process: {self.hello.reason}")

    @property
    def tag_models(self) -> list[str]:
        return self.hello.tag_models

    def describe_tags(self) -> str:
        return self.hello.tags

    def downbeats(self, features: list) -> list:
        return self._call("downbeats", features)

    def chord_features(self, spectrograms: list) -> list:
        return self._call("chord_features", spectrograms)

    def key(self, spectrograms: list) -> list:
        return self._call("key", spectrograms)

    def tags(self, audio: list) -> list:
        return self._call("tags", audio)

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def _connection(self, deadline: float) -> Connection:
        while self._conn is None:
            try:
                conn = Client(self.address, family="AF_UNIX")
                self.hello = conn.recv()
                self._conn = conn
            except (OSError, EOFError) as exc:
                if time.monotonic() >= deadline:
                    raise InferenceUnavailable(f"the inference process at {self.address} did not answer "
                                               f"within {self.retry_s:g} s ({exc})") from exc
                time.sleep(RECONNECT_S)
        return self._conn

    def _call(self, method: InferenceMethod, inputs: list) -> list:
        deadline = time.monotonic() + self.retry_s
        request = InferenceRequest(next(self._ids), method, list(inputs))
        while True:
            conn = self._connection(deadline)
            try:
                conn.send(request)
                reply = conn.recv()
                break
            except (OSError, EOFError):
                log.warning("inference process went away during %s; sending it again", method)
                self.close()
        if reply.request_id != request.request_id:
            raise AnalysisError(f"inference process: reply to request {reply.request_id}, "
                                f"not {request.request_id}")
        if not isinstance(reply, InferenceAnswer):
            raise AnalysisError(f"inference process: {reply.error}")
        self.last_batch = reply.batch
        return reply.outputs
