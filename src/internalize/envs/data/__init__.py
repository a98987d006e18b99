"""Package data of the environments (the boulder world's tree layouts)."""
