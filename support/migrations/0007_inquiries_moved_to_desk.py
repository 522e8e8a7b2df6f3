"""Inquiries, their messages and canned replies now belong to ``desk`` (its migration
0001 took them over the same tables): support forgets them, touching no table."""

from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [
        ("support", "0006_follow_up_backoff_hold"),
        ("desk", "0001_moved_from_support"),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.DeleteModel(
                    name="CannedReply",
                ),
                migrations.RemoveField(
                    model_name="inquirymessage",
                    name="inquiry",
                ),
                migrations.RemoveField(
                    model_name="inquirymessage",
                    name="author",
                ),
                migrations.RemoveField(
                    model_name="inquirymessage",
                    name="email",
                ),
                migrations.DeleteModel(
                    name="Inquiry",
                ),
                migrations.DeleteModel(
                    name="InquiryMessage",
                ),
            ],
            database_operations=[],
        ),
    ]
