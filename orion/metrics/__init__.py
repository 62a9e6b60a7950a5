"""Prometheus metrics: the per-agent registry and the collectors that read state at scrape time."""
