from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class UpgradesConfig(AppConfig):
    name = "upgrades"
    verbose_name = _("Upgrades")

    def ready(self) -> None:
        # The outbox (support) composes our notices when it sends them.
        from support.outbox import register_composer
        from upgrades.services.notices import COMPOSER, compose_notices

        register_composer(COMPOSER, compose_notices)
