"""Load the demo data of the embedded mode. Safe to run again: nothing is duplicated."""

from datetime import date, timedelta

from django.conf import settings
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from portal.accounts.models import Role, User
from subscriptions.models import Customer, Plan, Site, Subscription
from subscriptions.prefectures import Prefecture

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

# e-mail, full name, customer code or None, role
USERS = [
    ("chichibu@example.com", "秩父 太郎", "C-0001", Role.CUSTOMER),
    ("chichibu-yoshida@example.com", "吉田 花子", "C-0001", Role.CUSTOMER),
    ("miyagi@example.com", "港 一郎", "C-0002", Role.CUSTOMER),
    ("tosa@example.com", "土佐 次郎", "C-0003", Role.CUSTOMER),
    ("kumamoto@example.com", "阿蘇 三咲", "C-0004", Role.CUSTOMER),
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
