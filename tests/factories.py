"""factory_boy factories for the routing config and call records."""

import uuid

import factory
from django.contrib.auth import get_user_model

from metrics.models import CallRecord, CallStatus
from routing.models import (
    Capability,
    ChainStep,
    FallbackChain,
    ModelConfig,
    Provider,
    ProviderKind,
    TaskRoute,
)


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@example.com")
    password = factory.django.Password("password")


class ProviderFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Provider
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"provider-{n}")
    kind = ProviderKind.SIMULATED
    options = factory.LazyFunction(lambda: {"latency_ms_mean": 0, "latency_ms_jitter": 0})


class CapabilityFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Capability
        django_get_or_create = ("slug",)

    slug = factory.Sequence(lambda n: f"capability_{n}")


class ModelConfigFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ModelConfig
        django_get_or_create = ("name",)
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"model-{n}")
    provider = factory.SubFactory(ProviderFactory)
    model_id = factory.LazyAttribute(lambda m: m.name)
    context_window = 128_000
    latency_ms = 500

    @factory.post_generation
    def capabilities(self, create, extracted, **kwargs):
        if create and extracted:
            for cap in extracted:
                if isinstance(cap, str):
                    cap = Capability.objects.get_or_create(slug=cap)[0]
                self.capabilities.add(cap)


class FallbackChainFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = FallbackChain
        django_get_or_create = ("name",)
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"chain-{n}")

    @factory.post_generation
    def models(self, create, extracted, **kwargs):
        if create and extracted:
            for position, model in enumerate(extracted):
                ChainStep.objects.create(chain=self, position=position, model=model)


class TaskRouteFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = TaskRoute
        django_get_or_create = ("task_type",)

    task_type = factory.Sequence(lambda n: f"task_{n}")


class CallRecordFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = CallRecord

    trace_id = factory.LazyFunction(lambda: uuid.uuid4().hex)
    model_name = "model-a"
    provider_name = "provider-a"
    status = CallStatus.OK
    latency_ms = 100.0
    input_tokens = 10
    output_tokens = 20
