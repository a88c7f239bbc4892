"""HTML forms for client machines. They translate input; the services decide."""

from django import forms

from inventory.models import ClientMachine


class MachineForm(forms.ModelForm):
    class Meta:
        model = ClientMachine
        fields = ["hostname", "os_edition", "hardware_id", "asset_tag", "location", "owner", "notes"]
        widgets = {"notes": forms.Textarea(attrs={"rows": 2})}

    def _post_clean(self):
        # machine_create validates the row (host name rules, uniqueness) itself.
        pass


class RetireMachineForm(forms.Form):
    confirm = forms.BooleanField(
        label="Yes, retire this machine: it keeps its history, and nothing is issued or "
        "transferred to it again."
    )
