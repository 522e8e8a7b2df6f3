"""Japanese first, English too: the catalogue is complete, compiled and current."""

import shutil
import subprocess
import sys
from pathlib import Path

import polib
import pytest
from django.conf import settings
from django.urls import reverse

from tests.factories import SubscriptionFactory, UserFactory

BASE_DIR = Path(__file__).resolve().parent.parent
PO = BASE_DIR / "locale/ja/LC_MESSAGES/django.po"
MO = BASE_DIR / "locale/ja/LC_MESSAGES/django.mo"


def test_japanese_catalogue_has_no_missing_or_fuzzy_translation():
    catalogue = polib.pofile(str(PO))

    assert not [e.msgid for e in catalogue.untranslated_entries()]
    assert not [e.msgid for e in catalogue.fuzzy_entries()]
    assert not [e.msgid for e in catalogue.obsolete_entries()]


def test_compiled_catalogue_matches_the_source():
    # The .mo is committed so that a fresh machine needs no gettext; it must be current.
    # Keyed by context too: "sent" (a date) and "sent" (a photo upload) are two entries.
    source = {(e.msgctxt, e.msgid): e.msgstr for e in polib.pofile(str(PO)).translated_entries()}
    compiled = {(e.msgctxt, e.msgid): e.msgstr for e in polib.mofile(str(MO)) if e.msgid}

    assert compiled == source


def test_every_marked_string_is_in_the_catalogue(tmp_path):
    if not shutil.which("xgettext"):
        pytest.skip("xgettext is not installed (apt-get install gettext)")
    # Extract again in a copy of the project and compare: nothing new, nothing stale.
    copy = tmp_path / "project"
    shutil.copytree(
        BASE_DIR,
        copy,
        ignore=shutil.ignore_patterns(".*", "var", "staticfiles", "__pycache__", "node_modules"),
    )
    subprocess.run(
        [sys.executable, "manage.py", "makemessages", "-l", "ja", "--no-obsolete"],
        cwd=copy,
        check=True,
        capture_output=True,
    )
    extracted = {e.msgid for e in polib.pofile(str(copy / PO.relative_to(BASE_DIR)))}
    committed = {e.msgid for e in polib.pofile(str(PO))}

    assert extracted - committed == set(), "run `make messages` and translate the new strings"
    assert committed - extracted == set()


@pytest.mark.django_db
def test_pages_are_japanese_by_default_and_english_on_request(client):
    user = UserFactory()
    SubscriptionFactory(site__customer=user.customer)
    client.force_login(user)

    japanese = client.get(reverse("home"))
    client.post(reverse("set_language"), {"language": "en", "next": reverse("home")})
    english = client.get(reverse("home"))

    assert '<html lang="ja">' in japanese.text
    assert "ご契約一覧" in japanese.text
    assert "埼玉県" in japanese.text
    assert '<html lang="en">' in english.text
    assert "My sites" in english.text
    assert "Saitama" in english.text
    assert settings.LANGUAGE_COOKIE_NAME in client.cookies
