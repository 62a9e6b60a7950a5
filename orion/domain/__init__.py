"""The domain's values: what a task, a node, a service and their resources are.

Values only, the lowest layer: ``model.py`` (tasks, nodes, usages), ``resources.py``
(what a task asks of a node), ``service.py`` (a service's spec and deployment
records), ``humanize.py`` (how figures are written for people). Everything
else in Orion is built on them; they import nothing of Orion but the defaults.
"""
