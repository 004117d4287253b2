"""A project's own AUTH_USER_MODEL, as Django's docs advise starting one."""

from django.contrib.auth.models import AbstractUser


class Person(AbstractUser):
    """The fields of auth.User, in a table of the project's own."""

    class Meta:
        db_table = "people"
