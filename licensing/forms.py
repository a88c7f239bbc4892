"""HTML forms for the licensing workflows. They translate input; the services decide."""

from django import forms
from django.urls import reverse_lazy
from django.utils import timezone

from inventory.models import ClientMachine
from licensing import models as m


class DateInput(forms.DateInput):
    input_type = "date"


class DateTimeInput(forms.DateTimeInput):
    input_type = "datetime-local"

    def format_value(self, value):
        if hasattr(value, "strftime"):
            if timezone.is_aware(value):
                value = timezone.localtime(value)
            return value.strftime("%Y-%m-%dT%H:%M")
        return value


class MachineByHostnameField(forms.CharField):
    """A machine named by its host name (compared without regard to case)."""

    def clean(self, value):
        value = super().clean(value)
        if not value:
            return None
        machine = ClientMachine.objects.filter(hostname__iexact=value.strip()).first()
        if machine is None:
            raise forms.ValidationError(f"No machine is named {value.strip()}.")
        return machine


class TransferFileForm(forms.Form):
    license = forms.ModelChoiceField(
        queryset=m.License.objects.select_related("machine", "license_server"),
        widget=forms.NumberInput,
        label="Source CAL (portal id)",
        help_text="The permanent CAL to move; start from a license's page to fill this in.",
        error_messages={"invalid_choice": "No CAL has this id."},
    )
    target_machine = MachineByHostnameField(
        label="Target machine (host name)", max_length=253,
        widget=forms.TextInput(attrs={
            "autocomplete": "off", "list": "machine-suggestions",
            # htmx fills the datalist with matching host names as the user types.
            "hx-get": reverse_lazy("machine-suggestions"), "hx-trigger": "input changed delay:250ms",
            "hx-target": "#machine-suggestions", "hx-swap": "innerHTML",
        }),
    )
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}),
                             help_text="e.g. the source computer is being replaced.")


class DecisionNoteForm(forms.Form):
    note = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))


class RequiredNoteForm(forms.Form):
    note = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}),
                           help_text="Say why; it is kept in the audit trail.")


class ConfirmRemovalForm(forms.Form):
    method = forms.ChoiceField(choices=m.RemovalMethod.choices, widget=forms.RadioSelect,
                               label="How was the CAL removed from the source?")


class IssueLicenseForm(forms.Form):
    kind = forms.ChoiceField(choices=m.LicenseKind.choices, widget=forms.RadioSelect,
                             initial=m.LicenseKind.PERMANENT)
    license_server = forms.ModelChoiceField(queryset=m.LicenseServer.objects.all())
    key_pack_id = forms.IntegerField(
        label="KeyPackId", required=False, min_value=0,
        help_text="Permanent CALs: the key pack's KeyPackId on that license server.",
    )
    product_version = forms.ChoiceField(
        choices=[("", "---------")] + list(m.WindowsVersion.choices), required=False,
        help_text="Temporary CALs: the product the machine connects to.",
    )

    def clean(self):
        data = super().clean()
        server = data.get("license_server")
        if data.get("kind") == m.LicenseKind.PERMANENT:
            if data.get("key_pack_id") is None:
                self.add_error("key_pack_id", "Give the KeyPackId of the pack to issue from.")
            elif server is not None:
                pack = m.KeyPack.objects.filter(license_server=server,
                                                key_pack_id=data["key_pack_id"]).first()
                if pack is None:
                    self.add_error("key_pack_id",
                                   f"{server.name} has no key pack {data['key_pack_id']}.")
                data["key_pack"] = pack
        elif data.get("kind") == m.LicenseKind.TEMPORARY and not data.get("product_version"):
            self.add_error("product_version", "Choose the product for the temporary CAL.")
        return data


def _server_label(server) -> str:
    return f"{server.name} ({server.get_windows_version_display()})"


class KeyPackForm(forms.ModelForm):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Rule 13 depends on the server's version: show it next to the name.
        self.fields["license_server"].label_from_instance = _server_label
        self.fields["product_version"].help_text = (
            "A license server holds CALs of its own Windows version or older.")

    class Meta:
        model = m.KeyPack
        fields = [
            "license_server", "key_pack_id", "product_version", "cal_type", "license_program",
            "agreement_number", "total_licenses", "installed_on", "expires_on", "description",
            "notes",
        ]
        widgets = {"installed_on": DateInput, "expires_on": DateInput,
                   "notes": forms.Textarea(attrs={"rows": 2})}

    def _post_clean(self):
        # The service validates the row (fields and constraints) itself.
        pass


class CscContactForm(forms.ModelForm):
    class Meta:
        model = m.CscContact
        fields = ["location", "phone_number", "hours", "notes"]
        widgets = {"notes": forms.Textarea(attrs={"rows": 2})}

    def _post_clean(self):
        pass


class LogCallForm(forms.Form):
    csc_contact = forms.ModelChoiceField(
        queryset=m.CscContact.objects.all(), label="CSC called (phone book)",
        help_text="Step 1 of the article: the Customer Service Center nearest you.",
    )
    called_at = forms.DateTimeField(widget=DateTimeInput, label="Called at")
    representative = forms.CharField(required=False, max_length=128)
    confirmation_number = forms.CharField(required=False, max_length=64)
    license_server = forms.ModelChoiceField(queryset=m.LicenseServer.objects.all())
    product_version = forms.ChoiceField(choices=m.WindowsVersion.choices)
    license_program = forms.ChoiceField(choices=m.LicenseProgram.choices)
    agreement_number = forms.CharField(required=False, max_length=64)
    quantity_requested = forms.IntegerField(min_value=1)
    transfers = forms.ModelMultipleChoiceField(
        queryset=m.TransferRequest.objects.none(), widget=forms.CheckboxSelectMultiple,
        required=False, label="Transfers this call covers (removal confirmed)",
    )
    notes = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["transfers"].queryset = (
            m.TransferRequest.objects.filter(status=m.TransferStatus.REMOVAL_CONFIRMED)
            .select_related("license__license_server", "source_machine", "target_machine")
            .order_by("pk")
        )
        self.fields["transfers"].label_from_instance = _transfer_label


def _transfer_label(transfer) -> str:
    license = transfer.license
    return (f"#{transfer.pk}: CAL #{license.pk} {transfer.source_machine.hostname} -> "
            f"{transfer.target_machine.hostname} ({license.get_product_version_display()}, "
            f"{license.license_server.name})")


class RevokeLicenseForm(forms.Form):
    revoked_at = forms.DateTimeField(
        required=False, widget=DateTimeInput, label="Revoked at",
        help_text="When it was revoked in RD Licensing Manager; now when left empty.",
    )
    note = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}),
                           help_text="e.g. the computer was reimaged; kept with the revocation.")


class InstallReissueForm(forms.Form):
    key_pack_id = forms.IntegerField(label="KeyPackId of the reissued pack", min_value=0)
    total_licenses = forms.IntegerField(label="CALs granted", min_value=1)
    installed_on = forms.DateField(required=False, widget=DateInput)
    expires_on = forms.DateField(required=False, widget=DateInput)
    description = forms.CharField(required=False, max_length=255)
