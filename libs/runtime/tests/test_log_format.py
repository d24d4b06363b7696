"""The log formats: one JSON object per record with its context (request, tenant, payment, event) and
trace ids, or one line of text; both redacted; chosen by BILLING_LOG_FORMAT."""

import io
import json
import logging

from billing_runtime import tracing
from billing_runtime.log_context import bound, log_context
from billing_runtime.log_format import JsonFormatter, TextFormatter, configure_logging, log_format

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def _record(message: str, *args: object, exc: BaseException | None = None, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("billing.test", logging.INFO, __file__, 1, message, args, None)
    if exc is not None:
        record.exc_info = (type(exc), exc, exc.__traceback__)
    record.__dict__.update(extra)
    return record


class TestJson:
    def test_a_record_is_one_json_object_with_its_context_and_trace(self) -> None:
        with (
            tracing.span("test", parent=tracing.extract({"traceparent": TRACEPARENT})),
            bound(request_id="req_1", tenant_id="ten_1"),
            bound(payment_id="pay_1"),
        ):
            line = JsonFormatter().format(_record("moved %s to %s", "pay_1", "SUCCEEDED"))
        entry = json.loads(line)
        assert "\n" not in line
        assert entry["message"] == "moved pay_1 to SUCCEEDED"
        assert entry["level"] == "INFO"
        assert entry["logger"] == "billing.test"
        assert (entry["request_id"], entry["tenant_id"], entry["payment_id"]) == ("req_1", "ten_1", "pay_1")
        assert entry["trace_id"] == "0af7651916cd43dd8448eb211c80319c"
        assert len(entry["span_id"]) == 16
        assert entry["span_id"] != "b7ad6b7169203331"  # our own span, child of the caller's
        assert entry["ts"].endswith("+00:00")

    def test_extra_fields_name_the_record_and_win_over_the_context(self) -> None:
        with bound(event_id="evt_ctx"):
            entry = json.loads(JsonFormatter().format(_record("x", event_id="evt_extra", payment_id="pay_9")))
        assert (entry["event_id"], entry["payment_id"]) == ("evt_extra", "pay_9")

    def test_outside_any_request_there_is_no_context_and_no_trace(self) -> None:
        entry = json.loads(JsonFormatter().format(_record("idle")))
        assert not {"request_id", "tenant_id", "trace_id"} & entry.keys()

    def test_message_arguments_and_exceptions_are_redacted(self) -> None:
        try:
            raise ValueError("refused key sk_test_abcdefABCDEF0123")
        except ValueError as exc:
            line = JsonFormatter().format(_record("secret=%s", "s3cr3t-value", exc=exc))
        assert "s3cr3t-value" not in line
        assert "abcdefABCDEF0123" not in line
        entry = json.loads(line)
        assert "ValueError" in entry["exc"]


class TestText:
    def test_one_line_with_the_context_and_trace_id_redacted(self) -> None:
        with tracing.span("test", parent=tracing.extract({"traceparent": TRACEPARENT})), bound(request_id="req_7"):
            line = TextFormatter().format(_record("token=%s", "abc"))
        assert "token=[REDACTED]" in line
        assert "request_id=req_7" in line
        assert "trace_id=0af7651916cd43dd8448eb211c80319c" in line


class TestChoice:
    def test_the_environment_overrides_the_default(self) -> None:
        assert log_format("json", {}) == "json"
        assert log_format("text", {}) == "text"
        assert log_format("json", {"BILLING_LOG_FORMAT": "TEXT"}) == "text"
        assert log_format("text", {"BILLING_LOG_FORMAT": "json"}) == "json"
        assert log_format("text", {"BILLING_LOG_FORMAT": "xml"}) == "text"

    def test_configure_logging_installs_one_handler_with_the_format(self, monkeypatch) -> None:
        root = logging.getLogger()
        saved = (root.handlers[:], root.level)
        stream = io.StringIO()
        monkeypatch.setattr("sys.stderr", stream)
        monkeypatch.setenv("BILLING_LOG_FORMAT", "json")
        try:
            configure_logging("DEBUG", default_format="text")
            ours = [h for h in root.handlers if isinstance(h.formatter, JsonFormatter)]
            assert len(ours) == 1
            assert root.level == logging.DEBUG
            logging.getLogger("billing.test").debug("hello %s", "world")
            assert json.loads(stream.getvalue().splitlines()[-1])["message"] == "hello world"
            # The AMQP client's frame dumps (event bodies) stay out even at DEBUG.
            assert not logging.getLogger("aiormq.connection").isEnabledFor(logging.DEBUG)
        finally:
            root.handlers[:] = saved[0]
            root.setLevel(saved[1])
            for name in ("aiormq", "aio_pika"):
                logging.getLogger(name).setLevel(logging.NOTSET)


def test_bound_fields_are_restored_after_the_scope() -> None:
    with bound(request_id="req_a"):
        with bound(request_id="req_b", tenant_id=None):
            assert log_context() == {"request_id": "req_b"}
        assert log_context() == {"request_id": "req_a"}
    assert log_context() == {}
