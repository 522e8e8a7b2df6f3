"""Customer API for subscriptions: read-only, scoped to the caller's organisation."""

from django.utils import timezone
from rest_framework import serializers, viewsets

from subscriptions.access import IsCustomerUser
from subscriptions.models import Plan, Site, Subscription
from subscriptions.selectors import subscriptions_for_customer


class PlanOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = Plan
        fields = ["name", "normal_kbps", "upgraded_kbps"]


class SiteOutputSerializer(serializers.ModelSerializer):
    prefecture_name = serializers.CharField(source="get_prefecture_display")

    class Meta:
        model = Site
        fields = ["id", "name", "prefecture", "prefecture_name", "address", "contact_phone"]


class SubscriptionOutputSerializer(serializers.ModelSerializer):
    site = SiteOutputSerializer()
    plan = PlanOutputSerializer()
    state = serializers.SerializerMethodField()
    days_left = serializers.SerializerMethodField()

    class Meta:
        model = Subscription
        fields = [
            "id",
            "contract_number",
            "site",
            "plan",
            "service_start",
            "term_end",
            "status",
            "state",
            "days_left",
            "static_ip",
        ]

    def get_state(self, obj: Subscription) -> str:
        return obj.state_on(timezone.localdate())

    def get_days_left(self, obj: Subscription) -> int:
        return obj.days_left(timezone.localdate())


class SubscriptionViewSet(viewsets.ReadOnlyModelViewSet):
    """The caller's organisation's subscriptions; another organisation's id is a 404."""

    serializer_class = SubscriptionOutputSerializer
    permission_classes = [IsCustomerUser]

    def get_queryset(self):
        if getattr(self, "swagger_fake_view", False):  # schema generation, no real user
            return Subscription.objects.none()
        return subscriptions_for_customer(customer_id=self.request.user.customer_id).order_by("pk")
