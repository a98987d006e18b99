"""The paper's experiments: each runs conditions over seeds and writes a run directory."""
