"""`POST /api/stop` of one agent says when the name is no configured or running agent's (a stop matches the
exact name): the page and scripts can show the operator the agent meant."""

from __future__ import annotations

import httpx

from policy.control import ControlPlane


async def test_a_stop_of_a_lookalike_name_answers_with_a_note_naming_the_agent_meant(
    plane: ControlPlane, client: httpx.AsyncClient
) -> None:
    known = sorted(plane.config.agents)[0]
    r = await client.post("/api/stop", json={"agent": known.upper() + "\u200b", "reason": "runaway"})
    assert r.status_code == 201
    assert f"agent-mesh stop --agent {known}" in r.json()["note"]
    r = await client.post("/api/stop", json={"agent": known, "reason": "runaway"})
    assert r.status_code == 201
    assert r.json()["note"] is None
