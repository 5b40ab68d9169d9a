"""labctl's engine: everything the CLI calls, nothing that prints or parses argv."""
