"""`python -m mcpwrap`: the same as the `mcpwrap` console script."""

from mcpwrap.cli import main

main()
