from __future__ import annotations

from django import forms

from datasets.models import Label


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    """A file field that takes many files at once (Django's documented recipe)."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("widget", MultipleFileInput(attrs={"accept": "image/*"}))
        super().__init__(*args, **kwargs)

    def clean(self, data, initial=None):
        single = super().clean
        if isinstance(data, (list, tuple)):
            return [single(d, initial) for d in data]
        return [single(data, initial)]


class ImageUploadForm(forms.Form):
    label = forms.ModelChoiceField(queryset=Label.objects.filter(is_active=True))
    files = MultipleFileField(help_text="Select or drop many images at once.")


class LinesField(forms.CharField):
    """A textarea of plain lines -> a list of stripped, non-empty lines."""

    widget = forms.Textarea(attrs={"rows": 3})

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("max_length", 200_000)
        super().__init__(*args, **kwargs)

    def prepare_value(self, value):
        if isinstance(value, (list, tuple)):
            return "\n".join(value)
        return value

    def to_python(self, value):
        from datasets.labels import lines

        return lines(super().to_python(value))


def provider_choices() -> list[tuple[str, str]]:
    """Each provider with what it needs, and whether this server has it."""
    from datasets import scraping, search

    choices = []
    for name in search.PROVIDERS:
        setting, needs = scraping.PROVIDER_NEEDS.get(name, (None, ""))
        title = scraping.provider_title(name)
        if setting is None:
            hint = needs
        elif scraping.provider_missing_setting(name):
            hint = f"{needs} Not set on this server."
        else:
            hint = f"Key set ({setting})."
        choices.append((name, f"{title[0].upper()}{title[1:]} — {hint}"))
    return choices


class LabelCreateForm(forms.Form):
    name = forms.CharField(max_length=64, help_text="The slug is derived from it.")
    queries = LinesField(
        label="Search queries",
        help_text="One per line; empty: the name is searched.",
    )


class LabelEditForm(forms.Form):
    name = forms.CharField(max_length=64)
    queries = LinesField(label="Search queries", help_text="One per line.")
    is_active = forms.BooleanField(
        required=False, label="Active (trained on)", initial=True
    )

    def __init__(self, *args, label: Label, **kwargs) -> None:
        kwargs.setdefault("prefix", f"label-{label.pk}")
        kwargs.setdefault(
            "initial",
            {
                "name": label.name,
                "queries": label.queries,
                "is_active": label.is_active,
            },
        )
        super().__init__(*args, **kwargs)


class LabelScrapeForm(forms.Form):
    provider = forms.ChoiceField(choices=provider_choices)
    count = forms.IntegerField(min_value=1, max_value=1000, initial=150, label="Images")
    urls = LinesField(
        label="Image URLs",
        help_text="For the URL-list provider: one http(s) URL per line.",
        widget=forms.Textarea(attrs={"rows": 2}),
    )

    def __init__(self, *args, **kwargs) -> None:
        from django.conf import settings

        super().__init__(*args, **kwargs)
        self.fields["provider"].initial = settings.SNAPCLASS_SEARCH_PROVIDER

    def clean(self):
        data = super().clean()
        if data.get("provider") == "urls" and not data.get("urls"):
            self.add_error("urls", "Paste at least one image URL for the URL list.")
        return data
