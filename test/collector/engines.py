"""Loopback stand-ins for the scrape targets the agent reads: vLLM, SGLang,
llama.cpp, the llm-d endpoint picker and NVIDIA's DCGM exporter, each
publishing `/metrics` the way its upstream code does.

What each one copies from upstream (read from the sources, 2026):

- vLLM (`vllm/v1/metrics/loggers.py`, PrometheusStatLogger): prometheus_client
  in one process, labels `model_name`/`engine`, the same names, help texts and
  bucket ladders. prometheus_client negotiates the format from `Accept`, so a
  scraper that asks for OpenMetrics (Prometheus and the collector do) gets
  `# EOF`, `_total` samples under bare counter families and `_created`
  samples; others get text 0.0.4 with `_created` as separate gauges.
- SGLang (`python/sglang/srt/metrics/collector.py`): prometheus_client in
  multiprocess mode (SGLang always sets PROMETHEUS_MULTIPROC_DIR), which
  serves every family with help "Multiprocess metric" and no `_created`.
- llama.cpp (`tools/server`, `/metrics` handler): text written by hand,
  counters then gauges, no labels, values through `std::ostream <<` (six
  significant digits), `text/plain; version=0.0.4`.
- llm-d EPP (llm-d/llm-d-router, `pkg/epp/metrics`): client_golang through
  controller-runtime's metrics server: HTTPS with a self-signed certificate,
  bearer-token authentication, text 0.0.4 (no OpenMetrics), families sorted
  by name, label names sorted with `le` last, Go float formatting.
- DCGM exporter (`internal/pkg/rendermetrics`): a Go text template, gauges
  labelled gpu/UUID/pci_bus_id/device/modelName/Hostname, then the
  DCGM_FI_DRIVER_VERSION label and the pod-mapping attributes
  container/namespace/pod; integer fields as `%d`, floating ones as `%f`.

Each server counts the scrapes that saw each version of its state, so a test
can wait until the agent has read what it just changed.
"""

from __future__ import annotations

import decimal
import math
import ssl
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable, Iterable, Sequence

import prometheus_client
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.metrics_core import GaugeMetricFamily

from harness.procs import free_port

# vLLM's ladders (vllm/v1/metrics/loggers.py).
VLLM_TTFT_BUCKETS = (
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
    20.0, 40.0, 80.0, 160.0, 640.0, 2560.0,
)
VLLM_ITL_BUCKETS = (
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0,
    40.0, 80.0,
)
VLLM_REQUEST_LATENCY_BUCKETS = (
    0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0,
    480.0, 960.0, 1920.0, 7680.0,
)
# SGLang's defaults (TokenizerMetricsCollector).
SGLANG_TTFT_BUCKETS = (0.1, 0.2, 0.4, 0.6, 0.8, 1, 2, 4, 6, 8, 10, 20, 40, 60, 80, 100, 200, 400)
SGLANG_ITL_BUCKETS = (
    0.002, 0.004, 0.006, 0.008, 0.010, 0.015, 0.020, 0.025, 0.030, 0.035, 0.040, 0.060, 0.080,
    0.100, 0.200, 0.400, 0.600, 0.800, 1.000, 2.000, 4.000, 6.000, 8.000,
)
SGLANG_E2E_BUCKETS = (
    0.1, 0.2, 0.4, 0.6, 0.8, 1, 2, 4, 6, 8, 10, 20, 40, 60, 80, 100, 200, 400, 600, 1200, 1800, 2400,
)
# llm-d-router pkg/epp/metrics: generalLatencyBuckets and the token ladders.
EPP_LATENCY_BUCKETS = (
    0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30,
    45, 60, 120, 180, 240, 300, 360, 480, 600, 900, 1200, 1800, 2700, 3600,
)
EPP_TTFT_BUCKETS = (
    0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30,
    45, 60, 120,
)
EPP_INPUT_TOKEN_BUCKETS = (
    1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32778, 65536, 131072, 262144,
    524288, 1048576,
)
EPP_OUTPUT_TOKEN_BUCKETS = (1, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192)


