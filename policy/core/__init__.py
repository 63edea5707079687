"""The pure core: the vocabulary (ToolCall, Verdict), config, the decision engine and the built-in guard.

No I/O beyond reading the config files; imports no click, starlette, sqlite3 or httpx (tests/test_guards.py).
"""
