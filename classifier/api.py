from __future__ import annotations

from django.conf import settings
from django.db.models import QuerySet
from drf_spectacular.utils import (
    OpenApiExample,
    OpenApiResponse,
    PolymorphicProxySerializer,
    extend_schema,
)
from rest_framework import exceptions, parsers, status, viewsets
from rest_framework.authentication import SessionAuthentication
from rest_framework.decorators import action
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from classifier import feedback, services
from classifier.auth import APIKeyAuthentication, CanPredict
from classifier.errors import InvalidPredictInput, NoCurrentModel
from classifier.registry import model_version_promote
from classifier.selectors import model_version_current, model_version_list
from classifier.serializers import (
    ErrorSerializer,
    ModelVersionSerializer,
    PredictInputSerializer,
    PredictionListSerializer,
    PredictionSerializer,
    PredictUploadSerializer,
    PredictUrlSerializer,
)
from classifier.throttling import PredictRateThrottle, predict_spend
from config.permissions import HasModelPerm
from datasets.imaging import ImageRejected

# A JSON body only carries a URL.
MAX_JSON_BYTES = 64 * 1024


class RequestTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "too_large"


def _content_length(parser_context) -> int:
    request = parser_context["request"]
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise exceptions.ParseError("Bad Content-Length.") from None


class BoundedJSONParser(parsers.JSONParser):
    """JSONParser that refuses big bodies before reading them."""

    def parse(self, stream, media_type=None, parser_context=None):
        if _content_length(parser_context) > MAX_JSON_BYTES:
            raise RequestTooLarge(f"A JSON body may be at most {MAX_JSON_BYTES} bytes.")
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:  # deeply nested arrays; JSONParser only maps ValueError
            raise exceptions.ParseError(
                "JSON parse error - nested too deeply."
            ) from None


class BoundedMultiPartParser(parsers.MultiPartParser):
    """MultiPartParser that refuses a body larger than the most images allowed."""

    def parse(self, stream, media_type=None, parser_context=None):
        limit = (
            settings.SNAPCLASS_PREDICT_MAX_IMAGES * settings.SNAPCLASS_MAX_FILE_BYTES
            + 1024 * 1024
        )
        if _content_length(parser_context) > limit:
            raise RequestTooLarge(f"The upload may be at most {limit} bytes.")
        return super().parse(stream, media_type, parser_context)


ERRORS = {
    400: OpenApiResponse(ErrorSerializer, description="Bad input."),
    401: OpenApiResponse(ErrorSerializer, description="Bad or revoked API key."),
    403: OpenApiResponse(ErrorSerializer, description="Not allowed."),
    413: OpenApiResponse(ErrorSerializer, description="File or image too large."),
    415: OpenApiResponse(ErrorSerializer, description="Not an image we accept."),
    429: OpenApiResponse(ErrorSerializer, description="Rate limit reached."),
    503: OpenApiResponse(ErrorSerializer, description="No current model."),
}


class PredictView(APIView):
    """Classify images with the current model."""

    authentication_classes = [APIKeyAuthentication, SessionAuthentication]
    permission_classes = [CanPredict]
    throttle_classes = [PredictRateThrottle]
    parser_classes = [BoundedMultiPartParser, BoundedJSONParser]
    renderer_classes = [JSONRenderer]

    @extend_schema(
        operation_id="predict",
        summary="Classify one image, several images, or an image URL",
        request={
            "multipart/form-data": PredictUploadSerializer,
            "application/json": PredictUrlSerializer,
        },
        responses={
            200: PolymorphicProxySerializer(
                component_name="PredictResult",
                serializers=[PredictionSerializer, PredictionListSerializer],
                resource_type_field_name=None,
            ),
            **ERRORS,
        },
        examples=[
            OpenApiExample(
                "One image",
                response_only=True,
                value={
                    "label": "camera",
                    "confidence": 0.97,
                    "probabilities": [
                        {"label": "camera", "probability": 0.97},
                        {"label": "TV", "probability": 0.03},
                    ],
                    "model_version": 3,
                },
            )
        ],
    )
    def post(self, request: Request) -> Response:
        if len(request.FILES.getlist("image")) > 1:
            raise InvalidPredictInput(
                "Send one file as `image`, or several as `images`.",
                code="ambiguous_input",
            )
        data = request.data
        if not hasattr(data, "get"):
            raise InvalidPredictInput('Send a JSON object such as {"url": "..."}.')
        serializer = PredictInputSerializer(data=data)
        if not serializer.is_valid():
            raise _first_error(serializer.errors)
        v = serializer.validated_data
        images = len(v["images"]) if "images" in v else 1
        if images <= settings.SNAPCLASS_PREDICT_MAX_IMAGES:  # more: a 400 below
            predict_spend(request, images, url="url" in v)
        if "url" in v:
            prediction = services.url_predict(url=v["url"])
        elif "image" in v:
            prediction = services.image_predict(data=_read(v["image"]))
        else:
            predictions = services.images_predict(
                images=[(f.name or "", _read(f)) for f in v["images"]]
            )
            return Response({"results": feedback.prediction_answers(predictions)})
        # as_dict() has PredictionSerializer's shape (the schema); building the
        # answer without the serializer saves time on this latency-bound path.
        return Response(feedback.prediction_answers([prediction])[0])


def _read(upload) -> bytes:
    if upload.size is not None and upload.size > settings.SNAPCLASS_MAX_FILE_BYTES:
        # The service says the same; this spares reading a huge temporary file.
        raise ImageRejected(
            "too_large",
            f"The file is larger than {settings.SNAPCLASS_MAX_FILE_BYTES} bytes.",
        )
    upload.seek(0)
    return upload.read()


def _first_error(errors) -> InvalidPredictInput:
    """The serializer's first error as one {"detail", "code"} answer."""
    field, message = next(iter(errors.items()))
    name = field
    while isinstance(message, (list, dict)):  # ListField errors: {index: [...]}
        if isinstance(message, dict):
            index, message = next(iter(message.items()))
            name = f"{field}[{index}]"
        else:
            message = message[0]
    code = getattr(message, "code", None) or "invalid"
    prefix = "" if field == "non_field_errors" else f"{name}: "
    return InvalidPredictInput(f"{prefix}{message}", code=str(code))


class ModelVersionViewSet(viewsets.ReadOnlyModelViewSet):
    """Trained model versions, newest first; `current` is the one that predicts."""

    serializer_class = ModelVersionSerializer
    # Anything up to the next slash reaches DRF, so a bad id is a JSON 404 too.
    lookup_value_regex = "[^/]+"

    def get_queryset(self) -> QuerySet:
        return model_version_list()

    @extend_schema(responses={200: ModelVersionSerializer, 503: ErrorSerializer})
    @action(detail=False, methods=["get"])
    def current(self, request: Request) -> Response:
        version = model_version_current()
        if version is None:
            raise NoCurrentModel()
        return Response(self.get_serializer(version).data)

    @extend_schema(
        request=None,
        responses={
            200: ModelVersionSerializer,
            403: ErrorSerializer,
            404: ErrorSerializer,
            409: ErrorSerializer,
        },
    )
    @action(
        detail=True,
        methods=["post"],
        permission_classes=[HasModelPerm.of("classifier.change_modelversion")],
    )
    def promote(self, request: Request, pk: str | None = None) -> Response:
        """Make this version current (curators, curator keys); an older one rolls
        back."""
        version = model_version_promote(version=self.get_object(), user=request.user)
        return Response(self.get_serializer(version).data)
