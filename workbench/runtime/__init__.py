"""Where work runs beyond this process: Ray sessions and tasks, shared by verify and evaluate."""
