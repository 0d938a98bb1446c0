"""Organisation mode: one deployment keeps every repository of a GitHub organisation in step."""
