"""LLM judges: an LLM asked the recipe's yes/no question about each answer. Behind any
OpenAI-compatible chat-completions endpoint (`--judge-url`), or any local GGUF served
in-process by llama.cpp (`--judge-model file.gguf`); both send the same chat request.

Never required: the offline judges are the default. Standard library HTTP only.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass

from gcm_edit.errors import GcmEditError

SYSTEM = "You are a strict evaluator. Reply with exactly one word: yes or no."


def chat_request(question: str, text: str, model: str) -> dict:
    """The chat request both LLM judges send: greedy, a few tokens, one answer to judge."""
    return {
        "model": model,
        "temperature": 0,
        "max_tokens": 4,
        "messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": f"{question}\n\nAnswer to judge:\n{text}"},
        ],
    }


class ChatJudge:
    """A judge whose verdict is an LLM's yes/no reply; subclasses say where the LLM runs."""

    label = "LLM yes share"

    def ask(self, text: str) -> str:
        raise NotImplementedError

    def __call__(self, text: str) -> bool:
        return self.ask(text).strip().lower().lstrip("\"'*").startswith("yes")

    def grade(self, text: str) -> float:
        return float(self(text))


@dataclass(frozen=True)
class LLMJudge(ChatJudge):
    url: str  # base URL (…/v1) or the full …/chat/completions address
    question: str  # e.g. "Is this answer written in verse?"
    model: str = "judge"
    timeout_s: float = 60.0

    @property
    def endpoint(self) -> str:
        url = self.url.rstrip("/")
        return url if url.endswith("/chat/completions") else f"{url}/chat/completions"

    def ask(self, text: str) -> str:
        body = chat_request(self.question, text, self.model)
        headers = {"Content-Type": "application/json"}
        if key := os.environ.get("OPENAI_API_KEY"):
            headers["Authorization"] = f"Bearer {key}"
        request = urllib.request.Request(
            self.endpoint, json.dumps(body).encode(), headers, method="POST"
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_s) as response:
                reply = json.loads(response.read())
            return reply["choices"][0]["message"]["content"]
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise GcmEditError(f"judge endpoint {self.endpoint} unreachable: {reason}") from exc
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise GcmEditError(
                f"judge endpoint {self.endpoint} did not return an OpenAI-style chat completion"
            ) from exc
