"""Stage 4, docs: Sphinx builds of each component's docs against this run's wheels."""
