"""A project URLconf whose own view answers the SSO consume path before ours."""

from django.http import HttpResponse
from django.urls import include, path


def their_view(request):
    return HttpResponse("theirs")


urlpatterns = [
    path("maestrano/auth/saml/consume", their_view),
    path("", include("maestrano_integration.urls")),
]
