"""Forms of the profiles UI. The list page's search form is ProfileFilter's own form (profiles.filters)."""

from django import forms

from profiles.models import Note

NOTE_MAX_LENGTH = 5000


class NoteForm(forms.Form):
    kind = forms.ChoiceField(choices=Note.Kind.choices, initial=Note.Kind.NOTE, label="Kind")
    channel = forms.ChoiceField(choices=Note.Channel.choices, initial=Note.Channel.CALL_CENTER, label="Channel")
    text = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}), max_length=NOTE_MAX_LENGTH, label="Note",
                           help_text="What the customer said or wants; visible to colleagues who may see "
                                     "personal data.")

    def clean_text(self):
        text = self.cleaned_data["text"].strip()
        if not text:
            raise forms.ValidationError("Write what happened.")
        return text
