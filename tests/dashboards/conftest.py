from tests.metrics.conftest import config, now, traffic

__all__ = ["config", "now", "traffic"]
