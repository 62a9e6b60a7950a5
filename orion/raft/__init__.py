"""The pysyncobj backend of the ``Store`` port: the only package that imports pysyncobj.

``store.py`` is ``RaftStore``, handed the machine it replicates (``application.py``;
it owns none: a resync rebuilds one through ``replica.py``); ``engine.py`` is
pysyncobj as we run it; ``patches.py`` is every change to pysyncobj's behaviour,
each rule named with the upstream line it changes (``ack_queue.py`` and
``replica_heartbeats.py`` are its pure decisions); ``journal.py`` our journal in
pysyncobj's format; ``membership.py`` and ``members_file.py`` the mechanics of a
membership change and the record a restart reads. Only ``orion/agent/`` imports it.
"""
