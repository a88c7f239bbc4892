from django.urls import path
from rest_framework.response import Response
from rest_framework.views import APIView

from portal.urls import urlpatterns as portal_urlpatterns

# A constant list of 50 license-shaped items: the framework's floor for GET /api/v1/licenses/.
CONSTANT_PAGE = {
    "next": None,
    "results": [
        {
            "id": i, "license_id": 1000 + i, "machine": i, "hostname": f"LON-WS-{i:06d}", "key_pack": 7,
            "license_server": 1, "product_version": "windows_server_2003", "kind": "permanent",
            "status": "active", "issued_at": "2024-01-15T09:30:12+00:00", "expires_at": None,
            "transferred_from": None, "transferable": True,
        }
        for i in range(50)
    ],
}


class BareListView(APIView):
    """Same authentication and role permission as the API, no database work."""

    def get(self, request):
        return Response(CONSTANT_PAGE)


urlpatterns = [path("bench/bare/", BareListView.as_view()), *portal_urlpatterns]
