import uuid

from django.contrib.auth.forms import PasswordResetForm
from django.template import loader

from support.mail import bilingual
from support.outbox import queue_email


class OutboxPasswordResetForm(PasswordResetForm):
    """Django's reset form, its e-mail queued in the outbox instead of sent in the request:
    the answer takes the same time whether the address has an account or not."""

    def send_mail(
        self,
        subject_template_name,
        email_template_name,
        context,
        from_email,
        to_email,
        html_email_template_name=None,
    ):
        # Japanese first, English below, as every e-mail of the portal.
        subject, body = bilingual(
            lambda: (
                loader.render_to_string(subject_template_name, context),
                loader.render_to_string(email_template_name, context),
            )
        )
        # Every request is its own e-mail (each carries a new link).
        queue_email(
            key=f"password-reset:{uuid.uuid4().hex}", to=[to_email], subject=subject, body=body
        )
