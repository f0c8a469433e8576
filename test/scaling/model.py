"""Scaling model on paper for docs/scaling.md (issue 15, item 5).

Dependency-free: `python3 test/scaling/model.py` prints the two tables that
docs/scaling.md holds between its `scaling-model` markers; test_model.py fails
when the checked-in tables differ (UPDATE_SCALING=1 rewrites them).

Every input below is one of:
  measured    - a figure in BENCHMARKS.md (or the write-up it links for that row);
  config      - a default of the code or of the config function-signals renders
                (a fact about the software, not a measurement);
  assumption  - never measured; docs/scaling.md says how to measure it.
Nothing here is a new measurement.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

GIB = 1024**3
MIB = 1024**2


@dataclass(frozen=True)
class Input:
    name: str
    value: float
    unit: str
    kind: str  # measured | config | assumption
    source: str


INPUTS = [
    # --- aggregator ingest ------------------------------------------------
    Input("spans_per_core_gzip", 216_000, "spans/s per aggregator core", "measured",
          "BENCHMARKS.md, row 'Ingest over real OTLP/gRPC, end to end' (gzip, extrapolated from "
          "the aggregator's 41 % CPU share there; docs/benchmarks/ingest.md §2)"),
    Input("points_per_core_gzip", 642_000, "datapoints/s per aggregator core", "measured",
          "same row (gzip, extrapolated from a 53 % CPU share)"),
    Input("redis_over_embedded", 0.68, "ratio", "measured",
          "BENCHMARKS.md, row 'Ingest with Redis vs embedded store' (spans; applied to datapoints too: "
          "assumption)"),
    Input("run_to_run_spread", 0.40, "fraction", "measured",
          "BENCHMARKS.md, preamble: absolute medians moved by up to ±40 % between runs; capacity is "
          "derated by it"),
    Input("forward_on_over_off", 0.22, "ratio", "measured",
          "BENCHMARKS.md, row 'Ingest with trace forwarding on vs off' (every span forwarded, no "
          "compression)"),
    Input("forward_span_bytes", 1_929, "B per forwarded span", "measured",
          "BENCHMARKS.md § Trace forwarding (1 KiB prompt + 256 B completion per span)"),
    Input("forward_queue_mib", 73, "MiB per forwarder, queue full", "measured",
          "BENCHMARKS.md § Trace forwarding, memory with the backend down (1,453 MiB for 20 forwarders)"),
    Input("pending_window_bytes", 1_919, "B heap per fresh window", "measured",
          "BENCHMARKS.md, row 'Memory per active series, 100,000 series, one window each' (spans)"),
    # --- Redis --------------------------------------------------------------
    Input("redis_series_day_bytes", 37_575, "B per series-day (24 hour keys)", "measured",
          "BENCHMARKS.md, row 'Redis memory per series-day' (docs/benchmarks/redis.md § Redis memory)"),
    Input("redis_live_minutes_bytes", 93_672, "B of live minute keys per active series", "measured",
          "same row"),
    Input("redis_frame_bytes", 467, "B per appended frame (upper bound)", "measured",
          "docs/benchmarks/redis.md § What changed (value 901 -> 467 B): a minute of 60 requests in "
          "encoding 2; a 1 s flush appends less"),
    Input("redis_us_per_key_write", 10.3, "µs per window write, Redis + client (upper bound)", "measured",
          "docs/benchmarks/redis.md § Replica write strategies: (a) 2.06 ms per 200-window flush, 1 "
          "replica, read + merge + write, client time included"),
    Input("redis_us_per_key_read", 1.6e3 / 2046, "µs of Redis CPU per key read (lower bound)", "measured",
          "docs/benchmarks/redis.md § What changed: redis-server 1.6 ms per 2,046-key MGET"),
    Input("keys_per_series_write", 2, "keys", "config",
          "docs/redis.md § Roll-up: every flush appends to the minute key and to the hour key"),
    Input("flush_interval_s", 1, "s", "config", "docs/redis.md, --redis-flush-interval default"),
    Input("compaction_frames", 16, "frames", "config",
          "docs/redis.md § Several replicas: a key with >= 16 frames is compacted (read, merged, rewritten)"),
    Input("retention_days", 30, "days", "config", "--retention default, and the issue's reference fleet"),
    Input("rollup_after_h", 2, "h", "config", "--rollup-after default"),
    Input("embedded_bytes_at_rollup", 17_039, "B heap per series after 2 h of minutes", "measured",
          "BENCHMARKS.md § Steady-state memory of the embedded store (issue 15, item 4)"),
    Input("embedded_bytes_per_hour", 2_000, "B heap per series per further hour", "measured",
          "same section ('+2.0 KB per series per hour after packing')"),
    # --- the fleet --------------------------------------------------------
    Input("clusters", 50, "clusters at 1x", "config", "issue 15 item 5: reference fleet"),
    Input("models", 200, "models per cluster", "config", "reference fleet"),
    Input("kinds", 6, "signal kinds per (cluster, model)", "config", "reference fleet; docs/architecture.md"),
    Input("tenants", 20, "tenants, equal size", "assumption",
          "the fleet shape of the memory benches (20 tenants); real fleets are skewed"),
    Input("requests_per_identity_s", 1, "requests/s per (cluster, model)", "assumption",
          "the traffic the Redis memory figures were measured with (60 requests per minute window)"),
    Input("points_per_scrape", 15, "datapoints per (cluster, model) per scrape", "assumption",
          "one vLLM pod per (cluster, model), as the synthetic scrape the ingest bench measured "
          "(test/otlp-kit/src/synthetic.rs)"),
    Input("scrape_interval_s", 15, "s", "config", "rendered agent config, examples/*/expected.yaml"),
    Input("series_written_per_flush", 1.0, "fraction of series", "assumption",
          "upper bound: every series gets data in every flush (the agent exports at least once a second) "
          "and an identity's data reaches one replica"),
    Input("span_wire_bytes", 650, "B per span, uncompressed", "assumption",
          "the forwarded span's 1,929 B minus its 1,280 B of prompt and completion"),
    Input("point_wire_bytes", 200, "B per datapoint, uncompressed", "assumption", "never measured"),
    Input("forwarded_fraction", 0.10, "of spans (and of models) traced", "assumption",
          "gives the 20 forwarders of the forwarding bench at 1x"),
    Input("cores_per_replica", 1, "cores", "assumption", "what was measured; scaling inside a process was not"),
    Input("min_replicas", 2, "replicas", "assumption", "availability"),
    Input("redis_master_usable_gib", 25, "GiB per master", "assumption", "maxmemory of one Redis master"),
    Input("redis_cpu_target", 0.5, "of one core per master", "assumption",
          "headroom for compaction, queries, failover"),
    Input("min_masters", 3, "masters", "config", "smallest Redis Cluster"),
    Input("master_nic_gbit", 10, "Gbit/s per master, half usable", "assumption", "node network"),
    Input("node_memory_gib", 64, "GiB", "assumption", "one machine, for the embedded store"),
]

V = {i.name: i.value for i in INPUTS}
GROWTH = (1, 10, 100)


def model(growth: int, v: dict[str, float] = V) -> dict[str, float]:
    """The reference fleet grown `growth` times in clusters (same models, same tenants)."""
    r: dict[str, float] = {}
    identities = v["clusters"] * growth * v["models"]
    series = identities * v["kinds"]
    r["series"] = series
    r["spans_s"] = identities * v["requests_per_identity_s"]
    r["points_s"] = identities * v["points_per_scrape"] / v["scrape_interval_s"]

    # Ingest: measured per-core rates over gzip'd OTLP/gRPC, times the Redis store's
    # cost, derated by the run-to-run spread; forwarded spans cost 1/ratio each.
    usable = v["redis_over_embedded"] * (1 - v["run_to_run_spread"])
    r["span_capacity"] = v["spans_per_core_gzip"] * usable * v["cores_per_replica"]
    r["point_capacity"] = v["points_per_core_gzip"] * usable * v["cores_per_replica"]
    forward_factor = 1 + v["forwarded_fraction"] * (1 / v["forward_on_over_off"] - 1)
    r["cores"] = (r["spans_s"] * forward_factor / (v["spans_per_core_gzip"] * usable)
                  + r["points_s"] / (v["points_per_core_gzip"] * usable))
    r["replicas"] = max(v["min_replicas"], math.ceil(r["cores"] / v["cores_per_replica"]))

    # Redis memory: 30 days of hour keys + the live minute keys, per series.
    retention_bytes = v["retention_days"] * v["redis_series_day_bytes"] + v["redis_live_minutes_bytes"]
    r["redis_bytes"] = series * retention_bytes
    r["tenant_bytes"] = r["redis_bytes"] / v["tenants"]

    # Redis writes: each written series appends one frame to 2 keys per flush.
    r["appends_s"] = series * v["series_written_per_flush"] * v["keys_per_series_write"] / v["flush_interval_s"]
    r["redis_cpu_upper"] = r["appends_s"] * v["redis_us_per_key_write"] / 1e6
    r["redis_cpu_lower"] = r["appends_s"] * v["redis_us_per_key_read"] / 1e6
    r["tenant_cpu_upper"] = r["redis_cpu_upper"] / v["tenants"]

    master_bytes = v["redis_master_usable_gib"] * GIB
    r["masters_memory"] = math.ceil(r["redis_bytes"] / master_bytes)
    r["masters_cpu"] = math.ceil(r["redis_cpu_upper"] / v["redis_cpu_target"])
    r["masters"] = max(v["min_masters"], r["masters_memory"], r["masters_cpu"])
    # All of a tenant's keys share one slot ({tenant} hash tag): a tenant never spans masters.
    r["tenant_fits"] = (r["tenant_bytes"] <= master_bytes
                        and r["tenant_cpu_upper"] <= v["redis_cpu_target"])

    # Network (bytes/s). Compaction reads every frame once more and writes 1 per 16.
    r["net_ingest"] = r["spans_s"] * v["span_wire_bytes"] + r["points_s"] * v["point_wire_bytes"]
    compaction = 1 + 1 + 1 / v["compaction_frames"]
    r["net_redis"] = r["appends_s"] * v["redis_frame_bytes"] * compaction
    r["tenant_net_redis"] = r["net_redis"] / v["tenants"]
    r["net_forward"] = r["spans_s"] * v["forwarded_fraction"] * v["forward_span_bytes"]

    # Memory of one aggregator replica: current + previous minute pending per series
    # routed to it, and, while every trace forwarder is down, full forwarder queues.
    r["forwarders"] = v["models"] * v["forwarded_fraction"]
    r["replica_pending"] = series / r["replicas"] * 2 * v["pending_window_bytes"]
    r["replica_queues"] = r["forwarders"] * v["forward_queue_mib"] * MIB

    # The embedded store instead of Redis: one process holds the whole retention.
    hours = v["retention_days"] * 24 - v["rollup_after_h"]
    r["embedded_bytes"] = series * (v["embedded_bytes_at_rollup"] + hours * v["embedded_bytes_per_hour"])
    return r


def limits(v: dict[str, float] = V) -> list[tuple[str, float]]:
    """Growth factor (in clusters, from 1x) at which each hard limit is reached, smallest first."""
    one = model(1, v)
    master_bytes = v["redis_master_usable_gib"] * GIB
    nic = v["master_nic_gbit"] * 1e9 / 8 * 0.5
    found = [
        ("embedded store: all series' retention in one process's memory",
         v["node_memory_gib"] * GIB / one["embedded_bytes"]),
        ("Redis: one tenant's keys on one master (hash tag {tenant}), memory",
         master_bytes / one["tenant_bytes"]),
        ("Redis: one tenant's writes on one master's core (upper bound)",
         v["redis_cpu_target"] / one["tenant_cpu_upper"]),
        ("Redis: one tenant's write traffic on one master's network (upper bound)",
         nic / one["tenant_net_redis"]),
    ]
    return sorted(found, key=lambda item: item[1])


def _n(x: float) -> str:
    return f"{x:,.0f}"


def _gib(x: float) -> str:
    return f"{x / GIB:,.1f} GiB"


def _rate(x: float) -> str:
    mbit = x * 8 / 1e6
    return f"{mbit:,.0f} Mbit/s" if mbit < 1000 else f"{mbit / 1000:,.1f} Gbit/s"


def inputs_table() -> str:
    lines = ["| input | value | unit | kind | source |", "|---|---|---|---|---|"]
    for i in INPUTS:
        value = f"{i.value:,.3f}".rstrip("0").rstrip(".") if i.value % 1 else f"{i.value:,.0f}"
        lines.append(f"| `{i.name}` | {value} | {i.unit} | {i.kind} | {i.source} |")
    return "\n".join(lines)


def results_table() -> str:
    ms = [model(g) for g in GROWTH]
    rows = [
        ("series (clusters × 200 models × 6 kinds)", lambda r: _n(r["series"])),
        ("spans/s; datapoints/s into the aggregators", lambda r: f"{_n(r['spans_s'])}; {_n(r['points_s'])}"),
        ("usable ingest per 1-core replica (spans/s or points/s, Redis store, derated)",
         lambda r: f"{_n(r['span_capacity'])} or {_n(r['point_capacity'])}"),
        ("aggregator cores needed (10 % of spans forwarded)", lambda r: f"{r['cores']:.2f}"),
        ("aggregator replicas (1 core each, at least 2)", lambda r: _n(r["replicas"])),
        ("Redis memory, 30 days (upper bound)", lambda r: _gib(r["redis_bytes"])),
        ("… of which one tenant's (one master, hash tag)", lambda r: _gib(r["tenant_bytes"])),
        ("Redis key appends/s (upper bound)", lambda r: _n(r["appends_s"])),
        ("Redis CPU for appends, cores (lower–upper bound)",
         lambda r: f"{r['redis_cpu_lower']:.2f}–{r['redis_cpu_upper']:.2f}"),
        ("… of which one tenant's (one master's core), upper bound", lambda r: f"{r['tenant_cpu_upper']:.2f}"),
        ("Redis masters: by memory / by CPU (upper) / needed", lambda r:
         f"{_n(r['masters_memory'])} / {_n(r['masters_cpu'])} / {_n(r['masters'])}"),
        ("largest tenant fits one master (memory and CPU)?",
         lambda r: "yes" if r["tenant_fits"] else f"**no**: {_n(r['masters'])} masters but only "
                                                    f"{_n(V['tenants'])} hold data"),
        ("network agents → aggregators (uncompressed; gzip on the wire)", lambda r: _rate(r["net_ingest"])),
        ("network aggregators ↔ Redis (upper bound)", lambda r: _rate(r["net_redis"])),
        ("… of which one tenant's (one master)", lambda r: _rate(r["tenant_net_redis"])),
        ("network aggregators → trace forwarders", lambda r: _rate(r["net_forward"])),
        ("memory per replica: pending windows", lambda r: f"{r['replica_pending'] / MIB:,.0f} MiB"),
        ("memory per replica: forwarder queues full (20 forwarders down)",
         lambda r: f"{r['replica_queues'] / MIB:,.0f} MiB"),
        ("embedded store instead (one process, 30 days)", lambda r: _gib(r["embedded_bytes"])),
    ]
    header = "| | " + " | ".join(f"{g}× ({_n(V['clusters'] * g)} clusters)" for g in GROWTH) + " |"
    lines = [header, "|---|" + "---|" * len(GROWTH)]
    for label, cell in rows:
        lines.append(f"| {label} | " + " | ".join(cell(r) for r in ms) + " |")
    lines.append("")
    lines.append("| hard limit (growing in clusters, tenants fixed) | reached at growth |")
    lines.append("|---|---|")
    for label, factor in limits():
        lines.append(f"| {label} | {factor:,.1f}× |")
    return "\n".join(lines)


def render() -> str:
    return "### Inputs\n\n" + inputs_table() + "\n\n### Results\n\n" + results_table() + "\n"


if __name__ == "__main__":
    print(render(), end="")
