"""The CI jobs' own parts: lint, and each component's tests run against the installed wheels."""
