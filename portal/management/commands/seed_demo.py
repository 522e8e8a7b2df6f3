"""Load the demo data of the embedded mode. Safe to run again: nothing is duplicated."""

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from portal.accounts.models import Role, User
from subscriptions.models import Customer, ExtensionOffer, Plan, Site, Subscription
from subscriptions.prefectures import Prefecture
from subscriptions.services import accept_quote, quote_extension, record_payment

TOKYO = ZoneInfo("Asia/Tokyo")

DEMO_PASSWORD = "bcp-demo-2026"


def _months_ago(months: int) -> date:
    """The first of the month ``months`` before this one: in-service demo lines stay in
    service whatever day the demo runs (expired ones keep their historic dates)."""
    today = timezone.localdate()
    index = today.year * 12 + today.month - 1 - months
    return date(index // 12, index % 12 + 1, 1)


def _expiring_in(days: int) -> date:
    """A start whose five-year term ends ``days`` from today."""
    end = timezone.localdate() + timedelta(days=days)
    return end.replace(year=end.year - 5, day=min(end.day, 28))


PLANS = [("BCP-128", 128, 2048), ("BCP-256", 256, 8192)]

# code, name, kind, sites: (name, prefecture, postal code, address, phone, subscriptions)
# subscriptions: (contract number, plan, service start, static IP)
CUSTOMERS = [
    (
        "C-0001",
        "秩父市役所",
        Customer.Kind.LOCAL_GOVERNMENT,
        [
            (
                "本庁舎",
                Prefecture.SAITAMA,
                "368-8686",
                "秩父市熊木町8-15",
                "0494-22-2211",
                [("CHI-2014-001", "BCP-256", date(2014, 4, 1), True)],
            ),
            (
                "吉田総合支所",
                Prefecture.SAITAMA,
                "369-1592",
                "秩父市下吉田6980",
                "0494-77-1111",
                [("CHI-2022-002", "BCP-128", _months_ago(41), False)],
            ),
        ],
    ),
    (
        "C-0002",
        "株式会社みやぎ港湾物流",
        Customer.Kind.BUSINESS,
        [
            (
                "仙台港倉庫",
                Prefecture.MIYAGI,
                "983-0001",
                "仙台市宮城野区港1-1-1",
                "022-555-0101",
                [
                    ("MYG-2015-001", "BCP-128", date(2015, 10, 1), False),
                    ("MYG-2021-002", "BCP-256", _expiring_in(40), True),
                ],
            ),
        ],
    ),
    (
        "C-0003",
        "土佐町役場",
        Customer.Kind.LOCAL_GOVERNMENT,
        [
            (
                "本庁舎",
                Prefecture.KOCHI,
                "781-3401",
                "土佐郡土佐町土居194",
                "0887-82-0480",
                [("TSA-2016-001", "BCP-128", date(2016, 12, 1), False)],
            ),
        ],
    ),
    (
        "C-0005",
        "株式会社ほっかいどう漁業",
        Customer.Kind.BUSINESS,
        [
            (
                "釧路事務所",
                Prefecture.HOKKAIDO,
                "085-0000",
                "釧路市大町1-1",
                "0154-55-0505",
                [("HKD-2020-001", "BCP-128", date(2020, 7, 1), False)],
            ),
        ],
    ),
    (
        "C-0004",
        "医療法人くまもと中央会",
        Customer.Kind.BUSINESS,
        [
            (
                "中央病院",
                Prefecture.KUMAMOTO,
                "860-0001",
                "熊本市中央区千葉城町1-1",
                "096-555-0202",
                [
                    ("KMM-2019-001", "BCP-256", date(2019, 8, 1), True),
                    ("KMM-2024-002", "BCP-256", _months_ago(28), True),
                ],
            ),
            (
                "阿蘇診療所",
                Prefecture.KUMAMOTO,
                "869-2612",
                "阿蘇市一の宮町宮地100",
                "0967-55-0303",
                [("KMM-2025-003", "BCP-128", _months_ago(19), False)],
            ),
        ],
    ),
]

# A later offer an operator published (and that has closed too), under which a line
# was extended beyond today; with the 2021 seed offer, the demo shows every state.
DEMO_OFFER = {
    "name": "IPSTAR BCP 延長(2027年3月まで)/ Extension until March 2027",
    "extends_until": date(2027, 3, 31),
    "annual_price_yen": 100_000,
    "static_ip_annual_price_yen": 24_000,
    "tax_rate_percent": 10,
    "opens_on": date(2024, 1, 1),
    "closes_on": date(2025, 12, 31),
}
# Paid extensions: contract, offer name, when it was quoted and paid.
EXTENSIONS = [
    (
        "TSA-2016-001",
        "IPSTAR BCP 延長(2021年12月まで)/ Extension until December 2021",
        datetime(2021, 11, 1, 10, tzinfo=TOKYO),
    ),
    ("KMM-2019-001", DEMO_OFFER["name"], datetime(2024, 7, 1, 10, tzinfo=TOKYO)),
]
CANCELLED = ["HKD-2020-001"]

# e-mail, full name, customer code or None, role
USERS = [
    ("chichibu@example.com", "秩父 太郎", "C-0001", Role.CUSTOMER),
    ("chichibu-yoshida@example.com", "吉田 花子", "C-0001", Role.CUSTOMER),
    ("miyagi@example.com", "港 一郎", "C-0002", Role.CUSTOMER),
    ("tosa@example.com", "土佐 次郎", "C-0003", Role.CUSTOMER),
    ("kumamoto@example.com", "阿蘇 三咲", "C-0004", Role.CUSTOMER),
    ("kushiro@example.com", "釧路 五郎", "C-0005", Role.CUSTOMER),
    ("support@example.com", "サポート 担当", None, Role.SUPPORT),
    ("operator@example.com", "運用 担当", None, Role.OPERATOR),
]


class Command(BaseCommand):
    help = "Load demo customers, sites, subscriptions and logins (idempotent)."

    def handle(self, *args, **options) -> None:
        if settings.PRODUCTION:
            raise CommandError(
                "seed_demo creates logins with a published password; not in production."
            )
        with transaction.atomic():
            self._seed()
        self.stdout.write(
            self.style.SUCCESS(f"Demo data ready. Logins (password for all: {DEMO_PASSWORD}):")
        )
        for email, _name, code, role in USERS:
            self.stdout.write(f"  {role.label:<9} {email}" + (f"  ({code})" if code else ""))
        self.stdout.write(f"  {'admin':<9} admin@example.com  (superuser)")

    def _seed(self) -> None:
        plans = {
            name: Plan.objects.update_or_create(
                name=name, defaults={"normal_kbps": normal, "upgraded_kbps": upgraded}
            )[0]
            for name, normal, upgraded in PLANS
        }
        customers = {}
        for code, name, kind, sites in CUSTOMERS:
            customer, _ = Customer.objects.update_or_create(
                code=code, defaults={"name": name, "kind": kind}
            )
            customers[code] = customer
            for site_name, prefecture, postal_code, address, phone, subscriptions in sites:
                site, _ = Site.objects.update_or_create(
                    customer=customer,
                    name=site_name,
                    defaults={
                        "prefecture": prefecture,
                        "postal_code": postal_code,
                        "address": address,
                        "contact_phone": phone,
                    },
                )
                for number, plan, start, static_ip in subscriptions:
                    Subscription.objects.get_or_create(
                        contract_number=number,
                        defaults={
                            "site": site,
                            "plan": plans[plan],
                            "service_start": start,
                            "static_ip": static_ip,
                        },
                    )
        groups = {group.name: group for group in Group.objects.filter(name__in=Role.values)}
        for email, full_name, code, role in USERS:
            user, created = User.objects.get_or_create(
                email=email,
                defaults={
                    "full_name": full_name,
                    "customer": customers[code] if code else None,
                    "is_staff": code is None,
                },
            )
            if created:
                user.set_password(DEMO_PASSWORD)
                user.save(update_fields=["password"])
            user.groups.add(groups[role])
        if not User.objects.filter(email="admin@example.com").exists():
            User.objects.create_superuser("admin@example.com", DEMO_PASSWORD, full_name="Admin")
        self._seed_extensions()
        Subscription.objects.filter(contract_number__in=CANCELLED).update(
            status=Subscription.Status.CANCELLED
        )
        # Equipment serial numbers, shown on each line's page.
        for number, site in enumerate(Site.objects.filter(antenna_serial="").order_by("pk"), 1):
            Site.objects.filter(pk=site.pk).update(
                antenna_serial=f"ANT-{20140000 + number}", modem_serial=f"MDM-{30140000 + number}"
            )

    def _seed_extensions(self) -> None:
        ExtensionOffer.objects.get_or_create(name=DEMO_OFFER["name"], defaults=DEMO_OFFER)
        support = User.objects.get(email="support@example.com")
        for contract, offer_name, when in EXTENSIONS:
            subscription = Subscription.objects.get(contract_number=contract)
            if subscription.invoices.exists():
                continue
            quote = quote_extension(
                subscription=subscription,
                offer=ExtensionOffer.objects.get(name=offer_name),
                by=None,
                now=when,
            )
            invoice = accept_quote(quote=quote, by=None, now=when)
            record_payment(
                invoice=invoice,
                amount_yen=invoice.total_yen,
                paid_on=when.date(),
                reference=f"DEMO {invoice.display_number}",
                by=support,
                now=when,
            )
