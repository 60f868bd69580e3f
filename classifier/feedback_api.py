from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from classifier import feedback
from classifier.api import ERRORS, BoundedMultiPartParser, _first_error, _read
from classifier.auth import APIKeyAuthentication, CanPredict
from classifier.throttling import FeedbackRateThrottle

MAX_ID = 2**31 - 1  # larger ids cannot exist; the database would refuse the query


class FeedbackInputSerializer(serializers.Serializer):
    image = serializers.FileField(help_text="the image that was classified")
    label = serializers.CharField(
        max_length=64,
        required=False,
        allow_blank=True,
        help_text="the correct label (slug or name)",
    )
    new_label = serializers.CharField(
        max_length=64,
        required=False,
        allow_blank=True,
        help_text="instead of `label`: the name of a class the model does not know "
        "(created inactive, for the curators)",
    )
    prediction = serializers.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_ID,
        help_text="the prediction_id a logged prediction returned",
    )
    predicted_label = serializers.CharField(
        required=False, max_length=64, allow_blank=True
    )
    model_version = serializers.IntegerField(
        required=False, min_value=1, max_value=MAX_ID
    )


class FeedbackOutputSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    image = serializers.IntegerField(source="image_id")
    status = serializers.CharField()
    image_status = serializers.CharField(source="image.status")
    predicted_label = serializers.CharField()
    correct_label = serializers.CharField(source="correct_label.name")


class FeedbackView(APIView):
    """ "Wrong? It is ...": send the image and the correct label for review."""

    authentication_classes = [APIKeyAuthentication, SessionAuthentication]
    permission_classes = [CanPredict]
    throttle_classes = [FeedbackRateThrottle]
    parser_classes = [BoundedMultiPartParser]
    renderer_classes = [JSONRenderer]

    @extend_schema(
        operation_id="feedback",
        request={"multipart/form-data": FeedbackInputSerializer},
        responses={201: FeedbackOutputSerializer, **ERRORS},
    )
    def post(self, request):
        serializer = FeedbackInputSerializer(data=request.data)
        if not serializer.is_valid():
            raise _first_error(serializer.errors)
        v = serializer.validated_data
        item = feedback.feedback_submit(
            data=_read(v["image"]),
            correct_label=feedback.feedback_label(
                label=v.get("label", ""), new_label=v.get("new_label", "")
            ),
            prediction_id=v.get("prediction"),
            predicted_label=v.get("predicted_label", ""),
            model_version_id=v.get("model_version"),
            user=request.user,
        )
        return Response(
            FeedbackOutputSerializer(item).data, status=status.HTTP_201_CREATED
        )
