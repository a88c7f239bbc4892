"""The licensing pages."""

from django.urls import path, re_path

from licensing.views import imports, licenses, machines, reconciliation, reissue, reports, transfers

urlpatterns = [
    # Licenses, key packs and the CSC phone book
    path("licenses/", licenses.LicenseListView.as_view(), name="license-list"),
    path("licenses/<int:pk>/", licenses.license_detail, name="license-detail"),
    path("licenses/<int:pk>/revoke/", licenses.license_revoke, name="license-revoke"),
    path("key-packs/", licenses.KeyPackListView.as_view(), name="keypack-list"),
    path("key-packs/new/", licenses.keypack_new, name="keypack-new"),
    path("key-packs/<int:pk>/", licenses.keypack_detail, name="keypack-detail"),
    path("csc-contacts/", licenses.CscContactListView.as_view(), name="csccontact-list"),
    path("csc-contacts/new/", licenses.csccontact_new, name="csccontact-new"),
    # A machine's CALs
    path("machines/<int:pk>/", machines.machine_detail, name="machine-detail"),
    path("machines/<int:pk>/issue/", machines.machine_issue, name="machine-issue"),
    path("machines/<int:pk>/retire/", machines.machine_retire, name="machine-retire"),
    # Transfers (the article's workflow)
    path("transfers/", transfers.TransferListView.as_view(), name="transfer-list"),
    path("transfers/new/", transfers.transfer_new, name="transfer-new"),
    path("transfers/<int:pk>/", transfers.transfer_detail, name="transfer-detail"),
    re_path(r"^transfers/(?P<pk>[0-9]+)/(?P<action>approve|reject|confirm-removal|cancel)/$",
            transfers.transfer_action, name="transfer-action"),
    # CSC reissue calls
    path("reissue-requests/", reissue.ReissueRequestListView.as_view(), name="reissuerequest-list"),
    path("reissue-requests/new/", reissue.reissuerequest_new, name="reissuerequest-new"),
    path("reissue-requests/<int:pk>/", reissue.reissuerequest_detail, name="reissuerequest-detail"),
    re_path(r"^reissue-requests/(?P<pk>[0-9]+)/(?P<action>install|deny|cancel)/$",
            reissue.reissuerequest_action, name="reissuerequest-action"),
    # Reports, and imports of a license server's Export-Csv files
    path("reports/", reports.reports, name="reports"),
    path("imports/", imports.import_upload, name="import-upload"),
    path("imports/jobs/<int:pk>/", imports.import_job, name="import-job"),
    path("imports/jobs/<int:pk>/confirm/", imports.import_confirm_view, name="import-confirm"),
    # Drift between the license servers and the portal
    path("reconciliation/", reconciliation.DriftListView.as_view(), name="drift-list"),
    path("reconciliation/<int:pk>/", reconciliation.drift_detail, name="drift-detail"),
    path("reconciliation/<int:pk>/acknowledge/", reconciliation.drift_acknowledge_view, name="drift-acknowledge"),
]
