"""`python -m policy.cli` runs the `agent-mesh` command."""

from policy.cli import main

main()
