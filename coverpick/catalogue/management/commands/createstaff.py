"""coverpick createstaff: create a staff account, or make an existing account staff."""

from __future__ import annotations

import getpass
import logging
import os
import sys

from django.contrib.auth import get_user_model
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = (
        "Create a staff account that can label covers, pin covers and read reports, or make an existing "
        "account staff. The password comes from --password-from-env or an interactive prompt; an existing "
        "account keeps its password when neither is given."
    )

    def add_arguments(self, parser):
        parser.add_argument("username", help="Login name of the account")
        parser.add_argument(
            "--password-from-env", metavar="VAR",
            help="Read the password from environment variable VAR instead of prompting",
        )

    def handle(self, username, password_from_env, **options):
        username = username.strip()
        if not username:
            raise CommandError("Invalid username: it is empty.")
        User = get_user_model()
        existing = User.objects.filter(username=username).first()
        if existing is None:
            # The rule the login form and Django's createsuperuser apply: letters, digits and @ . + - _ only.
            try:
                User._meta.get_field(User.USERNAME_FIELD).run_validators(username)
            except ValidationError as exc:
                raise CommandError(f"Invalid username {username!r}: " + " ".join(exc.messages)) from exc
        password = self._password(password_from_env, required=existing is None)

        with transaction.atomic():
            user = existing or User(username=username)
            if password is not None:
                try:
                    validate_password(password, user)
                except ValidationError as exc:
                    raise CommandError("Password rejected: " + " ".join(exc.messages)) from exc
                user.set_password(password)
            user.is_staff = True
            user.is_active = True
            user.save()

        action = "Updated" if existing else "Created"
        logger.info("%s staff account: username=%s password_changed=%s", action, username, password is not None)
        self.stdout.write(f"{action} staff account {username!r}" + ("" if password is not None else " (password unchanged)"))

    def _password(self, variable: str | None, required: bool) -> str | None:
        if variable:
            value = os.environ.get(variable)
            if not value:
                raise CommandError(f"Environment variable {variable} is missing or empty. Export the password in it and run again.")
            return value
        if not sys.stdin.isatty():
            if required:
                raise CommandError(
                    "No password given for the new account. Pass --password-from-env VAR, or run the command in a terminal."
                )
            return None
        first = getpass.getpass("Password: ")
        if not first and not required:
            return None
        if first != getpass.getpass("Password (again): "):
            raise CommandError("The two passwords do not match, so nothing was changed.")
        if not first:
            raise CommandError("The password is empty, so nothing was changed.")
        return first
