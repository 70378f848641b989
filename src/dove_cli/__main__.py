"""`python -m dove_cli`: the `dove` command, where it is not on PATH (a Windows user's usual second try)."""

from dove_cli import console_main

console_main()
