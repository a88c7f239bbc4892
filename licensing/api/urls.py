"""The licensing API: one router registration per resource."""

from django.urls import path, re_path
from rest_framework.routers import SimpleRouter

from licensing.api import imports, reports, views

router = SimpleRouter()
router.register("license-servers", views.LicenseServerViewSet, basename="api-licenseserver")
router.register("key-packs", views.KeyPackViewSet, basename="api-keypack")
router.register("licenses", views.LicenseViewSet, basename="api-license")
router.register("transfers", views.TransferViewSet, basename="api-transfer")
router.register("reissue-requests", views.ReissueRequestViewSet, basename="api-reissuerequest")
router.register("csc-contacts", views.CscContactViewSet, basename="api-csccontact")
router.register("exports", reports.ExportJobViewSet, basename="exportjob")
router.register("imports", imports.ImportJobViewSet, basename="api-importjob")
router.register("snapshots", imports.SnapshotViewSet, basename="api-snapshot")
router.register("per-user-issuances", imports.PerUserIssuanceViewSet, basename="api-peruserissuance")
router.register("drift", imports.DriftItemViewSet, basename="api-driftitem")

urlpatterns = [
    path("compliance/", views.ComplianceView.as_view(), name="api-compliance"),
    path("forecast/", views.ForecastView.as_view(), name="api-forecast"),
    re_path(r"^reports/(?P<name>[-\w]+)\.(?P<fmt>\w+)$", reports.ReportDownloadView.as_view(), name="report-download"),
    *router.urls,
]
