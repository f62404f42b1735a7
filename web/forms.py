"""The forms of the pages (Flask-WTF: every one carries a CSRF token)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField
from wtforms import (
    BooleanField,
    HiddenField,
    IntegerField,
    PasswordField,
    RadioField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, NumberRange, Optional, StopValidation
from wtforms.widgets import CheckboxInput, ListWidget

from files.codepages import codec_name, unknown_encoding


class LoginForm(FlaskForm):
    username = StringField("User name", validators=[DataRequired(), Length(max=150)])
    password = PasswordField("Password", validators=[DataRequired()])


class UploadForm(FlaskForm):
    file = FileField("CSV or Excel file")
    # an upload kept by the mass-deletion question: confirming needs no second upload of the file
    held = IntegerField(widget=HiddenField.widget, validators=[Optional()])
    comment = TextAreaField("What did you change, and why?", validators=[Optional(), Length(max=2000)])
    mode = RadioField(
        "The file holds",
        choices=[
            SelectChoice("full", "the whole table: rows missing from it are deleted"),
            SelectChoice("partial", "only some rows: add and update them, delete nothing"),
        ],
        default="full",
    )
    confirm_deletions = IntegerField("Confirm the number of deletions", validators=[Optional()])
    sheet = StringField("Sheet (Excel workbooks only)", validators=[Optional(), Length(max=100)])
    base_version = IntegerField(
        "Based on version",
        validators=[Optional(), NumberRange(min=0, max=10**9, message="Give the version as a whole number, e.g. 12.")],
    )

    encoding = StringField("Text encoding (CSV files only)", validators=[Optional(), Length(max=40)])

    def validate_encoding(self, field) -> None:
        """An encoding this app can read, named as a spreadsheet names it (Shift_JIS, windows-1250, …)."""
        if field.data and codec_name(field.data) is None:
            raise StopValidation(unknown_encoding(field.data))

    def validate_file(self, field) -> None:
        """A file is needed, unless one is kept for this confirmation."""
        if not field.data and self.held.data is None:
            raise StopValidation("Choose the file to upload.")


class RejectForm(FlaskForm):
    reason = TextAreaField(
        "Reason", validators=[DataRequired("Say why, so the submitter can fix it."), Length(max=2000)]
    )


class ActionForm(FlaskForm):
    """A form with nothing but its CSRF token (approve, withdraw, revoke, create token)."""


class CommentForm(FlaskForm):
    """A comment on a request, or (key, and column) on one of its rows or cells."""

    text = TextAreaField("Comment", validators=[DataRequired("Write the comment first."), Length(max=10_000)])
    key = HiddenField(validators=[Optional(), Length(max=2000)])
    column = HiddenField(validators=[Optional(), Length(max=200)])


class RequestChangesForm(FlaskForm):
    """A decider sends the request back to its submitter with what to fix."""

    changes_reason = TextAreaField(
        "What should change", validators=[DataRequired("Say what should change."), Length(max=10_000)]
    )


class RevisionForm(FlaskForm):
    """A corrected file for the same request (the upload's fields that apply to one table)."""

    file = FileField("Corrected CSV or Excel file", validators=[DataRequired("Choose the corrected file.")])
    revision_comment = TextAreaField("What did you correct?", validators=[Optional(), Length(max=2000)])
    mode = RadioField(
        "The file holds",
        choices=[
            SelectChoice("full", "the whole table: rows missing from it are deleted"),
            SelectChoice("partial", "only some rows: add and update them, delete nothing"),
        ],
        default="full",
    )
    confirm_deletions = IntegerField("Confirm the number of deletions", validators=[Optional()])
    base_version = IntegerField(
        "Based on version",
        validators=[Optional(), NumberRange(min=0, max=10**9, message="Give the version as a whole number, e.g. 12.")],
    )


class CheckboxesField(SelectMultipleField):
    """A choice of several, shown as a list of checkboxes."""

    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class AccountForm(FlaskForm):
    """A person's e-mail address and what they hear about (/account)."""

    email = StringField("E-mail address", validators=[Optional(), Length(max=320)])
    kinds = CheckboxesField("E-mail me when", validate_choice=True)
    watch = CheckboxesField("Watch tables: e-mail me every decision on them", validate_choice=True)
    digest = BooleanField("Send me one daily digest instead of an e-mail per event")
