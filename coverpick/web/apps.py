from django.apps import AppConfig


class WebConfig(AppConfig):
    name = "coverpick.web"
    label = "web"
