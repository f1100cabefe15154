"""Forms of the consent and privacy UI."""

from django import forms

from cdp.core import retention
from consent.models import ConsentRecord, DataSubjectRequest, Purpose


class RequestCreateForm(forms.Form):
    kind = forms.ChoiceField(choices=DataSubjectRequest.Kind.choices)
    identifier_type = forms.ChoiceField(choices=DataSubjectRequest.IdentifierType.choices, label="Found by")
    identifier = forms.CharField(max_length=255, help_text="The person's email, phone, user id, anonymous id or "
                                                           "profile id")
    verification_note = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), required=False,
                                        help_text="How the requester's identity was verified (without copying "
                                                  "documents). With a note the request is verified at once.")
    changes = forms.JSONField(required=False, initial=dict, widget=forms.Textarea(attrs={"rows": 3}),
                              help_text='Rectification only: the corrected traits, e.g. {"last_name": "Weber"}')
    reference = forms.CharField(max_length=100, required=False, help_text="A ticket number in another system")


class VerifyForm(forms.Form):
    verification_note = forms.CharField(widget=forms.Textarea(attrs={"rows": 3}), label="How was the identity "
                                                                                         "verified?")


class ReasonForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), required=False)


class RequestNoteForm(forms.Form):
    text = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), label="Note")


class ConsentDecisionForm(forms.Form):
    purpose = forms.ModelChoiceField(queryset=Purpose.objects.all(), to_field_name="key")
    status = forms.ChoiceField(choices=ConsentRecord.Status.choices)
    text_version = forms.CharField(max_length=100, required=False, label="Wording / version",
                                   help_text="Which text the person agreed to (proof)")


class RetentionPolicyForm(forms.Form):
    category = forms.ChoiceField(choices=())
    scope = forms.CharField(max_length=100, required=False, help_text="Events only: the event type (track, page, "
                                                                      "...); empty: every event")
    days = forms.IntegerField(min_value=1, max_value=36500, help_text="Data older than this is deleted nightly")
    enabled = forms.BooleanField(required=False, initial=True)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["category"].choices = [(h.category, h.label) for h in retention.handlers()]
