"""Data migration: the FAQ's extension offer and the invoice number sequence.

FAQ Q4: service can be extended from its expiry until December 2021, about ¥100,000 a
year, a static IP priced separately, the whole period prepaid. The static IP's price is
not in the FAQ: ¥24,000 a year here, for an operator to correct in the admin.
"""

from datetime import date

from django.db import migrations

OFFER = {
    "name": "IPSTAR BCP 延長(2021年12月まで)/ Extension until December 2021",
    "extends_until": date(2021, 12, 31),
    "annual_price_yen": 100_000,
    "static_ip_annual_price_yen": 24_000,
    "tax_rate_percent": 10,
    "opens_on": date(2016, 1, 1),
    "closes_on": date(2021, 12, 31),
}


def seed(apps, schema_editor):
    apps.get_model("subscriptions", "ExtensionOffer").objects.get_or_create(
        name=OFFER["name"], defaults=OFFER
    )
    apps.get_model("subscriptions", "InvoiceSequence").objects.get_or_create(name="invoice")


def unseed(apps, schema_editor):
    apps.get_model("subscriptions", "ExtensionOffer").objects.filter(name=OFFER["name"]).delete()
    apps.get_model("subscriptions", "InvoiceSequence").objects.filter(name="invoice").delete()


class Migration(migrations.Migration):
    dependencies = [("subscriptions", "0003_extensions_and_invoices")]

    operations = [migrations.RunPython(seed, unseed)]
