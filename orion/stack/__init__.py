"""Compose files as Orion services (docs/stacks.md): read, interpolated, checked against the
Compose Specification's schema, converted, and planned against what the cluster runs.

``load.py`` is the only module that reads files; ``interpolate.py``, ``schema.py``,
``convert.py`` (with ``deploy_block.py`` and ``mounts.py``) and ``plan.py`` are pure, and
report what they find as ``findings.py`` values. The CLI (``orion/cli/stack_cmd.py``) prints
and carries out; the cluster sees ordinary services, each carrying its stack's name.
"""
