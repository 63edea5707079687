"""mcpwrap: the process adapter. Governs stdio MCP servers (`mcpwrap -- CMD`) and CLI binaries (`mcpwrap exec`).

The relay translates JSON-RPC frames and command lines into ToolCalls for the Gate; it decides nothing itself.
"""
