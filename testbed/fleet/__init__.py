"""Many lab hosts: a matrix of runs on Celery with a Redis broker, results in one history.

    engine      the Celery app, the Redis connection, key names, FleetError
    spec        JobSpec (one run to make) and matrix files
    capabilities what a worker can run (providers passing pre-flight, boxes, routes, exits)
    ledger      each job's state in Redis: claim, lease (heartbeat), phase, finish, reap
    bundle      a run as a checksummed tarball; atomic unpack and indexing on the coordinator
    worker      ``testbed worker``: takes jobs, sweeps its own leftovers when it restarts
    submit      ``testbed submit``: refuses what no live worker can run, waits, ingests
    status      ``testbed jobs``
    nightly     ``testbed nightly --distributed``
    commands    the CLI parsers
"""
