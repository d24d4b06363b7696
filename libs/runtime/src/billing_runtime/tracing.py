"""W3C trace context (``traceparent``) across every hop of a payment: HTTP calls between our services and
events on the bus (through the outbox), so one payment's path can be followed across services by its
trace id (in the logs always, in a tracing backend when one is configured).

Two modes, chosen once per process by ``configure_tracing``:

- **not configured** (the default): nothing is recorded or exported. ``span`` still carries the trace
  on: it keeps the caller's trace id (or starts a new one) with a fresh span id, as a non-recording
  span of the OpenTelemetry API. A few microseconds per request, no SDK needed.
- **exporting**: ``OTEL_EXPORTER_OTLP_ENDPOINT`` (or ``..._TRACES_ENDPOINT``) is set and the SDK with
  its OTLP/HTTP exporter is installed (``billing-runtime[otlp]``): real spans, batched to that endpoint;
  the standard ``OTEL_*`` variables configure it (``OTEL_SERVICE_NAME``, headers, timeouts).

The tracer is this module's, not OpenTelemetry's global provider: a process (the embedded mode runs
every service in one) configures it once, and tests swap it (``use_tracer_provider``)."""

from __future__ import annotations

import contextlib
import logging
import os
import random
from collections.abc import Iterator, Mapping, MutableMapping

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.trace import (
    INVALID_SPAN_ID,
    INVALID_TRACE_ID,
    NonRecordingSpan,
    Span,
    SpanContext,
    SpanKind,
    TraceFlags,
    Tracer,
    TracerProvider,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

log = logging.getLogger(__name__)

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"

_propagator = TraceContextTextMapPropagator()
_tracer: Tracer | None = None


def configure_tracing(service_name: str, environ: Mapping[str, str] | None = None) -> bool:
    """Export spans over OTLP/HTTP when an endpoint is configured; True when spans are exported."""
    env = os.environ if environ is None else environ
    endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get("OTEL_EXPORTER_OTLP_ENDPOINT")
    if not endpoint or env.get("OTEL_SDK_DISABLED", "").lower() == "true":
        return False
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider as SdkTracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor
    except ImportError:
        log.warning(
            "OTEL_EXPORTER_OTLP_ENDPOINT is set but the OpenTelemetry SDK is not installed "
            "(install billing-runtime[otlp]); trace context is propagated, no spans are exported"
        )
        return False
    provider = SdkTracerProvider(resource=Resource.create({"service.name": env.get("OTEL_SERVICE_NAME", service_name)}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    use_tracer_provider(provider)
    log.info("exporting traces over OTLP/HTTP as %s", env.get("OTEL_SERVICE_NAME", service_name))
    return True


def use_tracer_provider(provider: TracerProvider | None) -> None:
    """Record spans with ``provider`` (None: back to propagation only)."""
    global _tracer
    _tracer = provider.get_tracer("billing_runtime") if provider is not None else None


def extract(carrier: Mapping[str, str]) -> Context:
    """The trace context a request or message carries (an empty context when it carries none or a
    malformed one: the span opened on it starts a new trace)."""
    return _propagator.extract(carrier, context=Context())


def inject(headers: MutableMapping[str, str]) -> None:
    """Add the current trace context (``traceparent``, ``tracestate``) to outgoing headers."""
    _propagator.inject(headers)


def with_trace(headers: dict[str, str]) -> dict[str, str]:
    """``headers`` with the current trace context added (the same dict)."""
    inject(headers)
    return headers


def current_traceparent() -> str | None:
    """The current ``traceparent`` (to keep with an outbox row), None outside any trace."""
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier.get(TRACEPARENT)


def current_ids() -> tuple[str, str] | None:
    """(trace id, span id) in hex of the current span, for log records; None outside any trace."""
    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return None
    return trace.format_trace_id(span_context.trace_id), trace.format_span_id(span_context.span_id)


@contextlib.contextmanager
def span(name: str, *, parent: Context | None = None, kind: SpanKind = SpanKind.INTERNAL) -> Iterator[Span]:
    """A span named ``name`` as the current one, child of ``parent`` (else of the current span): a real
    one when exporting, else a non-recording one that carries the trace id on."""
    if _tracer is not None:
        with _tracer.start_as_current_span(name, context=parent, kind=kind) as recording:
            yield recording
        return
    base = parent if parent is not None else otel_context.get_current()
    above = trace.get_current_span(base).get_span_context()
    if above.is_valid:
        trace_id, flags, state = above.trace_id, above.trace_flags, above.trace_state
    else:
        # A new trace, marked sampled: a downstream service that does export records its part of it.
        trace_id, flags, state = _new_id(128, INVALID_TRACE_ID), TraceFlags(TraceFlags.SAMPLED), None
    here = NonRecordingSpan(
        SpanContext(trace_id, _new_id(64, INVALID_SPAN_ID), is_remote=False, trace_flags=flags, trace_state=state)
    )
    token = otel_context.attach(trace.set_span_in_context(here, base))
    try:
        yield here
    finally:
        otel_context.detach(token)


def _new_id(bits: int, invalid: int) -> int:
    while True:
        value = random.getrandbits(bits)
        if value != invalid:
            return value
