"""The invoice as a PDF (reportlab).

Japanese text is set in the TrueType font of ``INVOICE_PDF_FONT`` (Debian's
fonts-ipaexfont-gothic by default), embedded as a subset so that every reader shows it.
Without that file, it falls back to a CID font that is not embedded: Acrobat and most
viewers with Japanese fonts show it, minimal ones (poppler without fonts) do not.
"""

import io
from pathlib import Path

from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext as _
from reportlab.lib.pagesizes import A4
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen import canvas

from subscriptions.models import Invoice


def _register_font() -> str:
    path = Path(settings.INVOICE_PDF_FONT)
    if path.is_file():
        pdfmetrics.registerFont(TTFont("InvoiceJapanese", str(path)))
        return "InvoiceJapanese"
    pdfmetrics.registerFont(UnicodeCIDFont("HeiseiKakuGo-W5"))
    return "HeiseiKakuGo-W5"


FONT = _register_font()


def _yen(amount: int) -> str:
    return f"¥{amount:,}"


def render_invoice_pdf(invoice: Invoice, *, language: str = "ja") -> bytes:
    buffer = io.BytesIO()
    with translation.override(language):
        pdf = canvas.Canvas(buffer, pagesize=A4)
        pdf.setTitle(invoice.display_number)
        width, height = A4
        left, y = 20 * mm, height - 25 * mm

        def line(text: str, size: int = 10, x: float = left, step: float = 6 * mm) -> None:
            nonlocal y
            pdf.setFont(FONT, size)
            pdf.drawString(x, y, text)
            y -= step

        title = _("Credit note") if invoice.kind == Invoice.Kind.CREDIT_NOTE else _("Invoice")
        line(title, 18, step=10 * mm)
        line(f"{_('number')}: {invoice.display_number}")
        line(f"{_('issued on')}: {invoice.issued_on.isoformat()}")
        if invoice.kind == Invoice.Kind.INVOICE:
            line(f"{_('due on')}: {invoice.due_on.isoformat()}")
        if invoice.credits_id:
            line(f"{_('cancels invoice')}: {invoice.credits.display_number}")
        y -= 4 * mm
        line(_("%(customer)s (customer)") % {"customer": invoice.customer.name}, 12)
        y -= 4 * mm
        line(f"{_('issuer')}: {invoice.issuer_name}")
        line(f"{_('registration number')}: {invoice.issuer_registration_number}")
        line(settings.INVOICE_ISSUER_ADDRESS, step=10 * mm)

        line(_("description"), 9)
        pdf.drawRightString(width - 20 * mm, y + 6 * mm, _("amount (yen, before tax)"))
        for item in invoice.lines.all():
            line(f"{item.description} ({item.tax_rate_percent}%)", 9)
            pdf.drawRightString(width - 20 * mm, y + 6 * mm, _yen(item.amount_yen))
        y -= 4 * mm
        rate = invoice.tax_rate_percent
        for label, amount in [
            (_("Subtotal at %(rate)s%%") % {"rate": rate}, invoice.subtotal_yen),
            (_("Consumption tax at %(rate)s%%") % {"rate": rate}, invoice.tax_yen),
            (_("Total"), invoice.total_yen),
        ]:
            line(label, 11)
            pdf.drawRightString(width - 20 * mm, y + 6 * mm, _yen(amount))
        if invoice.kind == Invoice.Kind.INVOICE and invoice.status == Invoice.Status.ISSUED:
            y -= 6 * mm
            line(_("Please pay in one bank transfer to:"), 10)
            line(settings.INVOICE_BANK_ACCOUNT, 10)
        pdf.showPage()
        pdf.save()
    return buffer.getvalue()
