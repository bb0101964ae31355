"""Streams through the proxy with the `openai` SDK: relayed as they arrive, never a clean end after a
break, failover only before the first chunk, and a client that leaves cancels the upstream call."""

from __future__ import annotations

from pathlib import Path

import httpx
import openai
import pytest

from support.proxy import AGENT, MESSAGES, UP, poll, proxy_service
from support.upstream import (
    UpstreamServer,
    hang,
    ok,
    stream_breaks_after,
    stream_error_event,
    stream_fails_before_first_chunk,
    stream_without_finish,
)


def test_stream_relays_chunks_and_ends_with_done(tmp_path: Path, upstream: UpstreamServer) -> None:
    upstream.set(UP["alpha"], ok("one two three four", chunks=4))
    with proxy_service(tmp_path, upstream) as px, px.http() as http:
        body = {"model": AGENT, "messages": MESSAGES, "stream": True}
        with http.stream("POST", "/v1/chat/completions", json=body) as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
            assert r.headers["x-routeguard-model"] == "alpha" and r.headers["x-routeguard-fallback"] == "false"
            events = [line for line in r.iter_lines() if line]
        assert events[-1] == "data: [DONE]"
        assert all(e.startswith("data: ") for e in events)
        assert len(events) == 1 + 4 + 1 + 1  # role, four pieces, finish, [DONE]


@pytest.mark.parametrize("broken", [stream_breaks_after(2), stream_without_finish(3), stream_error_event(2)],
                         ids=["connection-drops", "ends-without-finish", "upstream-error-event"])
def test_a_stream_that_breaks_after_output_raises_and_never_falls_back(
    tmp_path: Path, upstream: UpstreamServer, broken: object
) -> None:
    upstream.set(UP["alpha"], broken)  # type: ignore[arg-type]
    with proxy_service(tmp_path, upstream) as px:
        received = ""
        stream = px.client.chat.completions.create(model=AGENT, messages=MESSAGES, stream=True)
        with pytest.raises(openai.APIError) as caught:
            for chunk in stream:
                received += "".join(c.delta.content or "" for c in chunk.choices)
        assert received  # output reached the client before the error
        assert "partial" in str(caught.value.message) or "broke" in str(caught.value.message)
        assert isinstance(caught.value.body, dict) and caught.value.body["code"] == "partial_output"
        assert upstream.count(UP["alpha"]) == 1 and upstream.count(UP["beta"]) == 0


def test_raw_sse_after_a_break_is_an_error_event_without_done(tmp_path: Path, upstream: UpstreamServer) -> None:
    upstream.set(UP["alpha"], stream_breaks_after(2))
    with proxy_service(tmp_path, upstream) as px, px.http() as http:
        body = {"model": AGENT, "messages": MESSAGES, "stream": True}
        with http.stream("POST", "/v1/chat/completions", json=body) as r:
            text = r.read().decode()
        assert "event: error\ndata: {" in text and '"partial_output"' in text
        assert "[DONE]" not in text


def test_a_stream_failing_before_its_first_chunk_is_served_by_the_fallback(
    tmp_path: Path, upstream: UpstreamServer
) -> None:
    upstream.set(UP["alpha"], stream_fails_before_first_chunk())
    with proxy_service(tmp_path, upstream) as px:
        raw = px.client.chat.completions.with_raw_response.create(model=AGENT, messages=MESSAGES, stream=True)
        assert raw.headers["x-routeguard-model"] == "beta" and raw.headers["x-routeguard-fallback"] == "true"
        text = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
        assert text == "Hello from upstream"
        assert upstream.count(UP["alpha"]) == 1 and upstream.count(UP["beta"]) == 1


def test_a_client_that_leaves_a_stream_cancels_the_upstream_call(tmp_path: Path, upstream: UpstreamServer) -> None:
    upstream.set(UP["alpha"], ok("a slow answer in many pieces", chunks=20, chunk_gap_s=0.3))
    with proxy_service(tmp_path, upstream) as px:
        stream = px.client.chat.completions.create(model=AGENT, messages=MESSAGES, stream=True)
        next(iter(stream))
        stream.close()
        poll(lambda: UP["alpha"] in upstream.disconnects, "the upstream saw the disconnect")
        assert upstream.count(UP["beta"]) == 0


def test_a_client_that_leaves_a_plain_call_cancels_the_upstream_call(tmp_path: Path, upstream: UpstreamServer) -> None:
    upstream.set(UP["alpha"], hang(30))
    with proxy_service(tmp_path, upstream) as px:
        with httpx.Client(base_url=px.svc.url, timeout=httpx.Timeout(5.0, read=0.5)) as http, \
                pytest.raises(httpx.ReadTimeout):
            http.post("/v1/chat/completions", json={"model": AGENT, "messages": MESSAGES})
        poll(lambda: UP["alpha"] in upstream.disconnects, "the upstream saw the disconnect")
        assert upstream.count(UP["beta"]) == 0
        # a cancelled call is no failure of the model: its health figures saw none
        figures = px.svc.state.router.health()["alpha"]["figures"]
        assert figures is None or figures["failures"] == 0
