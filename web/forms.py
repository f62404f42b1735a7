"""The forms of the pages (Flask-WTF: every one carries a CSRF token)."""

from __future__ import annotations

from flask_wtf import FlaskForm
from flask_wtf.file import FileField, FileRequired
from wtforms import IntegerField, PasswordField, RadioField, StringField, TextAreaField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import DataRequired, Length, NumberRange, Optional


class LoginForm(FlaskForm):
    username = StringField("User name", validators=[DataRequired(), Length(max=150)])
    password = PasswordField("Password", validators=[DataRequired()])


class UploadForm(FlaskForm):
    file = FileField("CSV or Excel file", validators=[FileRequired("Choose the file to upload.")])
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


class RejectForm(FlaskForm):
    reason = StringField("Reason", validators=[DataRequired("Say why, so the submitter can fix it."), Length(max=2000)])


class ActionForm(FlaskForm):
    """A form with nothing but its CSRF token (approve, withdraw, revoke, create token)."""
