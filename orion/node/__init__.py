"""The node's own work: run what the leader placed here, on this host's engine.

``reconcile.py`` is the pure plan (desired tasks and engine containers in,
actions out) and ``reconcile_loop.py`` its runner; ``capacity.py`` measures
what this host can offer; ``leave.py`` is the node's graceful departure;
``health.py`` (the rule), ``health_checks.py`` (one probe) and ``health_loop.py``
check the service replicas this node runs.
"""
