"""The song's form: sections on the bar grid, which of them repeat, and what each one is for."""