def go_float(value: float) -> str:
    """strconv.FormatFloat(v, 'g', -1, 64), as client_golang's text encoder
    writes values and `le` bounds: shortest digits, exponent form from 1e6."""
    value = float(value)
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if math.isnan(value):
        return "NaN"
    if value == 0:
        return "0"
    digits = decimal.Decimal(repr(value))
    sign = "-" if digits < 0 else ""
    _, mantissa_digits, exponent = digits.copy_abs().normalize().as_tuple()
    mantissa = "".join(map(str, mantissa_digits))
    power = len(mantissa) + exponent - 1
    if power < -4 or power >= 6:
        head, tail = mantissa[0], mantissa[1:]
        return f"{sign}{head}{'.' + tail if tail else ''}e{'+' if power >= 0 else '-'}{abs(power):02d}"
    return sign + format(digits.copy_abs().normalize(), "f")


def cpp_stream(value: float) -> str:
    """`std::ostream << double` with default flags: %g, six significant digits."""
    return f"{value:g}"


@dataclass
class Scrapes:
    """How many scrapes saw each state version."""

    by_version: dict[int, int] = field(default_factory=dict)
    total: int = 0

    def seen(self, version: int) -> None:
        self.by_version[version] = self.by_version.get(version, 0) + 1
        self.total += 1


class MetricsServer:
    """An HTTP(S) server on a loopback port whose `/metrics` is rendered by
    `render(accept, accept_encoding) -> (content_type, body, extra_headers)`.
    `version()` names the state a render saw; `bearer_token`, when set, is
    required as controller-runtime's authenticated metrics endpoint does."""

    def __init__(self, render: Callable[[str, str], tuple[str, bytes, dict[str, str]]],
                 version: Callable[[], int], *, tls: ssl.SSLContext | None = None,
                 bearer_token: str | None = None, port: int | None = None) -> None:
        self.port = port or free_port()
        self.scrapes = Scrapes()
        self.refused = 0
        self.accept_headers: set[str] = set()
        self._render = render
        self._version = version
        self._tls = tls
        self._token = bearer_token
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> "MetricsServer":
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's name)
                if self.path.split("?")[0] != "/metrics":
                    self.send_error(404)
                    return
                if outer._token is not None and self.headers.get("Authorization") != f"Bearer {outer._token}":
                    with outer._lock:
                        outer.refused += 1
                    self.send_response(401)
                    self.end_headers()
                    return
                with outer._lock:
                    outer.accept_headers.add(self.headers.get("Accept", ""))
                    version = outer._version()
                    content_type, body, extra = outer._render(
                        self.headers.get("Accept", ""), self.headers.get("Accept-Encoding", "")
                    )
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                for key, value in extra.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)
                self.wfile.flush()
                with outer._lock:
                    outer.scrapes.seen(version)

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        if self._tls is not None:
            server.socket = self._tls.wrap_socket(server.socket, server_side=True)
        self._server = server
        threading.Thread(target=server.serve_forever, name=f"metrics-{self.port}", daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def scrapes_of(self, version: int) -> int:
        with self._lock:
            return self.scrapes.by_version.get(version, 0)

    def total_scrapes(self) -> int:
        with self._lock:
            return self.scrapes.total


class Engine:
    """One scrape target's state behind a MetricsServer. Subclasses hold the
    metrics; `change()` bumps the version every render reports."""

    kind = "engine"

    def __init__(self, **server_options: object) -> None:
        self.lock = threading.RLock()
        self.version = 0
        self.server = MetricsServer(self.render, lambda: self.version, **server_options)

    def render(self, accept: str, accept_encoding: str) -> tuple[str, bytes, dict[str, str]]:
        raise NotImplementedError

    def changed(self) -> int:
        with self.lock:
            self.version += 1
            return self.version

    def start(self) -> "Engine":
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()


def wait_for_scrapes(engines: Iterable[Engine], count: int = 2, timeout: float = 30.0) -> None:
    """Until every engine's current state was scraped `count` times."""
    engines = list(engines)
    deadline = time.monotonic() + timeout
    while True:
        lagging = [
            (type(e).__name__, e.version, e.server.scrapes_of(e.version))
            for e in engines
            if e.server.scrapes_of(e.version) < count
        ]
        if not lagging:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"not scraped {count}x within {timeout}s (engine, version, scrapes): {lagging}")
        time.sleep(0.05)


