"""`python -m mcpwrap`: the same as the `mcpwrap` console script."""

from mcpwrap.launch import main

main()
