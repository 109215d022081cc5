"""Reading a services tree: discovery, JSON config, the dependency graph, the static pipeline."""