# --- prometheus_client engines (vLLM, SGLang) --------------------------------


def _wsgi_render(registry: object, accept: str, accept_encoding: str) -> tuple[str, bytes, dict[str, str]]:
    """Runs prometheus_client's own WSGI app (the code vLLM's and SGLang's
    ASGI apps share: format negotiation, gzip) for one request."""
    app = prometheus_client.make_wsgi_app(registry)  # type: ignore[arg-type]
    captured: dict[str, object] = {}

    def start_response(status: str, headers: list[tuple[str, str]]) -> None:
        captured["status"], captured["headers"] = status, headers

    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": "/metrics",
        "QUERY_STRING": "",
        "HTTP_ACCEPT": accept,
        "HTTP_ACCEPT_ENCODING": accept_encoding,
    }
    body = b"".join(app(environ, start_response))
    headers = dict(captured["headers"])  # type: ignore[arg-type]
    content_type = headers.pop("Content-Type")
    return content_type, body, headers


class ProcessStart:
    """`process_start_time_seconds`, as prometheus_client's process collector
    reports it for the engine's process (not the test's)."""

    def __init__(self, started: float) -> None:
        self.started = started

    def collect(self) -> Iterable[GaugeMetricFamily]:
        yield GaugeMetricFamily(
            "process_start_time_seconds", "Start time of the process since unix epoch in seconds.", value=self.started
        )


@dataclass(frozen=True)
class Request:
    """One finished request as an engine accounts for it."""

    prompt_tokens: int
    output_tokens: int
    queue_seconds: float
    ttft_seconds: float
    itl_seconds: float
    finished_reason: str = "stop"

    @property
    def e2e_seconds(self) -> float:
        return self.queue_seconds + self.ttft_seconds + self.itl_seconds * (self.output_tokens - 1)


