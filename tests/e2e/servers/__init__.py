"""Tiny MCP servers of our own for e2e cases no third-party server shows (a tool that changes)."""
