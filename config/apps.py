"""The project's admin, Django's with the checks of :mod:`config.admin` (``admin.site``)."""

from django.contrib.admin.apps import AdminConfig


class ProjectAdminConfig(AdminConfig):
    default_site = "config.admin.ProjectAdminSite"
