from django.utils import timezone
from django.views.generic import DetailView

from subscriptions.access import CustomerRequiredMixin
from subscriptions.selectors import subscriptions_for_customer


class SubscriptionDetailView(CustomerRequiredMixin, DetailView):
    template_name = "subscriptions/subscription_detail.html"
    context_object_name = "subscription"

    def get_queryset(self):
        return subscriptions_for_customer(customer_id=self.request.user.customer_id)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        today = timezone.localdate()
        context["state"] = self.object.state_on(today)
        context["days_left"] = self.object.days_left(today)
        return context
