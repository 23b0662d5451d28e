"""benchmarks.http_client against a real uvicorn server on a real socket: answers whole,
keep-alive reuse, a server that closes, and the pool's bound."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from benchmarks.http_client import Connection, NoAnswerError, Pool

Scenario = Callable[[str], Awaitable[Any]]


def _app() -> Starlette:
    async def echo(request: Request) -> Response:
        body = await request.body()
        client = request.client
        port = "" if client is None else str(client.port)
        headers = {"x-client-port": port, "x-content-type": request.headers["content-type"]}
        return Response(body[::-1], status_code=201, headers=headers)

    async def bye(request: Request) -> Response:
        return Response(b"bye", headers={"connection": "close"})

    async def slow(request: Request) -> Response:
        await asyncio.sleep(0.05)
        client = request.client
        return Response(b"" if client is None else str(client.port).encode())

    return Starlette(
        routes=[
            Route("/echo", echo, methods=["POST"]),
            Route("/bye", bye, methods=["POST"]),
            Route("/slow", slow, methods=["POST"]),
        ]
    )


@asynccontextmanager
async def _server() -> AsyncIterator[str]:
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(_app(), log_config=None, lifespan="off"))
    task = asyncio.ensure_future(server.serve(sockets=[listener]))
    while not server.started:
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        listener.close()


def _run(scenario: Scenario) -> Any:
    async def main() -> Any:
        async with _server() as url:
            return await scenario(url)

    return asyncio.run(main())


def test_an_answer_is_read_whole_and_the_connection_kept() -> None:
    body = b"x" * 200_000 + b"end"  # several reads' worth each way

    async def scenario(url: str) -> Any:
        connection = await Connection.open(url)
        first = await connection.post("/echo", body, content_type="text/plain")
        second = await connection.post("/echo", b"abc")
        await connection.close()
        return first, second, connection.reusable

    first, second, reusable = _run(scenario)
    assert (first.status, first.body) == (201, body[::-1])
    assert (second.status, second.body) == (201, b"cba")
    assert reusable


def test_a_connection_the_server_closes_is_not_reused() -> None:
    async def scenario(url: str) -> Any:
        pool = Pool(url, size=1)
        answer = await pool.post("/bye", b"")
        after_bye = pool.opened  # the server said it closes: dropped
        again = await pool.post("/echo", b"ok")  # on a new one
        after_echo = pool.opened
        await pool.close()
        return answer, after_bye, again, after_echo

    answer, after_bye, again, after_echo = _run(scenario)
    assert (answer.status, answer.body) == (200, b"bye")
    assert after_bye == 0
    assert (again.status, again.body) == (201, b"ko")
    assert after_echo == 1


def test_a_keep_alive_connection_closed_while_idle_is_replaced_once() -> None:
    """The server closes each connection after one answer without saying so (as one whose
    keep-alive timeout passed): the next request on it is sent again on a new connection."""
    connections: list[int] = []

    async def one_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
        await writer.drain()
        writer.close()

    async def main() -> list[bytes]:
        server = await asyncio.start_server(one_answer, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        pool = Pool(f"http://127.0.0.1:{port}", size=1)
        bodies = []
        for _ in range(3):
            await asyncio.sleep(0.05)  # the server has closed the idle connection by now
            bodies.append((await pool.post("/", b"")).body)
        await pool.close()
        server.close()
        await server.wait_closed()
        return bodies

    assert asyncio.run(main()) == [b"ok"] * 3
    assert len(connections) == 3


def test_a_server_that_closes_without_answering_is_an_error_not_a_hang() -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(65_536)  # the request arrives; no answer follows
        writer.close()

    async def main() -> None:
        server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        connection = await Connection.open(f"http://127.0.0.1:{port}")
        with pytest.raises(NoAnswerError, match="closed"):
            await asyncio.wait_for(connection.post("/echo", b"{}"), 5)
        await connection.close()
        server.close()
        await server.wait_closed()

    asyncio.run(main())


def test_the_pool_never_opens_more_than_its_size() -> None:
    async def scenario(url: str) -> Any:
        pool = Pool(url, size=3)

        async def one() -> bytes:
            return (await pool.post("/slow", b"")).body

        ports = await asyncio.gather(*(one() for _ in range(12)))
        await pool.close()
        return set(ports)

    assert len(_run(scenario)) == 3
