"""MCP JSON-RPC as both adapters speak it: which requests are calls, and how list results are filtered."""
