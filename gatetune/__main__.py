"""`python -m gatetune`: the same as the `gatetune` command."""

from gatetune.main import entry

entry()
