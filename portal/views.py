"""The customer home, the operator dashboard and the health check."""

import logging

from django.conf import settings
from django.contrib.auth.mixins import PermissionRequiredMixin
from django.core.paginator import Paginator
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.shortcuts import get_object_or_404, redirect
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.generic import TemplateView

from incidents.readiness import readiness_by_prefecture
from incidents.selectors import mass_messages_for_customer
from incidents.views import OutageForm
from portal.celery import app as celery_app
from portal.selectors import (
    HOME_LINES_PER_SITE,
    HOME_SITES_PER_PAGE,
    SITE_LINES_PER_PAGE,
    backlog,
    line_summary,
    scheduler_status,
    sites_with_subscriptions,
)
from support.access import CustomerRequiredMixin, is_customer_user
from upgrades.selectors import disasters_for_dashboard

logger = logging.getLogger(__name__)


class HomeView(CustomerRequiredMixin, TemplateView):
    """A customer's sites and subscriptions. Staff land on their own start page."""

    template_name = "portal/home.html"

    def dispatch(self, request, *args, **kwargs):
        user = request.user
        if user.is_authenticated and not is_customer_user(user):
            if user.has_perm("accounts.access_operator_dashboard"):
                return redirect("operator-dashboard")
            if user.is_staff:
                return redirect("admin:index")
        return super().dispatch(request, *args, **kwargs)

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        customer_id = self.request.user.customer_id
        today = timezone.localdate()
        number = self.request.GET.get("page")
        site_id = self.request.GET.get("site", "")
        sites = sites_with_subscriptions(customer_id=customer_id)
        if site_id.isdigit():
            # One site's lines, page after page: a site with hundreds of lines.
            site = get_object_or_404(sites.prefetch_related(None), pk=site_id)
            lines = site.subscriptions.select_related("plan").order_by("-service_start", "pk")
            page = Paginator(lines, SITE_LINES_PER_PAGE).get_page(number)
            site.shown_lines = list(page.object_list)
            context["only_site"] = site
            shown = [site]
        else:
            page = Paginator(sites, HOME_SITES_PER_PAGE).get_page(number)
            shown = list(page.object_list)
        for site in shown:
            for subscription in site.shown_lines:
                subscription.state = subscription.state_on(today)
        context["customer"] = self.request.user.customer
        context["summary"] = line_summary(customer_id=customer_id, today=today)
        context["sites"] = shown
        context["page"] = page
        context["page_range"] = page.paginator.get_elided_page_range(
            page.number, on_each_side=2, on_ends=1
        )
        context["lines_per_site"] = HOME_LINES_PER_SITE
        context["mass_messages"] = mass_messages_for_customer(customer_id=customer_id)
        return context


class OperatorDashboardView(PermissionRequiredMixin, TemplateView):
    """Anonymous visitors are sent to log in; other roles get 403."""

    permission_required = "accounts.access_operator_dashboard"
    template_name = "portal/operator_dashboard.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["scheduler"] = scheduler_status(now=timezone.now())
        context["backlog"] = backlog()
        now = timezone.now()
        blankets = list(disasters_for_dashboard())
        for blanket in blankets:
            blanket.stage = blanket.stage_on(now)
        context["blankets"] = blankets
        context["outage_form"] = OutageForm()
        context["readiness"] = readiness_by_prefecture(now=timezone.now())
        context["stale_days"] = settings.READINESS_STALE_DAYS
        return context


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone() == (1,)
    except Exception:
        logger.exception("health check: database unreachable")
        return False


def _broker_ok() -> bool:
    try:
        with celery_app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, interval_start=0, timeout=3)
        return True
    except Exception:
        logger.exception("health check: broker unreachable")
        return False


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """200 when the database and the broker answer, 503 otherwise (for load balancers).

    The scheduler heartbeat is reported but does not fail the check: web requests work
    without beat, and restarting web servers would not bring beat back.
    """
    database, broker = _database_ok(), _broker_ok()
    body: dict = {"database": "ok" if database else "unreachable"}
    body["broker"] = "ok" if broker else "unreachable"
    if database:
        now = timezone.now()
        scheduler = scheduler_status(now=now)
        body["scheduler"] = {
            "last_beat": scheduler.last_beat.isoformat() if scheduler.last_beat else None,
            "fresh": scheduler.fresh,
            "beats_last_10_minutes": scheduler.recent_beats,
            "several_beats_running": scheduler.several_beats,
        }
        # Work waiting for the workers: for monitoring, not a reason to fail the check.
        body["backlog"] = backlog().as_dict(now)
    return JsonResponse(body, status=200 if database and broker else 503)
