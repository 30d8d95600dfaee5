"""ensure_admin makes a first login exactly once; routing.W001 flags providers missing their key."""

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

from routing.checks import check_provider_keys
from routing.models import ProviderKind
from tests.factories import ModelConfigFactory, ProviderFactory, UserFactory

pytestmark = pytest.mark.django_db
User = get_user_model()


def run_ensure_admin() -> str:
    out = StringIO()
    call_command("ensure_admin", stdout=out)
    return out.getvalue()


def test_it_creates_the_admin_from_the_environment(monkeypatch):
    monkeypatch.setenv("ORCHESTRATOR_ADMIN_USER", "ops")
    monkeypatch.setenv("ORCHESTRATOR_ADMIN_PASSWORD", "a-long-and-unusual-passphrase")
    output = run_ensure_admin()
    user = User.objects.get(username="ops")
    assert user.is_superuser and user.is_staff
    assert user.check_password("a-long-and-unusual-passphrase")
    assert "a-long-and-unusual-passphrase" not in output
    assert "a-long-and-unusual-passphrase" not in user.password


def test_it_generates_a_password_and_prints_it_once(monkeypatch):
    monkeypatch.delenv("ORCHESTRATOR_ADMIN_USER", raising=False)
    monkeypatch.delenv("ORCHESTRATOR_ADMIN_PASSWORD", raising=False)
    output = run_ensure_admin()
    password = output.split("password: ")[1].split()[0]
    user = User.objects.get(username="admin")
    assert user.check_password(password)
    assert password not in user.password
    second = run_ensure_admin()
    assert "nothing to do" in second and password not in second
    assert User.objects.count() == 1


def test_it_does_nothing_when_a_superuser_exists(monkeypatch):
    UserFactory(username="root", is_superuser=True, is_staff=True)
    monkeypatch.setenv("ORCHESTRATOR_ADMIN_USER", "other")
    assert "nothing to do" in run_ensure_admin()
    assert not User.objects.filter(username="other").exists()


def test_it_refuses_a_weak_password_from_the_environment(monkeypatch):
    monkeypatch.setenv("ORCHESTRATOR_ADMIN_PASSWORD", "password")
    with pytest.raises(CommandError, match="too weak"):
        run_ensure_admin()
    assert not User.objects.exists()


def test_it_does_not_take_over_an_existing_ordinary_user(monkeypatch):
    UserFactory(username="admin")
    monkeypatch.delenv("ORCHESTRATOR_ADMIN_USER", raising=False)
    monkeypatch.delenv("ORCHESTRATOR_ADMIN_PASSWORD", raising=False)
    with pytest.raises(CommandError, match="exists but is not a superuser"):
        run_ensure_admin()
    assert not User.objects.get(username="admin").is_superuser


def test_w001_flags_a_provider_serving_models_without_its_key(monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    provider = ProviderFactory(name="anthropic", kind=ProviderKind.ANTHROPIC, api_key_env="ANTHROPIC_API_KEY")
    ProviderFactory(name="unused", kind=ProviderKind.OPENAI, api_key_env="OPENAI_API_KEY")
    ModelConfigFactory(provider=provider)
    warnings = check_provider_keys()
    assert [w.id for w in warnings] == ["routing.W001"]
    assert "needs key: set ANTHROPIC_API_KEY" in warnings[0].msg
    monkeypatch.setenv("ANTHROPIC_API_KEY", "x")
    assert check_provider_keys() == []


def test_it_hands_a_generated_login_to_welcome_which_shows_it_once(monkeypatch, tmp_path):
    monkeypatch.delenv("ORCHESTRATOR_ADMIN_USER", raising=False)
    monkeypatch.delenv("ORCHESTRATOR_ADMIN_PASSWORD", raising=False)
    handoff = tmp_path / "first-login"
    out = StringIO()
    call_command("ensure_admin", "--quiet", "--handoff", str(handoff), stdout=out)
    assert out.getvalue() == ""
    assert handoff.stat().st_mode & 0o077 == 0
    first = StringIO()
    call_command("welcome", "--url", "http://127.0.0.1:8000/", "--handoff", str(handoff), stdout=first)
    password = first.getvalue().split("password ")[1].split()[0]
    assert User.objects.get(username="admin").check_password(password)
    assert "http://127.0.0.1:8000/" in first.getvalue()
    assert not handoff.exists()
    again = StringIO()
    call_command("welcome", "--url", "http://127.0.0.1:8000/", "--handoff", str(handoff), stdout=again)
    assert password not in again.getvalue()
    assert "changepassword admin" in again.getvalue()


def test_ensure_admin_quiet_prints_nothing_when_an_admin_exists():
    UserFactory(username="root", is_superuser=True, is_staff=True)
    out = StringIO()
    call_command("ensure_admin", "--quiet", stdout=out)
    assert out.getvalue() == ""


def test_welcome_names_the_providers_whose_key_is_unset(monkeypatch):
    monkeypatch.delenv("WELCOME_TEST_KEY", raising=False)
    provider = ProviderFactory(name="needs-key", kind=ProviderKind.OPENAI, api_key_env="WELCOME_TEST_KEY")
    ModelConfigFactory(provider=provider)
    out = StringIO()
    call_command("welcome", "--url", "http://x/", stdout=out)
    assert "needs-key (WELCOME_TEST_KEY)" in out.getvalue()
    monkeypatch.setenv("WELCOME_TEST_KEY", "set")
    out = StringIO()
    call_command("welcome", "--url", "http://x/", stdout=out)
    assert "needs-key" not in out.getvalue()


def test_providers_missing_a_key_share_one_warning(monkeypatch):
    for env in ("W001_A", "W001_B", "W001_C"):
        monkeypatch.delenv(env, raising=False)
        ModelConfigFactory(
            provider=ProviderFactory(name=env.lower(), kind=ProviderKind.OPENAI, api_key_env=env)
        )
    warnings = check_provider_keys()
    assert len(warnings) == 1
    assert all(f"set {env}" in warnings[0].msg for env in ("W001_A", "W001_B", "W001_C"))
