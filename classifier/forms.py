from __future__ import annotations

from django import forms


class PredictForm(forms.Form):
    """The upload page's form; the same page posts it without JavaScript."""

    image = forms.FileField(
        required=False,
        allow_empty_file=True,
        widget=forms.ClearableFileInput(attrs={"accept": "image/*"}),
    )
