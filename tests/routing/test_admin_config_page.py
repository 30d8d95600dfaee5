"""Import and export of the YAML config from the admin: preview writes nothing, apply is audited."""

from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from routing.config_io import config_export, config_import
from routing.models import ModelConfig, Provider

pytestmark = pytest.mark.django_db

DEFAULTS = Path(settings.BASE_DIR) / "config" / "defaults.yaml"
SMALL = "providers: [{name: sim, kind: simulated}]\nmodels: [{name: tiny, provider: sim, model_id: t, context_window: 100}]\n"
URL = reverse("admin:routing_config")


def test_the_page_renders_for_staff_with_a_link_from_every_routing_list(staff_client):
    assert staff_client.get(URL).status_code == 200
    changelist = staff_client.get(reverse("admin:routing_modelconfig_changelist")).content.decode()
    assert f'href="{URL}"' in changelist


def test_members_and_visitors_are_refused(member_client, client):
    assert member_client.get(URL).status_code == 302
    assert member_client.post(URL, {"text": SMALL, "action": "apply"}).status_code == 302
    assert client.get(reverse("admin:routing_config_export")).status_code == 302
    assert not Provider.objects.exists()


def test_export_downloads_the_same_yaml_as_the_command(staff_client):
    config_import(text=DEFAULTS.read_text())
    response = staff_client.get(reverse("admin:routing_config_export"))
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith('attachment; filename="orchestrator-config-')
    assert response.content.decode() == config_export()
    assert staff_client.post(reverse("admin:routing_config_export")).status_code == 405


def test_preview_lists_the_plan_and_writes_nothing(staff_client):
    response = staff_client.post(URL, {"text": SMALL, "action": "preview"})
    content = response.content.decode()
    assert response.status_code == 200
    assert '<li class="create">models: tiny: create</li>' in content
    assert "Apply 2 changes" in content
    assert not ModelConfig.objects.exists()


def test_apply_of_an_uploaded_file_writes_it_in_the_users_name(staff_client, staff_user):
    upload = SimpleUploadedFile("c.yaml", SMALL.encode(), content_type="application/yaml")
    response = staff_client.post(URL, {"file": upload, "action": "apply"})
    assert response.status_code == 302
    model = ModelConfig.objects.get(name="tiny")
    record = ModelConfig.history.filter(id=model.pk).first()
    assert record.history_user == staff_user
    assert record.history_change_reason == "import_config admin upload"


def test_an_invalid_file_shows_every_problem_and_changes_nothing(staff_client):
    response = staff_client.post(
        URL, {"text": SMALL.replace("kind: simulated", "kind: azure"), "action": "apply"}
    )
    content = response.content.decode()
    assert response.status_code == 400
    assert "The file was rejected; nothing was changed." in content
    assert "providers[0] (sim): kind: Input should be" in content
    assert not Provider.objects.exists()


def test_an_empty_form_asks_for_a_file_or_text(staff_client):
    response = staff_client.post(URL, {"text": "  ", "action": "preview"})
    assert response.status_code == 400
    assert "Choose a file or paste YAML." in response.content.decode()
