"""A lean HTTP/1.1 client for load generation: h11 (the protocol library under httpx and
uvicorn) over asyncio streams, keep-alive, one request at a time per connection.

Why not httpx: the load generator shares the two cores with the server it measures, and
httpx's ``AsyncClient`` spent 4-11 ms of CPU per request here (its pool, its request and
response models, its event hooks), more than the server it was measuring; this client spends
a fraction of a millisecond, so the figures are the server's. It speaks real HTTP over a real
socket: h11 frames and parses, and a response h11 cannot parse is an error.
"""

from __future__ import annotations

import asyncio
from contextlib import suppress
from dataclasses import dataclass
from urllib.parse import urlsplit

import h11

READ_CHUNK = 65_536


class NoAnswerError(RuntimeError):
    """The connection failed or closed before a whole answer came; ``answer_started`` when
    some of the answer had come."""

    def __init__(self, reason: str, answer_started: bool = False) -> None:
        super().__init__(reason)
        self.answer_started = answer_started


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes


class Connection:
    """One keep-alive connection; ``post`` sends a request and reads its whole answer."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str
    ) -> None:
        self._reader = reader
        self._writer = writer
        self._host = host
        self._http = h11.Connection(our_role=h11.CLIENT)
        self.reusable = True  # False once the server said it closes after its answer
        self._started = False  # whether any byte of the current answer has come

    @classmethod
    async def open(cls, url: str) -> Connection:
        parts = urlsplit(url)
        if parts.hostname is None or parts.port is None:
            raise ValueError(f"an http://host:port URL is needed, got {url!r}")
        reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
        return cls(reader, writer, parts.netloc)

    async def post(self, path: str, body: bytes, content_type: str = "application/json") -> Answer:
        headers = [
            ("Host", self._host),
            ("Content-Type", content_type),
            ("Content-Length", str(len(body))),
        ]
        out = self._http.send(h11.Request(method="POST", target=path, headers=headers))
        out += self._http.send(h11.Data(data=body)) + self._http.send(h11.EndOfMessage())
        self._started = False
        try:
            self._writer.write(out)
            return await self._answer()
        except (OSError, h11.ProtocolError, asyncio.IncompleteReadError) as exc:
            raise NoAnswerError(repr(exc), self._started) from exc

    async def _answer(self) -> Answer:
        status, parts = 0, []
        while True:
            event = self._http.next_event()
            if event is h11.NEED_DATA:
                data = await self._reader.read(READ_CHUNK)
                if not data:
                    raise NoAnswerError("the server closed the connection", self._started)
                self._started = True
                self._http.receive_data(data)
            elif isinstance(event, h11.Response):
                status = event.status_code
            elif isinstance(event, h11.Data):
                parts.append(bytes(event.data))
            elif isinstance(event, h11.EndOfMessage):
                try:
                    self._http.start_next_cycle()
                except h11.LocalProtocolError:  # the server closes after this answer
                    self.reusable = False
                return Answer(status, b"".join(parts))
            elif isinstance(event, h11.ConnectionClosed):
                raise NoAnswerError("the server closed the connection", self._started)

    async def close(self) -> None:
        self._writer.close()
        with suppress(OSError):
            await self._writer.wait_closed()


class Pool:
    """At most ``size`` connections to ``url``; ``post`` sends on an idle one or a new one, and
    waits when all ``size`` are busy. A connection that failed is dropped.

    A server closes a keep-alive connection that stayed idle too long, and the client learns it
    only when it sends the next request on it: a request sent on a *reused* connection that
    ends before any byte of an answer is sent once more on a new connection (what browsers and
    urllib3 do). A new connection that fails is an error at once."""

    def __init__(self, url: str, size: int) -> None:
        self.url = url
        self._idle: list[Connection] = []
        self._slots = asyncio.Semaphore(size)
        self._all: set[Connection] = set()

    async def post(self, path: str, body: bytes, content_type: str = "application/json") -> Answer:
        async with self._slots:
            while True:
                reused = bool(self._idle)
                connection = self._idle.pop() if reused else await self._open()
                try:
                    answer = await connection.post(path, body, content_type)
                except NoAnswerError as exc:
                    await self._drop(connection)
                    if reused and not exc.answer_started:
                        continue  # closed while idle: the request never reached the server
                    raise
                except BaseException:
                    await self._drop(connection)
                    raise
                if connection.reusable:
                    self._idle.append(connection)
                else:
                    await self._drop(connection)
                return answer

    async def _open(self) -> Connection:
        connection = await Connection.open(self.url)
        self._all.add(connection)
        return connection

    async def _drop(self, connection: Connection) -> None:
        self._all.discard(connection)
        await connection.close()

    @property
    def opened(self) -> int:
        """Connections open now."""
        return len(self._all)

    async def close(self) -> None:
        for connection in list(self._all):
            await connection.close()
        self._all.clear()
        self._idle.clear()
