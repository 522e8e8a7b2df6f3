"""Phone numbers as one form: E.164 (``+81362790933``), whatever way they were typed.

Sites, customers and customer users store what people typed, and beside it this form,
indexed: a phone system's caller number is matched to customers with one equality.
"""

import phonenumbers

# Numbers written without a country code are Japanese: the portal's customers are.
DEFAULT_REGION = "JP"


def to_e164(raw: str | None) -> str | None:
    """``03-6279-0933``, ``0362790933`` and ``+81 3-6279-0933`` are ``+81362790933``.

    None for what is no number: empty, "anonymous", "unknown", a withheld caller ("非通知")
    or digits no country uses. Digits a phone system prefixes to reach the outside line
    are not guessed at: they would match the wrong customer.
    """
    raw = (raw or "").strip()
    if not raw or not any(ch.isdigit() for ch in raw):
        return None
    try:
        number = phonenumbers.parse(raw, DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def fill_e164(model, raw: str, e164: str, *, batch: int = 2000) -> None:
    """For data migrations: write the E.164 form of ``model``'s ``raw`` phones (rows saved
    before the form was kept, which save() fills from then on)."""
    rows = []
    for row in model.objects.exclude(**{raw: ""}).only("pk", raw).iterator(chunk_size=batch):
        setattr(row, e164, to_e164(getattr(row, raw)) or "")
        rows.append(row)
    model.objects.bulk_update(rows, [e164], batch_size=batch)
