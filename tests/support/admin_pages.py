"""Reading admin pages the way an agent's browser submits them: the change form with its
current values (selects included), and the changelist's action form."""

from html.parser import HTMLParser


class _FormReader(HTMLParser):
    """Every POST form of a page: its fields as a browser sends them untouched (ticked
    boxes, the selected option or else the first, textareas), and its named buttons."""

    def __init__(self):
        super().__init__()
        self.forms: list[dict] = []
        self._textarea: str | None = None
        self._select: dict | None = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form":
            if attrs.get("method", "get").lower() == "post":
                self.forms.append({"id": attrs.get("id", ""), "fields": [], "buttons": []})
            return
        if not self.forms:
            return
        form = self.forms[-1]
        if tag == "option" and self._select is not None:
            value = attrs.get("value", "")
            self._select["options"].append(value)
            if "selected" in attrs:
                self._select["selected"].append(value)
            return
        if "name" not in attrs or "disabled" in attrs:
            return
        kind = attrs.get("type", "text").lower()
        if tag == "input" and kind in {"checkbox", "radio"}:
            if "checked" in attrs:
                form["fields"].append((attrs["name"], attrs.get("value", "on")))
        elif (tag == "input" and kind == "submit") or tag == "button":
            form["buttons"].append((attrs["name"], attrs.get("value", "")))
        elif tag == "input":
            form["fields"].append((attrs["name"], attrs.get("value", "")))
        elif tag == "textarea":
            self._textarea = attrs["name"]
            form["fields"].append((attrs["name"], ""))
        elif tag == "select":
            self._select = {"name": attrs["name"], "options": [], "selected": []}

    def handle_data(self, data):
        if self._textarea is not None:
            name, value = self.forms[-1]["fields"].pop()
            self.forms[-1]["fields"].append((name, value + data))

    def handle_endtag(self, tag):
        if tag == "textarea":
            self._textarea = None
        elif tag == "select" and self._select is not None:
            chosen = self._select["selected"] or self._select["options"][:1]
            self.forms[-1]["fields"].extend((self._select["name"], v) for v in chosen)
            self._select = None


def post_forms(html: str) -> list[dict]:
    reader = _FormReader()
    reader.feed(html)
    return reader.forms


def _as_data(fields, changes) -> dict[str, list[str]]:
    data: dict[str, list[str]] = {}
    for name, value in fields:
        data.setdefault(name, []).append(value)
    for name, value in changes.items():
        if value is None:
            data.pop(name, None)
        else:
            data[name] = [str(v) for v in value] if isinstance(value, list) else [str(value)]
    return data


def change_form_data(html: str, **changes) -> dict[str, list[str]]:
    """The change page's form as it stands, with what the agent changed (None unticks)."""
    (form,) = [f for f in post_forms(html) if any(name == "_save" for name, _ in f["buttons"])]
    return _as_data(form["fields"], changes)


def action_form_data(html: str, *, action: str, selected: list) -> dict[str, list[str]]:
    """The changelist's action form with ``action`` chosen, the rows' boxes ticked
    (those offered on the page only) and its "Go" button pressed."""
    (form,) = [f for f in post_forms(html) if f["id"] == "changelist-form"]
    offered = _offered_boxes(html)
    ticked = [str(pk) for pk in selected]
    assert set(ticked) <= offered, f"not on the page: {set(ticked) - offered}"
    data = _as_data(form["fields"], {"action": action, "_selected_action": ticked})
    data.update({name: [value] for name, value in form["buttons"] if name == "index"})
    return data


class _BoxReader(HTMLParser):
    def __init__(self):
        super().__init__()
        self.values: set[str] = set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "input" and attrs.get("name") == "_selected_action":
            self.values.add(attrs.get("value", ""))


def _offered_boxes(html: str) -> set[str]:
    reader = _BoxReader()
    reader.feed(html)
    return reader.values


def select_options(html: str, name: str) -> list[str]:
    """The values a select of the page offers (the empty choice left out)."""

    class _Options(HTMLParser):
        def __init__(self):
            super().__init__()
            self.inside, self.values = False, []

        def handle_starttag(self, tag, attrs):
            attrs = dict(attrs)
            if tag == "select":
                self.inside = attrs.get("name") == name
            elif tag == "option" and self.inside and attrs.get("value"):
                self.values.append(attrs["value"])

        def handle_endtag(self, tag):
            if tag == "select":
                self.inside = False

    reader = _Options()
    reader.feed(html)
    return reader.values
