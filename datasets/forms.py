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