class Vllm(Engine):
    """vLLM's PrometheusStatLogger for one engine core (engine="0"). A
    restart builds a new process: every counter and histogram starts from 0
    with a new `_created` and a new process start time."""

    kind = "vllm"
    FINISH_REASONS = ("stop", "length", "abort", "error")

    def __init__(self, model: str, started: float) -> None:
        self.model = model
        # Every process's start time, in order (a restart adds one).
        self.starts: list[float] = []
        super().__init__()
        self._build(started)

    def _build(self, started: float) -> None:
        self.starts.append(started)
        registry = CollectorRegistry(auto_describe=True)
        labels = ["model_name", "engine"]
        values = (self.model, "0")

        def gauge(name: str, doc: str) -> Gauge:
            return Gauge(name, doc, labels, registry=registry).labels(*values)

        def counter(name: str, doc: str) -> Counter:
            return Counter(name, doc, labels, registry=registry).labels(*values)

        def histogram(name: str, doc: str, buckets: Sequence[float]) -> Histogram:
            return Histogram(name, doc, labels, buckets=buckets, registry=registry).labels(*values)

        self.running = gauge("vllm:num_requests_running", "Number of requests in model execution batches.")
        self.waiting = gauge("vllm:num_requests_waiting", "Number of requests waiting to be processed.")
        self.kv_cache = gauge("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.")
        self.prefix_queries = counter(
            "vllm:prefix_cache_queries", "Prefix cache queries, in terms of number of queried tokens."
        )
        self.prefix_hits = counter("vllm:prefix_cache_hits", "Prefix cache hits, in terms of number of cached tokens.")
        self.preemptions = counter("vllm:num_preemptions", "Cumulative number of preemption from the engine.")
        self.prompt_tokens = counter("vllm:prompt_tokens", "Number of prefill tokens processed.")
        self.generation_tokens = counter("vllm:generation_tokens", "Number of generation tokens processed.")
        success = Counter(
            "vllm:request_success", "Count of successfully processed requests.", labels + ["finished_reason"],
            registry=registry,
        )
        # vLLM creates every reason's child up front, so all four series exist from the start.
        self.success = {reason: success.labels(*values, reason) for reason in self.FINISH_REASONS}
        self.ttft = histogram(
            "vllm:time_to_first_token_seconds", "Histogram of time to first token in seconds.", VLLM_TTFT_BUCKETS
        )
        self.itl = histogram(
            "vllm:inter_token_latency_seconds", "Histogram of inter-token latency in seconds.", VLLM_ITL_BUCKETS
        )
        self.e2e = histogram(
            "vllm:e2e_request_latency_seconds", "Histogram of e2e request latency in seconds.",
            VLLM_REQUEST_LATENCY_BUCKETS,
        )
        self.queue = histogram(
            "vllm:request_queue_time_seconds", "Histogram of time spent in WAITING phase for request.",
            VLLM_REQUEST_LATENCY_BUCKETS,
        )
        # prometheus_client stamps `_created` when a child is made, which in
        # vLLM is at engine start; these children stand for an engine that
        # started at `started`.
        for child in (self.prefix_queries, self.prefix_hits, self.preemptions, self.prompt_tokens,
                      self.generation_tokens, *self.success.values(), self.ttft, self.itl, self.e2e, self.queue):
            child._created = started
        registry.register(ProcessStart(started))
        self.registry = registry

    def restart(self, started: float) -> None:
        """A new engine process on the same pod and port: all state from zero."""
        with self.lock:
            self._build(started)
            self.version += 1

    def serve(self, requests: Iterable[Request]) -> None:
        with self.lock:
            for r in requests:
                self.prompt_tokens.inc(r.prompt_tokens)
                self.generation_tokens.inc(r.output_tokens)
                self.prefix_queries.inc(r.prompt_tokens)
                self.prefix_hits.inc(r.prompt_tokens // 4)
                self.success[r.finished_reason].inc()
                self.ttft.observe(r.ttft_seconds)
                for _ in range(r.output_tokens - 1):
                    self.itl.observe(r.itl_seconds)
                self.e2e.observe(r.e2e_seconds)
                self.queue.observe(r.queue_seconds)
            self.version += 1

    def render(self, accept: str, accept_encoding: str) -> tuple[str, bytes, dict[str, str]]:
        return _wsgi_render(self.registry, accept, accept_encoding)

    def sample(self, name: str, **labels: str) -> float:
        value = self.registry.get_sample_value(name, {"model_name": self.model, "engine": "0", **labels})
        assert value is not None, f"{name}{labels} is not exposed"
        return value


class _MultiprocessView:
    """What prometheus_client's MultiProcessCollector serves: the same
    families read back from the per-process files, documented as
    "Multiprocess metric" and without `_created` samples."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterable[object]:
        for metric in self.registry.collect():
            if metric.name == "process_start_time_seconds":
                yield metric
                continue
            metric.documentation = "Multiprocess metric"
            metric.samples = [s for s in metric.samples if not s.name.endswith("_created")]
            yield metric


class Sglang(Engine):
    """SGLang's TokenizerMetricsCollector and SchedulerMetricsCollector with
    their default labels (model_name, engine_type; the scheduler adds the
    parallel ranks)."""

    kind = "sglang"

    def __init__(self, model: str, started: float) -> None:
        self.model = model
        self.started = started
        super().__init__()
        registry = CollectorRegistry(auto_describe=True)
        tokenizer_labels = {"model_name": model, "engine_type": "unified"}
        scheduler_labels = {**tokenizer_labels, "tp_rank": "0", "pp_rank": "0"}

        def counter(name: str, doc: str) -> Counter:
            return Counter(name, doc, list(tokenizer_labels), registry=registry).labels(**tokenizer_labels)

        def histogram(name: str, doc: str, buckets: Sequence[float]) -> Histogram:
            return Histogram(name, doc, list(tokenizer_labels), buckets=buckets, registry=registry).labels(
                **tokenizer_labels
            )

        def gauge(name: str, doc: str) -> Gauge:
            return Gauge(name, doc, list(scheduler_labels), registry=registry, multiprocess_mode="mostrecent").labels(
                **scheduler_labels
            )

        self.running = gauge("sglang:num_running_reqs", "The number of running requests.")
        self.queued = gauge("sglang:num_queue_reqs", "The number of requests in the waiting queue.")
        self.token_usage = gauge("sglang:token_usage", "The token usage.")
        self.prompt_tokens = counter("sglang:prompt_tokens_total", "Number of prefill tokens processed.")
        self.generation_tokens = counter("sglang:generation_tokens_total", "Number of generation tokens processed.")
        self.cached_tokens = counter("sglang:cached_tokens_total", "Number of cached prompt tokens.")
        self.requests = counter("sglang:num_requests_total", "Number of requests processed.")
        self.aborted = counter("sglang:num_aborted_requests_total", "Number of requests aborted.")
        self.ttft = histogram(
            "sglang:time_to_first_token_seconds", "Histogram of time to first token in seconds.", SGLANG_TTFT_BUCKETS
        )
        self.itl = histogram(
            "sglang:inter_token_latency_seconds", "Histogram of inter-token latency in seconds.", SGLANG_ITL_BUCKETS
        )
        self.e2e = histogram(
            "sglang:e2e_request_latency_seconds", "Histogram of End-to-end request latency in seconds",
            SGLANG_E2E_BUCKETS,
        )
        registry.register(ProcessStart(started))
        self.registry = registry
        self._view = _MultiprocessView(registry)

    def serve(self, requests: Iterable[Request], cached_tokens: int = 0) -> None:
        with self.lock:
            for r in requests:
                self.prompt_tokens.inc(r.prompt_tokens)
                self.generation_tokens.inc(r.output_tokens)
                self.requests.inc()
                self.ttft.observe(r.ttft_seconds)
                for _ in range(r.output_tokens - 1):
                    self.itl.observe(r.itl_seconds)
                self.e2e.observe(r.e2e_seconds)
            self.cached_tokens.inc(cached_tokens)
            self.version += 1

    def render(self, accept: str, accept_encoding: str) -> tuple[str, bytes, dict[str, str]]:
        return _wsgi_render(self._view, accept, accept_encoding)

    def sample(self, name: str, **labels: str) -> float:
        value = self.registry.get_sample_value(name, {"model_name": self.model, "engine_type": "unified", **labels})
        assert value is not None, f"{name}{labels} is not exposed"
        return value


# --- hand-written exposition (llama.cpp, DCGM) -------------------------------


class LlamaCpp(Engine):
    """llama-server's `/metrics`. Totals are kept below 10^6: the server
    prints them with six significant digits, so larger ones lose precision
    on the wire (an upstream limit, not something the agent can recover)."""

    kind = "llamacpp"

    def __init__(self, started: float) -> None:
        super().__init__()
        self.started = started
        self.prompt_tokens_total = 0
        self.prompt_ms_total = 0
        self.tokens_predicted_total = 0
        self.predicted_ms_total = 0
        self.n_decode_total = 0
        self.n_busy_slots_total = 0
        self.n_tokens_max = 0
        self.requests_processing = 0
        self.requests_deferred = 0

    def serve(self, requests: Iterable[Request]) -> None:
        with self.lock:
            for r in requests:
                self.prompt_tokens_total += r.prompt_tokens
                self.prompt_ms_total += round(r.ttft_seconds * 1000)
                self.tokens_predicted_total += r.output_tokens
                self.predicted_ms_total += round(r.itl_seconds * 1000 * (r.output_tokens - 1))
                self.n_decode_total += r.output_tokens
                self.n_busy_slots_total += r.output_tokens
                self.n_tokens_max = max(self.n_tokens_max, r.prompt_tokens + r.output_tokens)
            self.version += 1

    def set_load(self, processing: int, deferred: int) -> None:
        with self.lock:
            self.requests_processing, self.requests_deferred = processing, deferred
            self.version += 1

    def render(self, accept: str, accept_encoding: str) -> tuple[str, bytes, dict[str, str]]:
        # nlohmann::json orders the object's keys, so "counter" comes before "gauge".
        counters = [
            ("prompt_tokens_total", "Number of prompt tokens processed.", self.prompt_tokens_total),
            ("prompt_seconds_total", "Prompt process time", self.prompt_ms_total / 1e3),
            ("tokens_predicted_total", "Number of generation tokens processed.", self.tokens_predicted_total),
            ("tokens_predicted_seconds_total", "Predict process time", self.predicted_ms_total / 1e3),
            ("n_decode_total", "Total number of llama_decode() calls", self.n_decode_total),
            ("n_tokens_max", "Largest observed n_tokens.", self.n_tokens_max),
            (
                "n_busy_slots_per_decode",
                "Average number of busy slots per llama_decode() call",
                self.n_busy_slots_total / max(self.n_decode_total, 1),
            ),
        ]
        gauges = [
            ("prompt_tokens_seconds", "Average prompt throughput in tokens/s.", 0.0),
            ("predicted_tokens_seconds", "Average generation throughput in tokens/s.", 0.0),
            ("requests_processing", "Number of requests processing.", self.requests_processing),
            ("requests_deferred", "Number of requests deferred.", self.requests_deferred),
        ]
        lines = []
        for kind, metrics in (("counter", counters), ("gauge", gauges)):
            for name, help_text, value in metrics:
                lines += [
                    f"# HELP llamacpp:{name} {help_text}",
                    f"# TYPE llamacpp:{name} {kind}",
                    f"llamacpp:{name} {cpp_stream(float(value))}",
                ]
        body = ("\n".join(lines) + "\n").encode()
        return "text/plain; version=0.0.4", body, {"Process-Start-Time-Unix": str(int(self.started))}


@dataclass
class Gpu:
    index: int
    uuid: str
    pci_bus_id: str
    model_name: str
    utilization: int = 0
    fb_used_mib: int = 0
    fb_free_mib: int = 0
    power_watts: float = 0.0
    last_xid: int = 0
    consumer: tuple[str, str, str] | None = None  # (container, namespace, pod)


class Dcgm(Engine):
    """dcgm-exporter with its default counters and Kubernetes pod mapping."""

    kind = "dcgm"
    FIELDS = (
        # (field, help, attribute, printf): DCGM's integer fields print with %d, doubles with %f.
        ("DCGM_FI_DEV_GPU_UTIL", "GPU utilization (in %).", "utilization", "%d"),
        ("DCGM_FI_DEV_FB_FREE", "Framebuffer memory free (in MiB).", "fb_free_mib", "%d"),
        ("DCGM_FI_DEV_FB_USED", "Framebuffer memory used (in MiB).", "fb_used_mib", "%d"),
        ("DCGM_FI_DEV_POWER_USAGE", "Power draw (in W).", "power_watts", "%f"),
        ("DCGM_FI_DEV_XID_ERRORS", "Value of the last XID error encountered.", "last_xid", "%d"),
        ("DCGM_FI_DEV_SM_CLOCK", "SM clock frequency (in MHz).", None, "%d"),
    )

    def __init__(self, hostname: str, driver: str, gpus: list[Gpu]) -> None:
        super().__init__()
        self.hostname = hostname
        self.driver = driver
        self.gpus = gpus

    def update(self, index: int, **values: object) -> None:
        with self.lock:
            gpu = self.gpus[index]
            for key, value in values.items():
                setattr(gpu, key, value)
            self.version += 1

    def render(self, accept: str, accept_encoding: str) -> tuple[str, bytes, dict[str, str]]:
        out = []
        for name, help_text, attribute, printf in self.FIELDS:
            out.append(f"# HELP {name} {help_text}\n# TYPE {name} gauge")
            for gpu in self.gpus:
                value = getattr(gpu, attribute) if attribute else 1980
                labels = (
                    f'gpu="{gpu.index}",UUID="{gpu.uuid}",pci_bus_id="{gpu.pci_bus_id}",device="nvidia{gpu.index}",'
                    f'modelName="{gpu.model_name}",Hostname="{self.hostname}",DCGM_FI_DRIVER_VERSION="{self.driver}"'
                )
                if gpu.consumer is not None:
                    container, namespace, pod = gpu.consumer
                    labels += f',container="{container}",namespace="{namespace}",pod="{pod}"'
                out.append(f"\n{name}{{{labels}}} {printf % value}")
            out.append("\n")
        return "text/plain; version=0.0.4; charset=utf-8", "".join(out).encode(), {}


# --- client_golang (llm-d EPP) -----------------------------------------------


class GoHistogram:
    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(bounds) + 1)
        self.sum = 0.0

    def observe(self, value: float) -> None:
        index = next((i for i, b in enumerate(self.bounds) if value <= b), len(self.bounds))
        self.counts[index] += 1
        self.sum += value

    @property
    def count(self) -> int:
        return sum(self.counts)

    def cumulative(self) -> list[int]:
        running, out = 0, []
        for c in self.counts:
            running += c
            out.append(running)
        return out


def _go_labels(labels: dict[str, str], extra: tuple[str, str] | None = None) -> str:
    pairs = [f'{k}="{v}"' for k, v in sorted(labels.items())]
    if extra is not None:
        pairs.append(f'{extra[0]}="{extra[1]}"')
    return "{" + ",".join(pairs) + "}" if pairs else ""


@dataclass
class EppRoute:
    """One (model alias, target model, fairness id) the EPP has routed."""

    model_name: str
    target_model_name: str
    fairness_id: str
    requests: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    running: int = 0
    duration: GoHistogram = field(default_factory=lambda: GoHistogram(EPP_LATENCY_BUCKETS))
    ttft: GoHistogram = field(default_factory=lambda: GoHistogram(EPP_TTFT_BUCKETS))
    input_tokens: GoHistogram = field(default_factory=lambda: GoHistogram(EPP_INPUT_TOKEN_BUCKETS))
    output_tokens: GoHistogram = field(default_factory=lambda: GoHistogram(EPP_OUTPUT_TOKEN_BUCKETS))

    def labels(self) -> dict[str, str]:
        return {
            "model_name": self.model_name,
            "target_model_name": self.target_model_name,
            "fairness_id": self.fairness_id,
            "priority": "0",
        }


class Epp(Engine):
    """The llm-d endpoint picker's current (`llm_d_epp_`) families for one
    InferencePool, behind controller-runtime's secured metrics endpoint,
    with the process collector controller-runtime registers on it
    (`process_start_time_seconds`)."""

    kind = "epp"

    def __init__(self, pool: str, routes: list[EppRoute], tls: ssl.SSLContext, bearer_token: str,
                 started: float) -> None:
        super().__init__(tls=tls, bearer_token=bearer_token)
        self.started = started
        self.pool = pool
        self.routes = routes
        self.average_kv_cache = 0.0
        self.average_queue = 0.0
        self.ready_endpoints = 0
        self.queue_by_endpoint: dict[str, int] = {}

    def serve(self, route: EppRoute, requests: Iterable[Request], error_code: str | None = None) -> None:
        with self.lock:
            for r in requests:
                route.requests += 1
                if error_code is not None:
                    route.errors[error_code] = route.errors.get(error_code, 0) + 1
                route.duration.observe(r.e2e_seconds)
                route.ttft.observe(r.queue_seconds + r.ttft_seconds)
                route.input_tokens.observe(r.prompt_tokens)
                route.output_tokens.observe(r.output_tokens)
            self.version += 1

    def set_pool(self, *, kv_cache: float, queue: dict[str, int], ready: int) -> None:
        with self.lock:
            self.average_kv_cache = kv_cache
            self.queue_by_endpoint = dict(queue)
            self.average_queue = sum(queue.values()) / max(len(queue), 1)
            self.ready_endpoints = ready
            self.version += 1

    def render(self, accept: str, accept_encoding: str) -> tuple[str, bytes, dict[str, str]]:
        families: dict[str, tuple[str, str, list[str]]] = {}

        def family(name: str, kind: str, help_text: str) -> list[str]:
            return families.setdefault(name, (kind, f"[ALPHA] {help_text}", []))[2]

        pool = {"name": self.pool}
        family("llm_d_epp_average_kv_cache_utilization", "gauge",
               "The average kv cache utilization for an inference server pool.").append(
            f"llm_d_epp_average_kv_cache_utilization{_go_labels(pool)} {go_float(self.average_kv_cache)}")
        family("llm_d_epp_average_queue_size", "gauge",
               "The average number of requests pending in the model server queue.").append(
            f"llm_d_epp_average_queue_size{_go_labels(pool)} {go_float(self.average_queue)}")
        family("llm_d_epp_ready_endpoints", "gauge", "The number of ready endpoints in the inference server pool.").append(
            f"llm_d_epp_ready_endpoints{_go_labels(pool)} {go_float(self.ready_endpoints)}")
        per_endpoint = family("llm_d_epp_per_endpoint_queue_size", "gauge",
                              "The total number of requests pending in the model server queue for each underlying endpoint.")
        for endpoint, size in sorted(self.queue_by_endpoint.items()):
            per_endpoint.append(
                f"llm_d_epp_per_endpoint_queue_size{_go_labels({**pool, 'model_server_endpoint': endpoint})} {go_float(size)}")
        for route in self.routes:
            labels = route.labels()
            family("llm_d_epp_request_total", "counter", "Total number of processed requests.").append(
                f"llm_d_epp_request_total{_go_labels(labels)} {go_float(route.requests)}")
            errors = family("llm_d_epp_request_error_total", "counter", "Total number of request errors.")
            for code, n in sorted(route.errors.items()):
                errors.append(f"llm_d_epp_request_error_total{_go_labels({**labels, 'error_code': code})} {go_float(n)}")
            family("llm_d_epp_request_running", "gauge", "Current number of active running requests.").append(
                f"llm_d_epp_request_running{_go_labels(labels)} {go_float(route.running)}")
            histograms = (
                ("llm_d_epp_request_duration_seconds", "End-to-end request latency distribution in seconds.",
                 route.duration, labels),
                ("llm_d_epp_request_ttft_seconds",
                 "Time to first token in seconds, measured from request received to first response byte. "
                 "For non-streaming requests, this equals total request duration.",
                 route.ttft, {**labels, "streaming": "true"}),
                ("llm_d_epp_request_input_tokens", "Input token count distribution per request.",
                 route.input_tokens, labels),
                ("llm_d_epp_request_output_tokens", "Output token count distribution per request.",
                 route.output_tokens, labels),
            )
            for name, help_text, histogram, series in histograms:
                lines = family(name, "histogram", help_text)
                for bound, cumulative in zip((*histogram.bounds, math.inf), histogram.cumulative()):
                    lines.append(f"{name}_bucket{_go_labels(series, ('le', go_float(bound)))} {cumulative}")
                lines.append(f"{name}_sum{_go_labels(series)} {go_float(histogram.sum)}")
                lines.append(f"{name}_count{_go_labels(series)} {histogram.count}")
        out = []
        family("process_start_time_seconds", "gauge", "Start time of the process since unix epoch in seconds.").append(
            f"process_start_time_seconds {go_float(self.started)}")
        for name in sorted(families):  # the registry's Gather sorts families by name
            kind, help_text, lines = families[name]
            if not lines:
                continue
            out += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", *lines]
        return "text/plain; version=0.0.4; charset=utf-8", ("\n".join(out) + "\n").encode(), {}


def self_signed_tls(directory: Path) -> ssl.SSLContext:
    """A server context with a throwaway certificate, as the EPP generates
    one for itself when no certificate is mounted."""
    from function.certs import issue, make_ca

    ca = make_ca("epp-self-signed")
    pair = issue(ca, "epp", server=True)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "tls.crt").write_bytes(pair.cert_pem)
    (directory / "tls.key").write_bytes(pair.key_pem)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(directory / "tls.crt", directory / "tls.key")
    return context
