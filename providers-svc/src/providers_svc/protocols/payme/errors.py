"""Payme's error codes (PROTOCOLS.md §2.4) with their localized messages, and the exception that carries one.

Payme shows ``message`` to people (the payer's checkout form, the merchant cabinet), so every code has it in
Russian, Uzbek (Latin script) and English. Codes -31601..-31630 are Payme's own checkout-form errors, never
answered by a merchant, so they are not here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from types import MappingProxyType


@dataclass(frozen=True)
class LocalizedMessage:
    ru: str
    uz: str
    en: str

    def as_json(self) -> dict[str, str]:
        return {"ru": self.ru, "uz": self.uz, "en": self.en}


class PaymeErrorCode(IntEnum):
    METHOD_NOT_POST = -32300
    PARSE_ERROR = -32700
    INVALID_REQUEST = -32600
    METHOD_NOT_FOUND = -32601
    INSUFFICIENT_PRIVILEGE = -32504
    SYSTEM_ERROR = -32400
    RECEIPT_NOT_FOUND = -32001  # SetFiscalData only
    INVALID_AMOUNT = -31001
    TRANSACTION_NOT_FOUND = -31003
    CANNOT_CANCEL = -31007
    CANNOT_PERFORM = -31008
    # -31050..-31099 are the account-input errors; Payme leaves their meaning to the merchant.
    ORDER_NOT_FOUND = -31050
    ORDER_NOT_PAYABLE = -31051
    ORDER_AWAITING_PAYMENT = -31052

    @property
    def is_account_error(self) -> bool:
        return -31099 <= self.value <= -31050

    @property
    def message(self) -> LocalizedMessage:
        return _MESSAGES[self]


# Russian and Uzbek on purpose: the Cyrillic letters and Uzbek's U+02BB (the turned comma of o' and g', the
# official Latin-script letter) are text here, not look-alikes of ASCII.
# ruff: noqa: RUF001
_MESSAGES = MappingProxyType(
    {
        PaymeErrorCode.METHOD_NOT_POST: LocalizedMessage(
            ru="Метод запроса должен быть POST.",
            uz="Soʻrov usuli POST boʻlishi kerak.",
            en="The request method must be POST.",
        ),
        PaymeErrorCode.PARSE_ERROR: LocalizedMessage(
            ru="Ошибка разбора JSON.",
            uz="JSON ni tahlil qilishda xatolik.",
            en="JSON parse error.",
        ),
        PaymeErrorCode.INVALID_REQUEST: LocalizedMessage(
            ru="В RPC-запросе отсутствуют обязательные поля или тип полей не соответствует спецификации.",
            uz="RPC soʻrovida majburiy maydonlar yoʻq yoki ularning turi spetsifikatsiyaga mos emas.",
            en="Required RPC fields are missing or have the wrong type.",
        ),
        PaymeErrorCode.METHOD_NOT_FOUND: LocalizedMessage(
            ru="Запрашиваемый метод не найден.",
            uz="Soʻralgan metod topilmadi.",
            en="Method not found.",
        ),
        PaymeErrorCode.INSUFFICIENT_PRIVILEGE: LocalizedMessage(
            ru="Недостаточно привилегий для выполнения метода.",
            uz="Metodni bajarish uchun huquqlar yetarli emas.",
            en="Insufficient privileges to perform this method.",
        ),
        PaymeErrorCode.SYSTEM_ERROR: LocalizedMessage(
            ru="Системная ошибка.",
            uz="Tizim xatosi.",
            en="Internal system error.",
        ),
        PaymeErrorCode.RECEIPT_NOT_FOUND: LocalizedMessage(
            ru="Чек не найден.",
            uz="Chek topilmadi.",
            en="Receipt not found.",
        ),
        PaymeErrorCode.INVALID_AMOUNT: LocalizedMessage(
            ru="Неверная сумма.",
            uz="Notoʻgʻri summa.",
            en="Incorrect amount.",
        ),
        PaymeErrorCode.TRANSACTION_NOT_FOUND: LocalizedMessage(
            ru="Транзакция не найдена.",
            uz="Tranzaksiya topilmadi.",
            en="Transaction not found.",
        ),
        PaymeErrorCode.CANNOT_CANCEL: LocalizedMessage(
            ru="Невозможно отменить транзакцию: товар или услуга уже предоставлены.",
            uz="Tranzaksiyani bekor qilib boʻlmaydi: mahsulot yoki xizmat allaqachon taqdim etilgan.",
            en="The transaction cannot be cancelled: the goods or service have already been delivered.",
        ),
        PaymeErrorCode.CANNOT_PERFORM: LocalizedMessage(
            ru="Невозможно выполнить операцию в текущем состоянии транзакции.",
            uz="Tranzaksiyaning joriy holatida amalni bajarib boʻlmaydi.",
            en="The operation is not possible in the transaction's current state.",
        ),
        PaymeErrorCode.ORDER_NOT_FOUND: LocalizedMessage(
            ru="Заказ не найден.",
            uz="Buyurtma topilmadi.",
            en="Order not found.",
        ),
        PaymeErrorCode.ORDER_NOT_PAYABLE: LocalizedMessage(
            ru="Заказ не может быть оплачен: он уже оплачен, отменён или просрочен.",
            uz="Buyurtmani toʻlab boʻlmaydi: u allaqachon toʻlangan, bekor qilingan yoki muddati oʻtgan.",
            en="The order cannot be paid: it is already paid, cancelled or expired.",
        ),
        PaymeErrorCode.ORDER_AWAITING_PAYMENT: LocalizedMessage(
            ru="Заказ ожидает оплаты по другой транзакции.",
            uz="Buyurtma boshqa tranzaksiya boʻyicha toʻlovni kutmoqda.",
            en="The order is awaiting payment in another transaction.",
        ),
    }
)


class PaymeError(Exception):
    """One JSON-RPC error answer. ``data`` names the offending ``account`` field for the account errors
    (-31050..-31099, where Payme requires it) and the method name for -32601."""

    def __init__(self, code: PaymeErrorCode, data: str | None = None) -> None:
        if code.is_account_error and not data:
            raise ValueError(f"Payme error {code.value} needs data: the name of the account field")
        super().__init__(f"Payme error {code.value}: {code.message.en}")
        self.code = code
        self.message = code.message
        self.data = data

    def as_json(self) -> dict[str, object]:
        body: dict[str, object] = {"code": int(self.code), "message": self.message.as_json()}
        if self.data is not None:
            body["data"] = self.data
        return body
