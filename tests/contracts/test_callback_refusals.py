"""The gateway answers the provider callbacks it refuses itself as providers-svc answers the same cases
(a provider cannot tell which of the two refused it): the same Payme JSON-RPC errors and messages, the
same Click codes and notes. The gateway cannot import providers-svc, so the words are written twice;
this keeps the two from drifting apart."""

import json

import pytest
from gateway.callback_refusals import refusal
from providers_svc.protocols.click.answers import ClickError
from providers_svc.protocols.payme.errors import PaymeError, PaymeErrorCode


@pytest.mark.parametrize(
    ("status", "code"), [(413, PaymeErrorCode.INVALID_REQUEST), (503, PaymeErrorCode.SYSTEM_ERROR)]
)
def test_payme_refusals_are_providers_svcs_own(status: int, code: PaymeErrorCode) -> None:
    answer = refusal("/billing/payme", status, b'{"id": 7}', {})
    assert answer is not None and answer.status == 200
    assert answer.text is not None
    assert json.loads(answer.text)["error"] == PaymeError(code).as_json()


@pytest.mark.parametrize(("status", "code"), [(413, ClickError.BAD_REQUEST), (503, ClickError.FAILED_TO_UPDATE_USER)])
def test_click_refusals_are_providers_svcs_own(status: int, code: ClickError) -> None:
    answer = refusal("/billing/click/complete", status, b"click_trans_id=9&merchant_trans_id=p", {})
    assert answer is not None and answer.status == 200
    assert answer.text is not None
    body = json.loads(answer.text)
    assert (body["error"], body["error_note"]) == (int(code), code.note)
