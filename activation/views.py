"""The activation UI: activations with their status and sync history, destinations (configuration per kind, test
connection, a secret shown once), syncs, the delivery log and dead letters with re-send. Marketing and Admin
manage; Sales and Privacy look. Views are thin: forms check the shape, services write, selectors read."""

from django.shortcuts import get_object_or_404, redirect
from django.views import View

from activation import selectors, services, tasks
from activation.destinations import ConfigInvalid
from activation.filters import ActivationFilter, DeliveryFilter, DestinationFilter, SyncFilter
from activation.forms import ActivationForm, DestinationForm, KindForm
from activation.models import Activation, Delivery, Destination, Sync
from cdp.core.htmx import notify, render_page
from cdp.core.views import CDPPageView, CDPViewMixin, FilteredListView

HISTORY = 20


class ActivationListView(FilteredListView):
    template_name = "activation/activation_list.html"
    filterset_class = ActivationFilter
    permission_required = "activation.view_activation"

    def get_queryset(self):
        return selectors.activations_with_status()


class ActivationDetailView(CDPPageView):
    """An activation: its settings, status, sync history with counts (polled while a sync runs) and deliveries."""

    template_name = "activation/activation_detail.html"
    partial = "history"
    permission_required = "activation.view_activation"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        activation = get_object_or_404(selectors.activations_with_status(), pk=self.kwargs["pk"])
        syncs = list(activation.syncs.order_by("-started_at", "-id")[:HISTORY])
        context.update(activation=activation, syncs=syncs,
                       running=any(sync.status == Sync.Status.RUNNING for sync in syncs),
                       deliveries=selectors.delivery_list().filter(activation=activation)[:HISTORY])
        return context


class ActivationCreateView(CDPPageView):
    template_name = "activation/activation_form.html"
    permission_required = "activation.add_activation"

    def get_activation(self) -> Activation | None:
        return None

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        activation = self.get_activation()
        context.setdefault("form", ActivationForm(activation=activation))
        context["activation"] = activation
        return context

    def post(self, request, *args, **kwargs):
        activation = self.get_activation()
        form = ActivationForm(request.POST, activation=activation)
        if form.is_valid():
            try:
                if activation is None:
                    activation = services.activation_create(**form.activation_fields())
                else:
                    activation = services.activation_update(activation=activation, **form.activation_fields())
            except services.ActivationInvalid as error:
                form.add_service_errors(error.errors)
            else:
                return notify(request, redirect("activation:detail", activation.pk), f"{activation.name} is saved.",
                              events={"activationsChanged": {"id": activation.pk}})
        return self.render_to_response(self.get_context_data(form=form), status=400)


class ActivationEditView(ActivationCreateView):
    permission_required = "activation.change_activation"

    def get_activation(self) -> Activation:
        return get_object_or_404(Activation.objects.select_related("destination"), pk=self.kwargs["pk"])


class ActivationSyncView(CDPViewMixin, View):
    """Sync now: the sync runs as a task; the page polls its history."""

    permission_required = "activation.change_activation"

    def post(self, request, pk):
        activation = get_object_or_404(Activation, pk=pk)
        tasks.activation_sync.delay(activation.pk, Sync.Trigger.MANUAL, request.user.pk)
        return notify(request, redirect("activation:detail", activation.pk),
                      f"A sync of {activation.name} has started.", events={"syncStarted": {"id": activation.pk}})


# --- destinations ---------------------------------------------------------------------------------------------------


class DestinationListView(FilteredListView):
    template_name = "activation/destination_list.html"
    filterset_class = DestinationFilter
    permission_required = "activation.view_destination"

    def get_queryset(self):
        return selectors.destinations_with_usage()


