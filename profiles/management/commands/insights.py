"""manage.py insights: the insight models' latest runs (status, quality beside the baseline, times); ``--run``
trains and scores them now, in this process (all, or ``--kind``)."""

from django.core.management.base import BaseCommand, CommandError

from profiles.models import InsightModel
from profiles.services.insights import insight_run


def _quality(run: InsightModel) -> str:
    metrics = run.metrics or {}
    if run.kind == InsightModel.Kind.CHURN and metrics.get("auc") is not None:
        baseline = metrics.get("baseline_auc")
        return f"AUC {metrics['auc']:.3f} (recency alone {baseline:.3f})" if baseline is not None else \
            f"AUC {metrics['auc']:.3f}"
    if run.kind == InsightModel.Kind.CLV and metrics.get("revenue"):
        return (f"revenue MAE {metrics['revenue']['mae']:,.2f} (historical average "
                f"{metrics['baseline_revenue']['mae']:,.2f}) over {metrics['holdout_days']} days")
    numbers = {key: value for key, value in metrics.items() if isinstance(value, int | float)}
    return ", ".join(f"{key} {value:,.3f}" if isinstance(value, float) else f"{key} {value:,}"
                     for key, value in list(numbers.items())[:4])


class Command(BaseCommand):
    help = "Show the insight models' latest runs; --run trains and scores them now (--kind for one)."

    def add_arguments(self, parser):
        parser.add_argument("--run", action="store_true", help="Train and score now, in this process.")
        parser.add_argument("--kind", action="append", default=[], choices=InsightModel.Kind.values,
                            help="Only this model (repeatable).")
        parser.add_argument("--if-never", action="store_true",
                            help="With --run: only the models that never ran (for make run).")

    def handle(self, *args, run: bool, kind: list[str], if_never: bool, verbosity: int, **options):
        kinds = kind or [InsightModel.Kind.RECOMMENDATIONS, InsightModel.Kind.CLV, InsightModel.Kind.CHURN]
        if run:
            failed = []
            for item in kinds:
                if if_never and InsightModel.objects.filter(kind=item).exists():
                    continue
                try:
                    done = insight_run(kind=item)
                except Exception as error:  # recorded on the run; the other models still run
                    failed.append(item)
                    self.stderr.write(f"insights: {item} failed: {error}")
                    continue
                seconds = (done.train_seconds or 0) + (done.score_seconds or 0)
                self.stdout.write(f"insights: {item}: {done.get_status_display()} ({done.method}), "
                                  f"{done.scored_rows:,} scored in {seconds:,.1f} s; {_quality(done)}")
            if failed:
                raise CommandError(f"insights: {', '.join(failed)} failed (the run records the reason).")
            return
        for item in kinds:
            latest = InsightModel.objects.filter(kind=item).first()
            if latest is None:
                self.stdout.write(f"{item:<16} never run")
                continue
            when = (latest.finished_at or latest.started_at).strftime("%Y-%m-%d %H:%M")
            reason = f" — {latest.reason}" if latest.reason else ""
            self.stdout.write(f"{item:<16} {latest.get_status_display():<28} {latest.method:<20} {when}  "
                              f"{latest.scored_rows:,} scored; {_quality(latest)}{reason}")
