"""Stage 3, validate: every check of a release folder, recorded in its manifest, which is then frozen."""
