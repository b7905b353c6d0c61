"""What an operator's monitoring reads at `/metrics` (Prometheus text format).

The metric objects live here, in one place, so every part increments the same names; the
gauges that describe a running process (stations held, queue depths, leases, lag) are set
just before each scrape by `stekker.api.probes`, from the process's own state.

Counters and histograms are per process (Prometheus adds them up across the cluster); tests
assert on differences, since one test process may run several servers.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, Info

# ---- OCPP gateway ---------------------------------------------------------------------------
STATIONS_CONNECTED = Gauge("stekker_stations_connected", "Station sockets this gateway holds.")
OCPP_MESSAGES = Counter(
    "stekker_ocpp_messages_total",
    "OCPP frames received (in) and sent (out), by action (a reply counts under its call's action).",
    ["direction", "action", "message_type"],
)
OCPP_HANDLING_SECONDS = Histogram(
    "stekker_ocpp_handling_seconds",
    "From a station's CALL received to our reply sent (validation, handler, commit), by action.",
    ["action"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)

# ---- database writer --------------------------------------------------------------------------
WRITER_QUEUE_DEPTH = Gauge("stekker_writer_queue_depth", "Write jobs waiting for the group-commit writer.")
WRITER_BATCH_SIZE = Histogram(
    "stekker_writer_batch_size",
    "Write jobs committed together in one transaction.",
    buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
)

# ---- remote commands ----------------------------------------------------------------------------
COMMANDS = Counter(
    "stekker_commands_total",
    "Commands to stations by how they travelled (local: this process holds the socket; routed: "
    "through Redis to the gateway that does) and how they ended (ok, offline, timeout, error, "
    "unavailable: cluster messaging down).",
    ["route", "outcome"],
)
COMMAND_SECONDS = Histogram(
    "stekker_command_seconds",
    "A command's round trip as its caller saw it, by route.",
    ["route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5, 1, 2.5, 5, 10, 30),
)

# ---- events, outbox, leases ----------------------------------------------------------------------
STREAM_LAG = Gauge(
    "stekker_stream_consumer_lag", "Events of the stream not yet handled by a consumer group.", ["group"]
)
STREAM_PENDING = Gauge(
    "stekker_stream_pending", "Events a consumer group took and has not acknowledged yet.", ["group"]
)
EVENT_BACKLOG = Gauge(
    "stekker_event_backlog",
    "Events published while Redis was away, kept in the database until they can be sent.",
)
OUTBOX_BACKLOG = Gauge(
    "stekker_outbox_backlog", "OCPI pushes waiting for delivery, per roaming partner.", ["partner"]
)
LEASES_HELD = Gauge(
    "stekker_leases_held", "Leases (work run once) this node holds; jobs counted as one kind.", ["lease"]
)

# ---- the process ----------------------------------------------------------------------------------
NODE = Info("stekker_node", "This process: node id and roles.")
REDIS_UP = Gauge("stekker_redis_up", "1 when this process reached Redis at its last try (cluster mode).")
DATABASE_UP = Gauge("stekker_database_up", "1 when this process's last database check succeeded.")
