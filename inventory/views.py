"""Client machine pages: the list, adding a machine, and host name suggestions."""

from django.contrib import messages
from django.shortcuts import redirect, render

from core.lists import KeysetListView
from core.views import form_page, require_admin, run_service
from inventory import services
from inventory.filtersets import ClientMachineFilterSet
from inventory.forms import MachineForm
from inventory.models import ClientMachine, MachineStatus
from inventory.tables import MACHINES


class MachineListView(KeysetListView):
    filterset_class = ClientMachineFilterSet
    template_name = "inventory/machine_list.html"
    title = "Client machines"
    table = MACHINES
    empty_message = "No machines match these filters."

    def get_queryset(self):
        return ClientMachine.objects.all()


def machine_new(request):
    require_admin(request.user)
    form = MachineForm(request.POST or None)
    refusal = None
    if request.method == "POST" and form.is_valid():
        machine, refusal = run_service(
            form, lambda: services.machine_create(actor=request.user, **form.cleaned_data))
        if machine is not None:
            messages.success(request, f"Machine {machine.hostname} added.")
            return redirect(machine)
    return form_page(request, form, title="Add a client machine", submit="Add machine",
                     cancel_url="machine-list", refusal=refusal)


SUGGESTIONS = 10


def machine_suggestions(request):
    """Host names for a form's datalist, fetched by htmx as the user types."""
    prefix = (request.GET.get("target_machine") or request.GET.get("q") or "").strip()
    machines = []
    if prefix:
        machines = list(
            ClientMachine.objects.filter(hostname__istartswith=prefix, status=MachineStatus.ACTIVE)
            .order_by("hostname").values_list("hostname", "os_edition")[:SUGGESTIONS]
        )
    return render(request, "inventory/_machine_suggestions.html", {"machines": machines})
