import pytest
from billing_runtime.bus import topic_matches


@pytest.mark.parametrize(
    ("pattern", "key", "expected"),
    [
        ("payments.#", "payments.payment.created.v1", True),
        ("#", "a.b.c", True),
        ("a.#", "a", True),
        ("*.payment.*.v1", "payments.payment.created.v1", True),
        ("providers.#", "payments.payment.created.v1", False),
        ("a.#.z", "a.z", True),
        ("a.#.z", "a.b.c.z", True),
        ("a.#.z", "a.b", False),
        ("a.*", "a", False),
        ("a.*", "a.b.c", False),
    ],
)
def test_amqp_topic_semantics(pattern: str, key: str, expected: bool) -> None:
    assert topic_matches(pattern, key) is expected
