"""Reading and rewriting the parts of OpenAI-style bodies that validation cares about."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pydantic import JsonValue


@dataclass(frozen=True)
class Usage:
    """Token counts reported by the model (zero when it reports none)."""

    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total(self) -> int:
        """Prompt plus completion tokens."""
        return self.prompt_tokens + self.completion_tokens


def _choices(body: JsonValue) -> list[dict[str, JsonValue]]:
    if not isinstance(body, dict):
        return []
    choices = body.get("choices")
    if not isinstance(choices, list):
        return []
    return [choice for choice in choices if isinstance(choice, dict)]


def response_text(body: JsonValue) -> str:
    """The assistant text of a chat or completions response (choices joined)."""
    texts: list[str] = []
    for choice in _choices(body):
        message = choice.get("message")
        if isinstance(message, dict) and isinstance(message.get("content"), str):
            texts.append(str(message["content"]))
        elif isinstance(choice.get("text"), str):
            texts.append(str(choice["text"]))
    return "\n".join(texts)


def rewrite_text(body: JsonValue, rewrite: Callable[[str], str]) -> JsonValue:
    """A copy of the response with every choice's text passed through `rewrite`."""
    if not isinstance(body, dict):
        return body
    choices: list[JsonValue] = []
    for choice in _choices(body):
        message = choice.get("message")
        if isinstance(message, dict) and isinstance(message.get("content"), str):
            choice = {**choice, "message": {**message, "content": rewrite(str(message["content"]))}}
        elif isinstance(choice.get("text"), str):
            choice = {**choice, "text": rewrite(str(choice["text"]))}
        choices.append(choice)
    return {**body, "choices": choices}


def finish_reasons(body: JsonValue) -> list[str]:
    """Each choice's finish_reason, where given."""
    return [
        str(choice["finish_reason"])
        for choice in _choices(body)
        if isinstance(choice.get("finish_reason"), str)
    ]


def usage(body: JsonValue) -> Usage | None:
    """The usage block, if the model sent one."""
    if not isinstance(body, dict):
        return None
    block = body.get("usage")
    if not isinstance(block, dict):
        return None
    prompt = block.get("prompt_tokens")
    completion = block.get("completion_tokens")
    return Usage(
        prompt_tokens=prompt if isinstance(prompt, int) else 0,
        completion_tokens=completion if isinstance(completion, int) else 0,
    )


def chunk_text(event: JsonValue) -> str:
    """The text carried by one streamed chunk (chat delta content or completions text)."""
    texts: list[str] = []
    for choice in _choices(event):
        delta = choice.get("delta")
        if isinstance(delta, dict) and isinstance(delta.get("content"), str):
            texts.append(str(delta["content"]))
        elif isinstance(choice.get("text"), str):
            texts.append(str(choice["text"]))
    return "".join(texts)


def with_chunk_text(event: JsonValue, text: str) -> JsonValue:
    """A copy of a streamed chunk carrying `text` instead of its own."""
    return rewrite_text_chunk(event, lambda _: text)


def rewrite_text_chunk(event: JsonValue, rewrite: Callable[[str], str]) -> JsonValue:
    """A copy of a streamed chunk with its text passed through `rewrite`."""
    if not isinstance(event, dict):
        return event
    choices: list[JsonValue] = []
    for choice in _choices(event):
        delta = choice.get("delta")
        if isinstance(delta, dict) and isinstance(delta.get("content"), str):
            choice = {**choice, "delta": {**delta, "content": rewrite(str(delta["content"]))}}
        elif isinstance(choice.get("text"), str):
            choice = {**choice, "text": rewrite(str(choice["text"]))}
        choices.append(choice)
    return {**event, "choices": choices}


def appended_feedback(body: dict[str, JsonValue], feedback: str) -> dict[str, JsonValue]:
    """The request to re-ask with: the failure appended as a user message (chat) or prompt."""
    messages = body.get("messages")
    if isinstance(messages, list):
        return {**body, "messages": [*messages, {"role": "user", "content": feedback}]}
    prompt = body.get("prompt")
    if isinstance(prompt, str):
        return {**body, "prompt": f"{prompt}\n\n{feedback}"}
    return body
