"""The lean upstream client (execution/providers/lean_http.py) against real sockets: keep-alive reuse, a
server that closed an idle connection, bodies delimited by length / chunks / the end of the connection, broken
responses, cancellation, TLS, and the proxy environment handing URLs to httpx."""

from __future__ import annotations

import asyncio
import json
import shutil
import ssl
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from routeguard.core.errors import ErrorClass, classify
from routeguard.execution.providers.lean_http import LeanClient, LeanResponse, RemoteProtocolError
from support.receivers import free_port
from support.upstream import UpstreamServer, hang, ok

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
JSON = {"content-type": "application/json"}


@asynccontextmanager
async def raw_server(handler: Handler, ssl_context: ssl.SSLContext | None = None) -> AsyncIterator[str]:
    """A TCP server that runs `handler` per connection; yields its base URL."""
    connections: list[int] = []

    async def run(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        try:
            await handler(reader, writer)
        finally:
            writer.close()

    server = await asyncio.start_server(run, "127.0.0.1", 0, ssl=ssl_context)
    port = server.sockets[0].getsockname()[1]
    scheme = "https" if ssl_context is not None else "http"
    try:
        yield f"{scheme}://127.0.0.1:{port}"
    finally:
        server.close()


async def read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    length = next((int(line.split(b":")[1]) for line in head.split(b"\r\n")
                   if line.lower().startswith(b"content-length:")), 0)
    return head + await reader.readexactly(length)


async def test_keep_alive_connections_are_reused(upstream: UpstreamServer) -> None:
    async with LeanClient() as client:
        url = upstream.base_url + "/chat/completions"
        first = await client.post(url, content=b'{"model": "m"}', headers=JSON)
        second = await client.post(url, content=b'{"model": "m"}', headers=JSON)
        assert first.status_code == second.status_code == 200
        assert first._conn is second._conn  # one connection carried both
        assert second.json()["choices"][0]["message"]["content"] == "Hello from upstream"
        assert upstream.requests[-1].headers["host"] == f"127.0.0.1:{upstream.port}"


async def test_a_reused_connection_the_server_drops_is_replaced_once() -> None:
    answered, dropped = [], []

    async def one_per_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        answered.append(await read_request(reader))
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")  # offers keep-alive ...
        await writer.drain()
        dropped.append(await read_request(reader))  # ... but drops the next request unanswered

    async with raw_server(one_per_connection) as base, LeanClient() as client:
        for _ in range(3):
            r = await client.post(base + "/x", content=b"{}", headers=JSON)
            assert (r.status_code, r.text) == (200, "ok")
        assert len(answered) == 3 and len(dropped) == 2  # each reuse failed once, then a new connection


async def test_bodies_by_chunks_and_by_connection_end() -> None:
    async def chunked(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
                     b"6\r\ndata: \r\n9\r\n[DONE]\r\n\n\r\n0\r\n\r\n")
        await writer.drain()
        await read_request(reader)  # still open: a second request arrives on it
        writer.write(b"HTTP/1.0 200 OK\r\ncontent-type: text/plain\r\n\r\nuntil the end")
        await writer.drain()

    async with raw_server(chunked) as base, LeanClient() as client:
        r = await client.send(client.build_request("POST", base + "/s", content=b"{}", headers=JSON), stream=True)
        assert isinstance(r, LeanResponse)
        assert [line async for line in r.aiter_lines()] == ["data: [DONE]", ""]
        r2 = await client.post(base + "/s", content=b"{}", headers=JSON)
        assert r2.text == "until the end" and r2.headers.get("Content-Type") == "text/plain"
        assert not r2._conn.reusable


async def test_a_broken_response_is_a_connection_error() -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"NOT HTTP AT ALL\r\n\r\n")
        await writer.drain()

    async def cut(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\npartial")
        await writer.drain()

    for handler in (garbage, cut):
        async with raw_server(handler) as base, LeanClient() as client:
            with pytest.raises(RemoteProtocolError) as caught:
                await client.post(base + "/x", content=b"{}", headers=JSON)
            assert classify(exception=caught.value).error_class is ErrorClass.CONNECTION


async def test_connection_refused_is_an_oserror() -> None:
    async with LeanClient() as client:
        with pytest.raises(OSError) as caught:
            await client.post(f"http://127.0.0.1:{free_port()}/v1/x", content=b"{}", headers=JSON)
        assert classify(exception=caught.value).error_class is ErrorClass.CONNECTION


async def test_cancelling_a_call_closes_its_connection(upstream: UpstreamServer) -> None:
    upstream.set("slow", hang(30))
    async with LeanClient() as client:
        body = json.dumps({"model": "slow"}).encode()
        task = asyncio.create_task(client.post(upstream.base_url + "/chat/completions", content=body, headers=JSON))
        for _ in range(500):
            if upstream.count("slow"):
                break
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        for _ in range(500):
            if "slow" in upstream.disconnects:
                break
            await asyncio.sleep(0.01)
        assert "slow" in upstream.disconnects


async def test_a_stream_closed_early_closes_its_connection(upstream: UpstreamServer) -> None:
    upstream.set("drip", ok("many small pieces", chunks=10, chunk_gap_s=0.2))
    async with LeanClient() as client:
        body = json.dumps({"model": "drip", "stream": True}).encode()
        request = client.build_request("POST", upstream.base_url + "/chat/completions", content=body, headers=JSON)
        response = await client.send(request, stream=True)
        lines = response.aiter_lines()
        assert (await anext(lines)).startswith("data: ")
        await response.aclose()
        for _ in range(500):
            if "drip" in upstream.disconnects:
                break
            await asyncio.sleep(0.01)
        assert "drip" in upstream.disconnects


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command to make a certificate")
async def test_tls_with_the_certificates_from_ssl_cert_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
                   check=True, capture_output=True)
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_ctx.load_cert_chain(cert, key)

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 9\r\n\r\nover tls!")
        await writer.drain()

    async with raw_server(answer, server_ctx) as base:
        async with LeanClient() as untrusting:
            with pytest.raises(ssl.SSLError):
                await untrusting.post(base + "/x", content=b"{}", headers=JSON)
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))
        async with LeanClient() as client:
            assert (await client.post(base + "/x", content=b"{}", headers=JSON)).text == "over tls!"


def test_urls_the_environment_proxies_go_through_httpx(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "models.internal")
    client = LeanClient()
    proxied = client.build_request("POST", "https://api.example.com/v1/chat/completions", content=b"{}", headers=JSON)
    direct = client.build_request("POST", "https://models.internal/v1/chat/completions", content=b"{}", headers=JSON)
    plain = client.build_request("POST", "http://127.0.0.1:9/v1/chat/completions", content=b"{}", headers=JSON)
    assert isinstance(proxied, httpx.Request)
    assert not isinstance(direct, httpx.Request) and not isinstance(plain, httpx.Request)
    assert not LeanClient(trust_env=False)._uses_proxy("https://api.example.com/v1")
    asyncio.run(client.aclose())
