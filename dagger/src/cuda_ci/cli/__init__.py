"""The command line: flags, one function per command (cli.commands), reporting to people, JSON and GitHub Actions."""
