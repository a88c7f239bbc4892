from django.apps import AppConfig


class LicensingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "licensing"
    verbose_name = "TS licensing"

    def ready(self):
        from licensing import tasks  # noqa: F401 - registers the job tasks
