from django.apps import AppConfig


class ShapesConfig(AppConfig):
    name = "tests.shapes"
    label = "shapes"
    verbose_name = "Adopter shapes (tests)"
    default_auto_field = "django.db.models.BigAutoField"
