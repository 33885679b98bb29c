"""Stage 1, preflight: every check a release needs before anything is built, all findings at once."""
