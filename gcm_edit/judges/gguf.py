"""A local LLM judge: any GGUF (`--judge-model file.gguf`) served in-process by llama.cpp,
sent the chat request `--judge-url` sends, through the GGUF's own chat template.

A grammar lets the reply be only yes or no, so a small or chatty model still gives a
verdict (its most likely of the two) instead of prose that would read as "no".
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from gcm_edit.inputs.gguf import gguf_file
from gcm_edit.judges.llm import ChatJudge, chat_request
from gcm_edit.model.llamacpp import LlamaCpp

YES_OR_NO = 'root ::= [Yy] "es" | [Nn] "o"'
# tokens of template + question + answer; a longer answer is refused by llama.cpp in one line
CONTEXT = 4096


class GgufJudge(ChatJudge):
    def __init__(self, path: Path, question: str):
        self.path = gguf_file(Path(path).expanduser(), "--judge-model")
        self.question = question

    @cached_property
    def llm(self) -> LlamaCpp:
        """Loaded at the first verdict, so a run that finds its judged answers cached never
        loads it."""
        return LlamaCpp(self.path, n_ctx=CONTEXT)

    def ask(self, text: str) -> str:
        body = chat_request(self.question, text, self.path.name) | {"grammar": YES_OR_NO}
        return self.llm.chat(body)
