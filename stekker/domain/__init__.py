"""Pure business rules: no I/O, no protocol wire formats."""
