"""policy.gate.listing: list results filtered by what the agent may never use."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from policy import Gate, MemoryStore, filter_list, load_config_text, policy_hides
from policy.trace import MemoryTraceSink

CONFIG = """
version: 1
state_dir: {state}
mcp: {{hide_denied_tools: {hide}}}
policies:
  - name: p
    agent: "*"
    rules:
      - {{tools: ["srv.resources/read"], when: {{args.uri: {{glob: "file:///etc/**"}}}}, action: deny}}
      - {{tools: ["srv.prompts/get"], when: {{args.name: {{eq: secret}}}}, action: deny}}
      - {{tools: ["closed.resources/read"], action: deny}}
      - {{tools: ["*"], action: allow}}
"""


def gate(tmp_path: Path, hide: bool = True) -> Gate:
    text = CONFIG.format(state=tmp_path / "state", hide=str(hide).lower())
    return Gate.open(load_config_text(text, "t.yaml", str(tmp_path)), store=MemoryStore(), sink=MemoryTraceSink())


def hidden_by(g: Gate, server: str = "srv") -> Any:
    return policy_hides(g, agent="a", surface="mcp_stdio", server=server, session=None)


def names(result: Mapping[str, Any], key: str, field: str) -> list[Any]:
    return [item.get(field) for item in result[key]]


def test_a_resource_is_hidden_when_reading_its_exact_uri_is_denied(tmp_path: Path) -> None:
    listed = {"resources": [{"uri": "file:///etc/passwd"}, {"uri": "file:///srv/a"}], "nextCursor": "c"}
    result, removed = filter_list("resources/list", listed, hidden_by(gate(tmp_path)))
    assert (names(result, "resources", "uri"), removed, result["nextCursor"]) == (["file:///srv/a"], 1, "c")


def test_a_prompt_is_hidden_when_getting_it_by_name_is_denied(tmp_path: Path) -> None:
    result, removed = filter_list(
        "prompts/list", {"prompts": [{"name": "secret"}, {"name": "hi"}]}, hidden_by(gate(tmp_path))
    )
    assert (names(result, "prompts", "name"), removed) == (["hi"], 1)


def test_templates_are_hidden_only_when_every_read_of_the_server_is_denied(tmp_path: Path) -> None:
    templates = {"resourceTemplates": [{"uriTemplate": "file:///{path}"}]}
    g = gate(tmp_path)
    assert filter_list("resources/templates/list", templates, hidden_by(g))[1] == 0
    assert filter_list("resources/templates/list", templates, hidden_by(g, "closed"))[1] == 1


def test_items_that_do_not_say_what_they_list_are_removed(tmp_path: Path) -> None:
    listed = {"resources": [{"uri": 7}, "file:///srv/a", {"name": "no uri"}, {"uri": "file:///srv/b"}]}
    result, removed = filter_list("resources/list", listed, hidden_by(gate(tmp_path)))
    assert (result["resources"], removed) == ([{"uri": "file:///srv/b"}], 3)


def test_with_hiding_off_only_malformed_items_go(tmp_path: Path) -> None:
    listed = {"resources": [{"uri": "file:///etc/passwd"}, {"uri": 1}]}
    result, _ = filter_list("resources/list", listed, hidden_by(gate(tmp_path, hide=False)))
    assert names(result, "resources", "uri") == ["file:///etc/passwd"]


def test_a_result_that_is_not_a_list_of_its_kind_is_left_alone(tmp_path: Path) -> None:
    hidden = hidden_by(gate(tmp_path))
    assert filter_list("resources/list", {"resources": "x"}, hidden) == ({"resources": "x"}, 0)
    assert filter_list("resources/list", None, hidden) == (None, 0)
    assert filter_list("ping", {"resources": []}, hidden) == ({"resources": []}, 0)
