"""The per-model rollup gains the source dimension (the dashboard's default view shows live
traffic only). Its rows are derived again from the full rollup, which has always held the
source: sums and histograms merge exactly, so no raw row needs reading and nothing is lost."""

from django.db import migrations, models

from metrics.histogram import hist_encode, hist_merge_encoded

MEASURES = (
    "count",
    "input_tokens",
    "output_tokens",
    "cached_tokens",
    "cost_usd",
    "cost_unknown",
    "latency_sum_ms",
    "latency_count",
    "ttft_sum_ms",
    "ttft_count",
)


def by_model_from_full_rollup(apps, schema_editor):
    full = apps.get_model("metrics", "CallRollup")
    per_model = apps.get_model("metrics", "CallRollupByModel")
    per_model.objects.all().delete()
    groups: dict = {}
    batch = []

    def flush():
        for (grain, bucket, model, source, status), g in groups.items():
            batch.append(
                per_model(
                    grain=grain,
                    bucket=bucket,
                    model_name=model,
                    source=source,
                    status=status,
                    **{m: g[m] for m in MEASURES},
                    latency_hist=hist_encode(g["latency_hist"]),
                    ttft_hist=hist_encode(g["ttft_hist"]),
                )
            )
        groups.clear()
        if len(batch) >= 1000:
            per_model.objects.bulk_create(batch, batch_size=1000)
            batch.clear()

    current = None
    rows = full.objects.order_by("grain", "bucket").iterator(chunk_size=2000)
    for r in rows:
        if (r.grain, r.bucket) != current:
            flush()
            current = (r.grain, r.bucket)
        key = (r.grain, r.bucket, r.model_name, r.source, r.status)
        g = groups.get(key)
        if g is None:
            g = groups[key] = {m: 0 for m in MEASURES} | {"latency_hist": {}, "ttft_hist": {}}
        for m in MEASURES:
            g[m] += getattr(r, m)
        hist_merge_encoded(g["latency_hist"], r.latency_hist)
        hist_merge_encoded(g["ttft_hist"], r.ttft_hist)
    flush()
    per_model.objects.bulk_create(batch, batch_size=1000)


class Migration(migrations.Migration):
    dependencies = [
        ("metrics", "0003_rollup_by_model"),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name="callrollupbymodel",
            name="rollup_model_unique",
        ),
        migrations.AddField(
            model_name="callrollupbymodel",
            name="source",
            field=models.CharField(blank=True, default="", max_length=16),
        ),
        migrations.AddConstraint(
            model_name="callrollupbymodel",
            constraint=models.UniqueConstraint(
                fields=("grain", "bucket", "model_name", "source", "status"), name="rollup_model_source_unique"
            ),
        ),
        migrations.RunPython(by_model_from_full_rollup, migrations.RunPython.noop),
    ]
