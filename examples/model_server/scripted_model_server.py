"""A scripted, OpenAI-compatible model server for tests, benchmarks and the demo.

It is not a model and not part of execguard's runtime path: it stands in for
one, with behaviour set by flags (or `MODEL_*` environment variables) and made
reproducible by a seed, so tests can ask for exactly the failures execguard
must catch: slow answers, malformed JSON, PII in outputs, refusals, 5xx, slow
or stalled streams, and a drift switch that changes all of these after N
requests, on SIGUSR1, or on `POST /admin/drift`.

Endpoints:
    POST /v1/chat/completions   OpenAI chat completions, JSON or SSE (`"stream": true`)
    POST /v1/completions        OpenAI text completions, JSON or SSE
    POST /v1/json               a plain JSON API: answers {"result": ..., "echo": <body>}
    GET  /v1/models             the served model names
    GET  /healthz               liveness/readiness
    POST /admin/drift           switch to the drift profile now
    GET  /admin/stats           requests served and whether drift is on

Run: python examples/model_server/scripted_model_server.py --port 8000 --seed 1
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import sys
import time
from dataclasses import dataclass, field, replace
from typing import Any

from aiohttp import web

REFUSAL = "I'm sorry, but I can't help with that request."
PII_SNIPPETS = (
    "Contact me at jane.doe@example.com for details.",
    "My card number is 4111 1111 1111 1111.",
    "Reach the team at ops-team@example.org or call support.",
)
WORDS = [
    "the",
    "model",
    "answers",
    "with",
    "plain",
    "words",
    "drawn",
    "from",
    "a",
    "small",
    "vocabulary",
    "so",
    "that",
    "response",
    "length",
    "is",
    "the",
    "only",
    "thing",
    "that",
    "varies",
    "between",
    "requests",
    "and",
    "tests",
    "can",
    "reason",
    "about",
    "token",
    "counts",
    "and",
    "drift",
    "in",
    "length",
    "latency",
    "and",
    "refusals",
]


@dataclass(frozen=True)
class Profile:
    """How the server behaves; there is one normal and one drifted profile."""

    latency_ms: float = 0.0
    latency_jitter_ms: float = 0.0
    response_words_min: int = 8
    response_words_max: int = 24
    malformed_rate: float = 0.0
    pii_rate: float = 0.0
    refusal_rate: float = 0.0
    error_rate: float = 0.0
    stream_chunk_delay_ms: float = 0.0
    stall_after_chunks: int = 0
    json_content: bool = False


@dataclass
class ServerState:
    """Mutable state: request count, RNG, and whether drift is switched on."""

    normal: Profile
    drifted: Profile
    drift_after: int
    rng: random.Random
    models: tuple[str, ...]
    served: int = 0
    drift_on: bool = False
    started: float = field(default_factory=time.monotonic)

    def profile(self) -> Profile:
        """The profile for the next request; flips to drift after `drift_after`."""
        if self.drift_after > 0 and self.served >= self.drift_after:
            self.drift_on = True
        return self.drifted if self.drift_on else self.normal


STATE = web.AppKey("state", ServerState)


def _content(state: ServerState, profile: Profile) -> tuple[str, str]:
    """The assistant text and its finish reason for one answer."""
    rng = state.rng
    if rng.random() < profile.refusal_rate:
        return REFUSAL, "stop"
    n = rng.randint(
        profile.response_words_min, max(profile.response_words_min, profile.response_words_max)
    )
    text = " ".join(rng.choice(WORDS) for _ in range(n))
    if rng.random() < profile.pii_rate:
        text = f"{text}. {rng.choice(PII_SNIPPETS)}"
    if profile.json_content:
        text = json.dumps({"answer": text, "confidence": round(rng.random(), 3)})
    if rng.random() < profile.malformed_rate:
        # Structured-output failures look like truncated JSON in practice.
        text = '{"answer": "' + text[: max(1, len(text) // 2)]
    finish = "length" if n >= profile.response_words_max and rng.random() < 0.3 else "stop"
    return text, finish


async def _delay(state: ServerState, profile: Profile) -> None:
    if profile.latency_ms or profile.latency_jitter_ms:
        ms = max(0.0, state.rng.gauss(profile.latency_ms, profile.latency_jitter_ms))
        await asyncio.sleep(ms / 1000)


def _usage(prompt: Any, text: str) -> dict[str, int]:
    prompt_tokens = max(1, len(json.dumps(prompt)) // 4)
    completion_tokens = len(text.split())
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


async def _read_json(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise web.HTTPBadRequest(
            text=json.dumps({"error": {"message": f"invalid JSON body: {exc}"}}),
            content_type="application/json",
        ) from exc
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(
            text=json.dumps({"error": {"message": "body must be a JSON object"}}),
            content_type="application/json",
        )
    return body


def _maybe_fail(state: ServerState, profile: Profile) -> None:
    if state.rng.random() < profile.error_rate:
        raise web.HTTPInternalServerError(
            text=json.dumps(
                {"error": {"message": "scripted upstream failure", "type": "server_error"}}
            ),
            content_type="application/json",
        )


async def _completion(request: web.Request, *, chat: bool) -> web.StreamResponse:
    state = request.app[STATE]
    body = await _read_json(request)
    profile = state.profile()
    state.served += 1
    await _delay(state, profile)
    _maybe_fail(state, profile)
    text, finish = _content(state, profile)
    model = str(body.get("model") or state.models[0])
    created = int(time.time())
    ident = f"cmpl-{state.served}"
    prompt = body.get("messages") if chat else body.get("prompt")
    if body.get("stream"):
        return await _stream(
            request, state, profile, text, finish, model, ident, created, chat=chat
        )
    if chat:
        choice: dict[str, Any] = {
            "index": 0,
            "message": {"role": "assistant", "content": text},
            "finish_reason": finish,
        }
    else:
        choice = {"index": 0, "text": text, "finish_reason": finish}
    return web.json_response(
        {
            "id": ident,
            "object": "chat.completion" if chat else "text_completion",
            "created": created,
            "model": model,
            "choices": [choice],
            "usage": _usage(prompt, text),
        }
    )


async def _stream(
    request: web.Request,
    state: ServerState,
    profile: Profile,
    text: str,
    finish: str,
    model: str,
    ident: str,
    created: int,
    *,
    chat: bool,
) -> web.StreamResponse:
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"}
    )
    await response.prepare(request)
    # Chunk by small character runs, not words, so that PII and JSON are split
    # across chunk boundaries the way real tokenizers split them.
    pieces = [text[i : i + 7] for i in range(0, len(text), 7)] or [""]
    for index, piece in enumerate(pieces):
        if profile.stall_after_chunks and index >= profile.stall_after_chunks:
            await asyncio.sleep(3600)
        delta: dict[str, Any] = {"content": piece} if chat else {}
        choice: dict[str, Any] = {"index": 0, "finish_reason": None}
        if chat:
            choice["delta"] = ({"role": "assistant"} | delta) if index == 0 else delta
        else:
            choice["text"] = piece
        event = {
            "id": ident,
            "object": "chat.completion.chunk" if chat else "text_completion",
            "created": created,
            "model": model,
            "choices": [choice],
        }
        await response.write(f"data: {json.dumps(event)}\n\n".encode())
        if profile.stream_chunk_delay_ms:
            await asyncio.sleep(profile.stream_chunk_delay_ms / 1000)
    last_choice: dict[str, Any] = {"index": 0, "finish_reason": finish}
    last_choice["delta" if chat else "text"] = {} if chat else ""
    final = {
        "id": ident,
        "object": "chat.completion.chunk" if chat else "text_completion",
        "created": created,
        "model": model,
        "choices": [last_choice],
    }
    await response.write(f"data: {json.dumps(final)}\n\n".encode())
    await response.write(b"data: [DONE]\n\n")
    await response.write_eof()
    return response


async def chat_completions(request: web.Request) -> web.StreamResponse:
    """POST /v1/chat/completions."""
    return await _completion(request, chat=True)


async def completions(request: web.Request) -> web.StreamResponse:
    """POST /v1/completions."""
    return await _completion(request, chat=False)


async def plain_json(request: web.Request) -> web.StreamResponse:
    """POST /v1/json: a non-OpenAI JSON API."""
    state = request.app[STATE]
    body = await _read_json(request)
    profile = state.profile()
    state.served += 1
    await _delay(state, profile)
    _maybe_fail(state, profile)
    text, _ = _content(state, profile)
    if state.rng.random() < profile.malformed_rate:
        return web.Response(text='{"result": "' + text, content_type="application/json")
    return web.json_response({"result": text, "echo": body})


async def models(request: web.Request) -> web.StreamResponse:
    """GET /v1/models."""
    state = request.app[STATE]
    return web.json_response(
        {
            "object": "list",
            "data": [{"id": m, "object": "model", "owned_by": "scripted"} for m in state.models],
        }
    )


async def healthz(_: web.Request) -> web.StreamResponse:
    """GET /healthz."""
    return web.json_response({"status": "ok"})


async def drift(request: web.Request) -> web.StreamResponse:
    """POST /admin/drift: switch to the drift profile now."""
    request.app[STATE].drift_on = True
    return web.json_response({"drift": True})


async def stats(request: web.Request) -> web.StreamResponse:
    """GET /admin/stats."""
    state = request.app[STATE]
    return web.json_response({"served": state.served, "drift": state.drift_on})


PROFILE_FLAGS: tuple[tuple[str, type[float] | type[int], str, str], ...] = (
    ("latency-ms", float, "0", "mean added latency"),
    ("latency-jitter-ms", float, "0", "standard deviation of the added latency"),
    ("response-words-min", int, "8", "fewest words in an answer"),
    ("response-words-max", int, "24", "most words in an answer"),
    *(
        (f"{rate}-rate", float, "0", f"probability of a {rate} answer")
        for rate in ("malformed", "pii", "refusal", "error")
    ),
    ("stream-chunk-delay-ms", float, "0", "pause between stream chunks"),
    ("stall-after-chunks", int, "0", "stop sending after N stream chunks (0: never)"),
)
"""The flags that make up a `Profile`, each also given with a `--drift-` prefix."""


def build_parser() -> argparse.ArgumentParser:
    """Flags; every flag also reads `MODEL_<FLAG>` from the environment."""
    env = os.environ.get

    def e(name: str, default: str) -> str:
        return env("MODEL_" + name.upper().replace("-", "_"), default)

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    p.add_argument("--host", default=e("host", env("POD_IP", "127.0.0.1")))
    p.add_argument("--port", type=int, default=int(e("port", "8000")))
    p.add_argument(
        "--seed",
        default=e("seed", "0"),
        help="any string; the same seed gives the same answers (e.g. the pod name per replica)",
    )
    p.add_argument(
        "--models", default=e("models", "scripted-small,scripted-large"), help="comma-separated"
    )
    for prefix, help_prefix in (("", ""), ("drift-", "after drift: ")):
        for name, kind, default, text in PROFILE_FLAGS:
            p.add_argument(
                f"--{prefix}{name}",
                type=kind,
                # Unset drift flags stay None and copy the normal profile.
                default=None if prefix else kind(e(name, default)),
                help=help_prefix + text,
            )
    p.add_argument(
        "--json-content",
        action="store_true",
        default=e("json-content", "") == "1",
        help="assistant content is a JSON object (for structured-output checks)",
    )
    p.add_argument(
        "--drift-after",
        type=int,
        default=int(e("drift-after", "0")),
        help="switch to the drift profile after N requests (0: only on signal)",
    )
    return p


def profiles(args: argparse.Namespace) -> tuple[Profile, Profile]:
    """The normal profile and the drifted one (unset drift flags copy the normal)."""
    fields = [name.replace("-", "_") for name, *_ in PROFILE_FLAGS]
    normal = Profile(json_content=args.json_content, **{f: getattr(args, f) for f in fields})
    overrides = {
        f: getattr(args, "drift_" + f) for f in fields if getattr(args, "drift_" + f) is not None
    }
    return normal, replace(normal, **overrides)


def create_app(args: argparse.Namespace) -> web.Application:
    """The aiohttp application for the parsed flags."""
    normal, drifted = profiles(args)
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app[STATE] = ServerState(
        normal=normal,
        drifted=drifted,
        drift_after=args.drift_after,
        rng=random.Random(args.seed),
        models=tuple(m.strip() for m in args.models.split(",") if m.strip()),
    )
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_post("/v1/completions", completions)
    app.router.add_post("/v1/json", plain_json)
    app.router.add_get("/v1/models", models)
    app.router.add_get("/healthz", healthz)
    app.router.add_post("/admin/drift", drift)
    app.router.add_get("/admin/stats", stats)
    return app


def main(argv: list[str] | None = None) -> None:
    """Parse flags and serve until SIGTERM/SIGINT."""
    args = build_parser().parse_args(argv)
    for name in ("malformed_rate", "pii_rate", "refusal_rate", "error_rate"):
        value = getattr(args, name)
        if not 0.0 <= value <= 1.0:
            sys.exit(f"--{name.replace('_', '-')} must be between 0 and 1, got {value}")
    app = create_app(args)

    async def on_startup(app: web.Application) -> None:
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGUSR1, lambda: setattr(app[STATE], "drift_on", True))

    app.on_startup.append(on_startup)
    print(f"scripted model server listening on http://{args.host}:{args.port}", flush=True)
    web.run_app(app, host=args.host, port=args.port, print=None, access_log=None)


if __name__ == "__main__":
    main()
