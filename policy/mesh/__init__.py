"""The active mesh: which config and state dir every command and process uses, and the state dir's permissions."""
