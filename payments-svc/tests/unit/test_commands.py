import pytest
from billing_runtime.errors import ProblemError
from billing_runtime.validation import parse
from payments_svc.domain.commands import PaymentCreate

BASE = {"amount": 5000, "currency": "USD", "order_id": "o-1"}


class TestPaymentCreate:
    def test_minimal_body_gets_defaults(self) -> None:
        cmd = parse(PaymentCreate, dict(BASE))
        assert cmd.expires_in == 1800
        assert cmd.metadata == {}
        assert cmd.providers is None

    @pytest.mark.parametrize(
        ("patch", "field"),
        [
            ({"amount": 50.0}, "amount"),
            ({"amount": "5000"}, "amount"),
            ({"amount": True}, "amount"),
            ({"currency": "usd"}, "currency"),
            ({"order_id": ""}, "order_id"),
            ({"order_id": "x" * 129}, "order_id"),
            ({"order_id": "a\x00b"}, "order_id"),
            ({"return_url": "javascript:alert(1)"}, "return_url"),
            ({"return_url": "ftp://x.example"}, "return_url"),
            ({"metadata": {str(i): "v" for i in range(21)}}, "metadata"),
            ({"metadata": {"k": "v" * 501}}, "metadata.k"),
            ({"metadata": {"k": 1}}, "metadata.k"),
            ({"expires_in": 59}, "expires_in"),
            ({"expires_in": 86401}, "expires_in"),
            ({"providers": []}, "providers"),
            ({"providers": ["Bad Name"]}, "providers.0"),
            ({"customer": {"email": "not-an-email"}}, "customer.email"),
            ({"customer": {"ssn": "1"}}, "customer.ssn"),
            ({"surprise": 1}, "surprise"),
        ],
    )
    def test_invalid_field_is_named(self, patch: dict[str, object], field: str) -> None:
        with pytest.raises(ProblemError) as exc:
            parse(PaymentCreate, {**BASE, **patch})
        assert exc.value.status == 422
        assert field in [e.field for e in exc.value.errors or []]
