"""Business operations: check, one DB transaction, change, audit, event, side effects after commit."""
