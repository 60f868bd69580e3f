from __future__ import annotations

from django import forms

from training import ml


class TrainingRunForm(forms.Form):
    backbone = forms.ChoiceField(choices=[])
    epochs = forms.IntegerField(min_value=1, max_value=200, initial=4)
    image_size = forms.IntegerField(min_value=32, max_value=1024, initial=224)
    valid_pct = forms.FloatField(min_value=0.05, max_value=0.5, initial=0.2)
    seed = forms.IntegerField(min_value=0, initial=42)
    batch_size = forms.IntegerField(min_value=1, max_value=1024, initial=32)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        names = [n for n in ml.BACKBONES if not n.startswith("tiny")]
        self.fields["backbone"].choices = [(n, n) for n in names]
        self.fields["backbone"].initial = "efficientnet_lite0"
