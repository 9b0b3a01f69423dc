"""Feature logic, one module (or folder) per feature, called by handlers, jobs, the CLI and the console alike."""
