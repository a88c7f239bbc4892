"""The licensing API: one router registration per resource."""

from django.urls import path, re_path
from rest_framework.routers import SimpleRouter

from licensing.api import reports, views

router = SimpleRouter()
router.register("license-servers", views.LicenseServerViewSet, basename="api-licenseserver")
router.register("key-packs", views.KeyPackViewSet, basename="api-keypack")
router.register("licenses", views.LicenseViewSet, basename="api-license")
router.register("transfers", views.TransferViewSet, basename="api-transfer")
router.register("reissue-requests", views.ReissueRequestViewSet, basename="api-reissuerequest")
router.register("csc-contacts", views.CscContactViewSet, basename="api-csccontact")
router.register("exports", reports.ExportJobViewSet, basename="exportjob")

urlpatterns = [
    path("compliance/", views.ComplianceView.as_view(), name="api-compliance"),
    re_path(r"^reports/(?P<name>[-\w]+)\.(?P<fmt>\w+)$", reports.ReportDownloadView.as_view(), name="report-download"),
    *router.urls,
]