class DestinationCreateView(CDPPageView):
    """GET ?kind=webhook: the form of that kind. POST: create; a secret the CDP made is shown on the answer, once."""

    template_name = "activation/destination_form.html"
    partial = "config"
    permission_required = "activation.add_destination"

    def get_destination(self) -> Destination | None:
        return None

    def kind(self) -> str:
        destination = self.get_destination()
        if destination is not None:
            return destination.kind
        form = KindForm({"kind": self.request.GET.get("kind") or self.request.POST.get("kind")
                         or Destination.Kind.WEBHOOK})
        return form.cleaned_data["kind"] if form.is_valid() else Destination.Kind.WEBHOOK

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        destination = self.get_destination()
        kind = self.kind()
        context.setdefault("form", DestinationForm(kind=kind, destination=destination))
        context.update(destination=destination, kind=kind, kind_form=KindForm(initial={"kind": kind}))
        return context

    def post(self, request, *args, **kwargs):
        destination = self.get_destination()
        form = DestinationForm(request.POST, kind=self.kind(), destination=destination)
        if form.is_valid():
            try:
                if destination is None:
                    saved = services.destination_create(name=form.cleaned_data["name"], kind=self.kind(),
                                                        config=form.config(), secrets=form.secrets(),
                                                        enabled=form.cleaned_data["enabled"])
                else:
                    saved = services.destination_update(destination=destination, name=form.cleaned_data["name"],
                                                        config=form.config(), secrets=form.secrets(),
                                                        enabled=form.cleaned_data["enabled"])
            except ConfigInvalid as error:
                form.add_service_errors(error.errors)
            else:
                if saved.new_secrets:  # shown on this answer only; never stored anywhere it could be shown again
                    return render_page(request, "activation/destination_secret.html",
                                       {"destination": saved.destination, "new_secrets": saved.new_secrets})
                return notify(request, redirect("activation:destination-list"),
                              f"{saved.destination.name} is saved.", events={"destinationsChanged": {}})
        return self.render_to_response(self.get_context_data(form=form), status=400)


class DestinationEditView(DestinationCreateView):
    permission_required = "activation.change_destination"

    def get_destination(self) -> Destination:
        return get_object_or_404(Destination, pk=self.kwargs["pk"])


class DestinationTestView(CDPViewMixin, View):
    """Test the connection (a harmless request) and show the outcome in place."""

    permission_required = "activation.change_destination"

    def post(self, request, pk):
        destination = get_object_or_404(Destination, pk=pk)
        ok, message = services.destination_test(destination=destination)
        response = render_page(request, "activation/destination_list.html",
                               {"row": destination, "perms_change": True}, partial="test_result")
        if not request.htmx:
            response = redirect("activation:destination-edit", destination.pk)
        return notify(request, response, f"Connection test: {message}", level="success" if ok else "error")


# --- syncs and deliveries ------------------------------------------------------------------------------------------


class SyncListView(FilteredListView):
    template_name = "activation/sync_list.html"
    filterset_class = SyncFilter
    permission_required = "activation.view_sync"

    def get_queryset(self):
        return selectors.sync_list()


class DeliveryListView(FilteredListView):
    template_name = "activation/delivery_list.html"
    filterset_class = DeliveryFilter
    permission_required = "activation.view_delivery"
    title, tab = "Deliveries", "deliveries"

    def get_queryset(self):
        return selectors.delivery_list()

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.update(title=self.title, tab=self.tab)
        return context


class DeadLetterListView(DeliveryListView):
    title, tab = "Dead letters", "dead"

    def get_queryset(self):
        return selectors.dead_letters()


class DeliveryResendView(CDPViewMixin, View):
    permission_required = "activation.change_delivery"

    def post(self, request, pk):
        delivery = get_object_or_404(Delivery, pk=pk)
        try:
            services.delivery_resend(delivery=delivery, actor=request.user)
        except services.NotResendable as error:
            return notify(request, redirect("activation:dead-letters"), str(error), level="error")
        return notify(request, redirect("activation:dead-letters"),
                      f"Delivery {delivery.pk} is being sent again with its idempotency key.",
                      events={"deliveriesChanged": {"id": delivery.pk}})
