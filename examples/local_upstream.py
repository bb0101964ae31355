"""routeguard calling a real OpenAI-compatible HTTP upstream on 127.0.0.1 (README example).

Starts a tiny upstream with two models: ``primary-model`` answers 503 (overloaded), ``backup-model`` answers.
The router retries the primary, fails over to the approved backup, and streams from it.
Run: ``.venv/bin/python examples/local_upstream.py``
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import AsyncIterator

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from routeguard import Router

upstream = FastAPI()


@upstream.post("/v1/chat/completions")
async def chat(request: Request) -> Response:
    body = await request.json()
    if body["model"] == "primary-model":
        error = {"error": {"type": "server_error", "code": "overloaded", "message": "try later"}}
        return JSONResponse(error, status_code=503)
    answer = f"{body['model']} says hello"
    if not body.get("stream"):
        return JSONResponse(
            {
                "id": "cmpl-1", "object": "chat.completion", "created": int(time.time()), "model": body["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": answer},
                             "finish_reason": "stop"}],
            }
        )

    async def sse() -> AsyncIterator[str]:
        for i, word in enumerate(answer.split()):
            delta = {"role": "assistant", "content": word} if i == 0 else {"content": " " + word}
            chunk = {"id": "c", "object": "chat.completion.chunk", "model": body["model"],
                     "choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
            yield f"data: {json.dumps(chunk)}\n\n"
        done = {"id": "c", "object": "chat.completion.chunk", "model": body["model"],
                "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
        yield f"data: {json.dumps(done)}\n\ndata: [DONE]\n\n"

    return StreamingResponse(sse(), media_type="text/event-stream")


def start_upstream() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = int(s.getsockname()[1])
    server = uvicorn.Server(uvicorn.Config(upstream, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.02)
    return port


def bundle(port: int) -> dict[str, object]:
    def model(name: str) -> dict[str, object]:
        return {
            "endpoint": {"type": "openai", "base_url": f"http://127.0.0.1:{port}/v1", "model": name},
            "capabilities": ["text"], "clearance": "internal", "cost": {"input_per_1m": 1, "output_per_1m": 2},
        }

    return {
        "models": {"primary-model": model("primary-model"), "backup-model": model("backup-model")},
        "profiles": {"support": {"requires": ["text"], "capabilities": ["text"], "data_class": "internal"}},
        "approvals": [{"model": m, "profile": "support", "by": "governance", "evidence": "EVAL-1"}
                      for m in ("primary-model", "backup-model")],
        "policies": {"support-agent": {"profile": "support", "primary": "primary-model",
                                       "fallbacks": ["backup-model"], "retry": {"attempts": 2, "backoff": "50ms"}}},
    }


async def main() -> None:
    router = Router.from_bundle(bundle(start_upstream()))
    router.subscribe(lambda e: print(f"  [{e.event}] {e.to_dict().get('from_model')} -> {e.to_dict().get('to_model')}"))
    ctx = {"agent": "support-agent"}
    request = {"model": "support-agent", "messages": [{"role": "user", "content": "hi"}]}
    completion = await router.complete(ctx, request)
    print("complete:", completion["model"], "->", completion["choices"][0]["message"]["content"])
    words = [c["choices"][0]["delta"].get("content", "") async for c in router.stream(ctx, request) if c["choices"]]
    print("stream:  ", "".join(words))
    await router.aclose()


if __name__ == "__main__":
    asyncio.run(main())
