from __future__ import annotations

from django.conf import settings
from django.core.files.storage import default_storage
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from classifier.models import ModelVersion
from config.fields import URIField


class PredictUploadSerializer(serializers.Serializer):
    """multipart/form-data: one file as `image`, or several as `images`."""

    image = serializers.FileField(
        required=False,
        allow_empty_file=True,
        help_text="One image file (JPEG, PNG, WEBP, GIF or BMP).",
    )
    images = serializers.ListField(
        child=serializers.FileField(allow_empty_file=True),
        required=False,
        allow_empty=False,
        help_text="Several image files; answered as `results`, in order.",
    )


class PredictUrlSerializer(serializers.Serializer):
    """application/json: the address of an image to download and classify."""

    url = URIField(max_length=8192, help_text="An http(s) image URL.")


class PredictInputSerializer(PredictUploadSerializer, PredictUrlSerializer):
    """Whatever arrived, checked for exactly one of image, images and url."""

    url = URIField(max_length=8192, required=False)

    def validate(self, attrs):
        given = [name for name in ("image", "images", "url") if name in attrs]
        if not given:
            raise serializers.ValidationError(
                "Send one file as `image`, several as `images` (multipart), or "
                'JSON {"url": "..."}.',
                code="missing_image",
            )
        if len(given) > 1:
            raise serializers.ValidationError(
                f"Send only one of image, images and url (got {', '.join(given)}).",
                code="ambiguous_input",
            )
        limit = settings.SNAPCLASS_PREDICT_MAX_IMAGES
        if len(attrs.get("images", ())) > limit:
            raise serializers.ValidationError(
                f"At most {limit} images per request.", code="too_many_images"
            )
        return attrs


class ProbabilitySerializer(serializers.Serializer):
    label = serializers.CharField()
    probability = serializers.FloatField()


class PredictionSerializer(serializers.Serializer):
    label = serializers.CharField(help_text="The most probable label.")
    confidence = serializers.FloatField(
        help_text="Its calibrated probability: about this share of such answers "
        "is right."
    )
    uncertain = serializers.BooleanField(
        help_text="True when the confidence is below the model's 'not sure' "
        "threshold (or SNAPCLASS_UNCERTAIN_BELOW): treat the label as a guess."
    )
    probabilities = ProbabilitySerializer(
        many=True, help_text="Every label, most probable first (calibrated)."
    )
    model_version = serializers.IntegerField()


class PredictionListSerializer(serializers.Serializer):
    results = PredictionSerializer(many=True)


class ErrorSerializer(serializers.Serializer):
    detail = serializers.CharField(help_text="What is wrong, in words.")
    code = serializers.CharField(help_text="A stable code for programs.")
    errors = serializers.DictField(
        required=False, help_text="Per field, when the input had several problems."
    )


class ModelVersionSerializer(serializers.ModelSerializer):
    onnx_url = serializers.SerializerMethodField()
    meta_url = serializers.SerializerMethodField()

    class Meta:
        model = ModelVersion
        fields = [
            "id",
            "run",
            "backbone",
            "label_names",
            "preprocessing",
            "error_rate",
            "valid_loss",
            "metrics",
            "is_current",
            "comparison",
            "decision",
            "created_at",
            "promoted_at",
            "onnx_url",
            "onnx_sha256",
            "meta_url",
            "meta_sha256",
            "weights_sha256",
        ]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.URI)
    def get_onnx_url(self, version: ModelVersion) -> str:
        return self._absolute(default_storage.url(version.onnx_path))

    @extend_schema_field(OpenApiTypes.URI)
    def get_meta_url(self, version: ModelVersion) -> str:
        return self._absolute(default_storage.url(version.meta_path))

    def _absolute(self, path: str) -> str:
        request = self.context.get("request")
        return request.build_absolute_uri(path) if request is not None else path
