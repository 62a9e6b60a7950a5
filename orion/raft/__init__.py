"""The pysyncobj backend of the ``Store`` port: the only package that imports pysyncobj.

``store.py`` is ``RaftStore``, handed the machine it replicates (``application.py``;
it owns none: a resync rebuilds one through ``replica.py``); ``engine.py`` is
pysyncobj as we run it; ``patches.py`` is every change to pysyncobj's behaviour,
each rule named with the upstream line it changes (``ack_queue.py``,
``replica_heartbeats.py``, ``read_index.py`` and ``prevote.py`` are its pure
decisions; ``election_gate.py`` and ``truncation_watch.py`` two of its rules;
``read_barrier.py`` the store's wait for a linearizable read point); ``journal.py`` our journal in
pysyncobj's format; ``membership.py`` and ``members_file.py`` the mechanics of a
membership change and the record a restart reads. Only ``orion/agent/`` imports it.
"""
