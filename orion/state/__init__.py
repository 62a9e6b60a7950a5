"""Replicated state: typed commands, the deterministic machine that applies
them, and the store interface (with its pysyncobj backend) that feeds it."""
