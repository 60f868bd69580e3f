"""Forms of the training pages."""

from __future__ import annotations

from django import forms

from training import ml
from training.interfaces import TrainingRunForm

__all__ = ["ProjectForm", "TrainingRunForm"]


class ProjectForm(forms.Form):
    """The new-classifier page: class names and what to search with, in plain lines."""

    classes = forms.CharField(
        label="Classes",
        widget=forms.Textarea(
            attrs={
                "rows": 5,
                "placeholder": "woman\nman\ncamera\nTV",
                "spellcheck": "false",
            }
        ),
        max_length=10_000,
        help_text="One class name per line.",
    )
    queries = forms.CharField(
        label="Search queries (optional)",
        required=False,
        max_length=50_000,
        widget=forms.Textarea(
            attrs={"rows": 4, "placeholder": "camera\ndigital camera\nphoto camera"}
        ),
        help_text="A line with a class name, then one query per line for it. A class "
        "without queries is searched by its name.",
    )
    provider = forms.ChoiceField(label="Search with", widget=forms.RadioSelect)
    urls = forms.CharField(
        label="Image URLs (for the URL list)",
        required=False,
        max_length=2_000_000,
        widget=forms.Textarea(
            attrs={"rows": 4, "placeholder": "camera\nhttps://example.com/camera-1.jpg"}
        ),
        help_text="A line with a class name, then its image URLs, one per line.",
    )
    per_label = forms.IntegerField(
        label="Images per class", min_value=1, max_value=1000, initial=150
    )
    train = forms.BooleanField(
        label="Train when the images are in", required=False, initial=True
    )
    backbone = forms.ChoiceField(label="Backbone", required=False)
    epochs = forms.IntegerField(
        label="Epochs", required=False, min_value=1, max_value=200
    )
    image_size = forms.IntegerField(
        label="Image size (px)", required=False, min_value=32, max_value=1024
    )

    def __init__(self, *args, **kwargs) -> None:
        from django.conf import settings

        from datasets.forms import provider_choices

        super().__init__(*args, **kwargs)
        self.fields["provider"].choices = provider_choices()
        self.fields["provider"].initial = settings.SNAPCLASS_SEARCH_PROVIDER
        self.fields["per_label"].max_value = settings.SNAPCLASS_SCRAPE_MAX_IMAGES
        defaults = settings.SNAPCLASS_TRAIN_DEFAULTS
        names = [n for n in ml.BACKBONES if not n.startswith("tiny")]
        self.fields["backbone"].choices = [
            ("", f"default ({defaults.get('backbone')})"),
            *((n, n) for n in names),
        ]
        self.fields["epochs"].widget.attrs["placeholder"] = defaults.get("epochs")
        self.fields["image_size"].widget.attrs["placeholder"] = defaults.get(
            "image_size"
        )

    def clean(self):
        from config.errors import DomainError
        from datasets.labels import (
            class_specs_build,
            lines,
            sections_parse,
        )

        data = super().clean()
        names = lines(data.get("classes"))
        try:
            queries = sections_parse(data.get("queries"), names, what="queries")
            urls = sections_parse(data.get("urls"), names, what="URLs")
            data["specs"] = class_specs_build(names, queries=queries, urls=urls)
        except DomainError as exc:
            raise forms.ValidationError(exc.message, code=exc.code) from None
        data["train_config"] = {
            key: data[key]
            for key in ("backbone", "epochs", "image_size")
            if data.get(key) not in (None, "")
        }
        return data
