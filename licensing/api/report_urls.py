from django.urls import re_path
from rest_framework.routers import SimpleRouter

from licensing.api.reports import ExportJobViewSet, ReportDownloadView

router = SimpleRouter()
router.register("exports", ExportJobViewSet, basename="exportjob")

urlpatterns = [
    re_path(r"^reports/(?P<name>[-\w]+)\.(?P<fmt>\w+)$", ReportDownloadView.as_view(), name="report-download"),
    *router.urls,
]
