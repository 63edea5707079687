"""The reference pull supervisor: rules decide, an optional OpenAI-compatible LLM decides the rest (tested
against a fake endpoint here), and what it cannot use escalates to a human."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler
from types import ModuleType
from typing import Any

import pytest

from tests.support.httpserver import http_server
from tests.support.recipes import load_recipe


@pytest.fixture(scope="module")
def recipe() -> ModuleType:
    return load_recipe("supervisor")


@contextmanager
def fake_llm(content: str) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """An OpenAI-compatible /chat/completions endpoint on loopback answering `content`; records requests."""
    seen: list[dict[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            seen.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
            reply = json.dumps({"choices": [{"message": {"role": "assistant", "content": content}}]}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format: str, *args: Any) -> None:
            return

    with http_server(Handler) as base:
        yield f"{base}/v1", seen


def test_the_recipe_runs_offline_and_checks_itself(recipe: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    assert recipe.main([]) == 0
    out = capsys.readouterr().out
    assert "tmp: allow by supervisor:rules-bot" in out
    assert "(confidence 0.9)" in out
    assert "injection: deny by supervisor:rules-bot" in out
    assert "etc: pending" in out


async def test_the_llm_step_decides_what_no_rule_covers(recipe: ModuleType) -> None:
    answer = json.dumps({"decision": "approve", "reasoning": "an ordinary hosts entry", "confidence": 0.7})
    with fake_llm(answer) as (url, seen):
        out: list[str] = []
        assert await recipe.demo(llm_url=url, out=out) == []
    assert any("etc: allow by supervisor:rules-bot" in line and "(confidence 0.7)" in line for line in out)
    [request] = seen
    assert request["path"] == "/v1/chat/completions"
    assert request["auth"] == "Bearer demo-key"
    assert request["body"]["model"] == "demo-model"
    assert "/etc/hosts" in request["body"]["messages"][1]["content"]


@pytest.mark.parametrize("content", ["I think it's fine", '{"decision": "yolo"}', '{"decision": "approve", '
                                     '"confidence": 7}'])  # fmt: skip
def test_an_unusable_llm_answer_escalates_and_never_approves(recipe: ModuleType, content: str) -> None:
    with fake_llm(content) as (url, _):
        llm = recipe.LlmJudge(url, "m")
        ruling = llm.ask({"agent": "a", "tool": "filesystem.write_file", "arguments": {}})
        llm.close()
    assert ruling.decision == "escalate"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("rules: [{decision: maybe}]", "rules[0].decision: 'maybe' is not one of"),
        ("rules: [{decision: approve, confidence: 3}]", "rules[0].confidence"),
        ("rulez: []", "unknown key(s): rulez"),
        ("rules: [{decision: deny, tool: x}]", "rules[0]: a rule has"),
    ],
)
def test_a_wrong_rules_file_is_refused_precisely(recipe: ModuleType, text: str, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        recipe.load_rules(text)
