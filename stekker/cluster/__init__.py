"""Running Stekker as several processes: roles, node identity, Redis, leases and the station registry.

One process (`stekker serve`, SQLite, no Redis) needs none of this beyond `node.py`'s single
node that holds every role; `STEKKER_REDIS_URL` set turns on the cluster parts.
"""
