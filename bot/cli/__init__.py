"""The ``alliance-bot`` command line: ``main`` builds the parser, each feature adds its subcommands."""
