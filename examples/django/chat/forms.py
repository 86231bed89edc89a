from django import forms


class JoinForm(forms.Form):
    name = forms.CharField(max_length=40, strip=True)


class MessageForm(forms.Form):
    text = forms.CharField(max_length=1000, strip=True)
    # The page picks an id so that a resent form is stored once; posts without one get a fresh id.
    id = forms.RegexField(regex=r"\A[A-Za-z0-9_-]{8,64}\Z", required=False)
