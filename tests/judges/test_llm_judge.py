"""The optional LLM judge against a local OpenAI-compatible stub server (no network)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from gcm_edit.errors import GcmEditError
from gcm_edit.judges import LLMJudge, make_judge


class StubCompletions(BaseHTTPRequestHandler):
    """Says "Yes." when the judged answer has several lines, "no" otherwise; records requests."""

    requests: list[dict] = []

    def do_POST(self):  # noqa: N802 (http.server naming)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        StubCompletions.requests.append(
            {"path": self.path, "body": body, "auth": self.headers.get("Authorization")}
        )
        answer = body["messages"][-1]["content"].split("Answer to judge:\n", 1)[1]
        reply = "Yes." if answer.count("\n") >= 2 else "no"
        if "BROKEN" in answer:
            payload = b'{"unexpected": true}'
        else:
            payload = json.dumps(
                {"choices": [{"message": {"role": "assistant", "content": reply}}]}
            ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def stub_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), StubCompletions)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()


def test_llm_judge_asks_the_question_and_reads_yes_no(stub_url, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    StubCompletions.requests.clear()
    judge = make_judge("verse", stub_url, "Is this answer written in verse?", "my-judge")
    assert isinstance(judge, LLMJudge)
    assert judge("Roses are red,\nviolets are blue,\nsugar is sweet")
    assert not judge("A single line of plain prose.")
    assert judge.grade("a\nb\nc") == 1.0
    first = StubCompletions.requests[0]
    assert first["path"] == "/v1/chat/completions"
    assert first["body"]["model"] == "my-judge" and first["body"]["temperature"] == 0
    assert first["body"]["messages"][-1]["content"].startswith("Is this answer written in verse?")
    assert first["auth"] == "Bearer sk-test"


def test_llm_judge_errors_are_one_line(stub_url):
    with pytest.raises(GcmEditError, match="did not return an OpenAI-style") as info:
        LLMJudge(stub_url, "q?")("BROKEN\n\n")
    assert "\n" not in str(info.value)
    with pytest.raises(GcmEditError, match="unreachable") as info:
        LLMJudge("http://127.0.0.1:9/v1", "q?", timeout_s=2)("text")
    assert "\n" not in str(info.value)
