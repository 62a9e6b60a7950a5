"""The store: how the rest of Orion reaches the replicated state.

``port.py`` is the ``Store`` protocol (submit a command, read the machine, hear
applies, change Raft membership), its errors and ``RaftStatus``; ``local.py`` the
in-process fake; ``coalescer.py`` batches the writes that arrive together into
one entry; ``admission.py`` the leader's voter-or-replica rule, run under the
store's membership lock; ``digest.py`` the machine's canonical digest. The
pysyncobj backend is ``orion/raft/``; the machine it replicates is ``orion/state/``.
"""
