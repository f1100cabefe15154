"""The recommendations run: read every product interaction from the events (one GROUP BY over the product events,
then the newest event that describes each product, by id), rebuild the catalog (Product) and the item-to-item table
(ProductAffinity), write each person's top recommendation (``top_recommendation``), and measure item to item beside
popularity on a time split (see profiles.insights.recommendations for the model).

Interactions: "Product Viewed" and "Product Added" events carry one product in their properties; "Order Completed"
carries the order's lines in ``products``. A product is named by ``product_id`` (else ``sku``), as Segment's
e-commerce spec sends it. People without any product interaction get no value (``recommendations_for`` answers
them with the most popular products on the fly).

The evaluation trains on the interactions before ``now - TEST_DAYS`` and tests on the products each person bought
after that moment and had not bought before: hit rate, precision and recall at ``TOP_N``, of item to item and of
the popularity baseline, both leaving out what the person bought.
"""

from __future__ import annotations

import time as clock
from dataclasses import dataclass
from datetime import timedelta

import numpy as np
from django.db import connection, transaction
from django.utils import timezone

from profiles.insights import recommendations as reco
from profiles.models import Event, InsightModel, Product, ProductAffinity
from profiles.services.computed import EVENT_TABLE, _db_time, _postgres
from profiles.services.insights import insight_run_record, insight_values_write

TEST_DAYS = 30
WRITE_BATCH = 5000
POPULAR_KEPT = 50  # the most popular products kept in the run's parameters


def _key_sql(source: str) -> str:
    """SQL for a product's id in a JSON object ``source`` (product_id, else sku; numbers as text, blanks NULL)."""
    if _postgres():
        def one(key):
            return (f"CASE WHEN jsonb_typeof({source} -> '{key}') IN ('string', 'number') "
                    f"THEN NULLIF(btrim({source} ->> '{key}'), '') END")
    else:
        def one(key):
            return (f"CASE WHEN json_type({source}, '$.{key}') IN ('text', 'integer', 'real') "
                    f"THEN NULLIF(trim(CAST(json_extract({source}, '$.{key}') AS TEXT)), '') END")
    return f"COALESCE({one('product_id')}, {one('sku')})"


def _named_sql(source: str) -> str:
    """SQL: whether the JSON object ``source`` gives a product name (a JSON string)."""
    if _postgres():
        return f"jsonb_typeof({source} -> 'name') = 'string'"
    return f"json_type({source}, '$.name') = 'text'"


def _touched_sql() -> str:
    """Every product interaction: (profile_id, product, kind, timestamp, id, named: whether it gives the product's
    name); the lines of orders unnested (jsonb_array_elements on PostgreSQL, json_each on SQLite)."""
    view, add, purchase = reco.VIEW, reco.ADD, reco.PURCHASE
    if _postgres():
        lines = ("CROSS JOIN LATERAL jsonb_array_elements(CASE WHEN jsonb_typeof(e.properties -> 'products') = "
                 "'array' THEN e.properties -> 'products' ELSE '[]'::jsonb END) AS line")
        is_object = "jsonb_typeof(line.value) = 'object'"
    else:
        lines = (", json_each(CASE WHEN json_type(e.properties, '$.products') = 'array' THEN e.properties "
                 "ELSE '[]' END, '$.products') AS line")
        is_object = "line.type = 'object'"
    return (f"SELECT e.profile_id, {_key_sql('e.properties')} AS product, "
            f"CASE e.name WHEN %s THEN {add} ELSE {view} END AS kind, e.timestamp, e.id, "
            f"{_named_sql('e.properties')} AS named FROM {EVENT_TABLE} e WHERE e.name IN (%s, %s) "
            f"UNION ALL "
            f"SELECT e.profile_id, {_key_sql('line.value')}, {purchase}, e.timestamp, e.id, "
            f"{_named_sql('line.value')} FROM {EVENT_TABLE} e {lines} WHERE e.name = %s AND {is_object}")


@dataclass
class Read:
    """The interactions grouped per (person, product, kind): how many, whether any happened before the cutoff and
    the newest event (by id) that describes the product (that names it, else any); with the index maps of people
    (profile ids) and products (sorted)."""

    profile_ids: np.ndarray
    products: list[str]
    people: np.ndarray
    items: np.ndarray
    kinds: np.ndarray
    counts: np.ndarray
    early: np.ndarray
    newest: np.ndarray

    def views(self) -> np.ndarray:
        """Per product: its Product Viewed events (Product.views, the tie-break of popularity)."""
        return np.bincount(self.items, weights=self.counts * (self.kinds == reco.VIEW), minlength=len(self.products))

    def interactions(self, mask=None) -> reco.Interactions:
        people, items, kinds = ((self.people, self.items, self.kinds) if mask is None
                                else (self.people[mask], self.items[mask], self.kinds[mask]))
        return reco.Interactions.of(people, items, kinds, n_people=len(self.profile_ids),
                                    n_items=len(self.products))


def interactions_read(*, cutoff) -> Read:
    """One GROUP BY over the product interactions (see the module)."""
    sql = (f"SELECT t.profile_id, t.product, t.kind, COUNT(*), MAX(CASE WHEN t.timestamp < %s THEN 1 ELSE 0 END), "
           f"COALESCE(MAX(CASE WHEN t.named THEN t.id END), MAX(t.id)) "
           f"FROM ({_touched_sql()}) t WHERE t.product IS NOT NULL GROUP BY t.profile_id, t.product, t.kind")
    index: dict[str, int] = {}
    profile_col, item_col, kind_col, count_col, early_col, newest_col = [], [], [], [], [], []
    with transaction.atomic(), connection.cursor() as cursor:
        if _postgres():  # one scan of the product events: compiling it (JIT) costs more than it saves
            cursor.execute("SET LOCAL jit = off")
        cursor.execute(sql, [_db_time(cutoff), reco.ADD_EVENT, reco.VIEW_EVENT, reco.ADD_EVENT, reco.ORDER_EVENT])
        for profile_id, product, kind, count, early, newest in cursor.fetchall():
            profile_col.append(profile_id)
            item_col.append(index.setdefault(product, len(index)))
            kind_col.append(kind)
            count_col.append(count)
            early_col.append(early)
            newest_col.append(newest)
    products = sorted(index)
    renumber = np.empty(len(index), dtype=np.int64)
    renumber[[index[product] for product in products]] = np.arange(len(products))
    profile_ids, people = np.unique(np.array(profile_col, dtype=np.int64), return_inverse=True)
    return Read(profile_ids, products, people.astype(np.int64), renumber[np.array(item_col, dtype=np.int64)],
                np.array(kind_col, dtype=np.int8), np.array(count_col, dtype=np.int64),
                np.array(early_col, dtype=bool), np.array(newest_col, dtype=np.int64))


def _description(properties, product: str) -> tuple[str, str, float | None]:
    """(name, category, price) of ``product`` in an event's properties (or the matching line of an order)."""
    lines = properties.get("products") if isinstance(properties, dict) else None
    if isinstance(lines, list):
        properties = next((line for line in lines if reco.product_key(line) == product), {})
    if not isinstance(properties, dict):
        return "", "", None
    name, category, price = properties.get("name"), properties.get("category"), properties.get("price")
    return (name if isinstance(name, str) else "", category if isinstance(category, str) else "",
            float(price) if isinstance(price, int | float) and not isinstance(price, bool) else None)


def catalog_read(data: Read) -> dict[str, tuple[str, str, float | None]]:
    """product -> (name, category, price) as the newest event that describes it says (the events by id, in
    batches)."""
    if not len(data.items):
        return {}
    order = np.lexsort((data.newest, data.items))
    last = np.ones(len(order), dtype=bool)
    last[:-1] = data.items[order][1:] != data.items[order][:-1]
    wanted: dict[int, list[str]] = {}
    for item, event_id in zip(data.items[order][last], data.newest[order][last], strict=True):
        wanted.setdefault(int(event_id), []).append(data.products[item])
    ids = sorted(wanted)
    catalog = {}
    for start in range(0, len(ids), WRITE_BATCH):
        for pk, properties in Event.objects.filter(pk__in=ids[start:start + WRITE_BATCH]).values_list(
                "pk", "properties"):
            for product in wanted[pk]:
                catalog[product] = _description(properties, product)
    return catalog


@transaction.atomic
def products_rebuild(*, data: Read, catalog: dict, similarity: reco.Similarity | None) -> tuple[int, int]:
    """Replace the catalog (Product: names, prices and popularity) and the item-to-item table (ProductAffinity)
    with what the run computed. Returns (products, affinities)."""
    n = len(data.products)
    views = data.views()
    purchases = np.bincount(data.items, weights=data.counts * (data.kinds == reco.PURCHASE), minlength=n)
    buyers = np.bincount(data.items, weights=data.kinds == reco.PURCHASE, minlength=n)
    started = timezone.now()  # every row written below gets a later updated_at (auto_now)
    rows = []
    for index, product in enumerate(data.products):
        name, category, price = catalog.get(product, ("", "", None))
        rows.append(Product(product_id=product[:200], name=name[:300], category=category[:200], price=price,
                            views=int(views[index]), purchases=int(purchases[index]), buyers=int(buyers[index])))
    for start in range(0, len(rows), WRITE_BATCH):
        Product.objects.bulk_create(rows[start:start + WRITE_BATCH], update_conflicts=True,
                                    unique_fields=["product_id"],
                                    update_fields=["name", "category", "price", "views", "purchases", "buyers",
                                                   "updated_at"])
    Product.objects.filter(updated_at__lt=started).delete()  # products no event names any more
    ProductAffinity.objects.all().delete()
    pairs = similarity.pairs() if similarity is not None else []
    affinities = [ProductAffinity(product=data.products[i][:200], other=data.products[j][:200], score=round(s, 6),
                                  co_purchases=p, co_views=v) for i, j, s, p, v in pairs]
    for start in range(0, len(affinities), WRITE_BATCH):
        ProductAffinity.objects.bulk_create(affinities[start:start + WRITE_BATCH])
    return len(rows), len(affinities)


def _evaluation(data: Read) -> dict:
    """Item to item and popularity, trained before the cutoff, on the first purchases after it."""
    train = data.interactions(data.early)
    test = (data.kinds == reco.PURCHASE) & ~data.early
    popular = reco.popularity(train)
    similarity = reco.item_similarity(train)
    found = reco.evaluate(reco.recommend(train, similarity, popular).items, data.people[test], data.items[test])
    baseline = reco.evaluate(reco.recommend(train, None, popular).items, data.people[test], data.items[test])
    k = reco.TOP_N
    return {"test_days": TEST_DAYS, "k": k, "test_people": found["people"],
            "train_interactions": int(data.early.sum()), "test_purchases": int(test.sum()),
            f"hit_rate_at_{k}": found["hit_rate"], f"precision_at_{k}": found["precision"],
            f"recall_at_{k}": found["recall"], "baseline": "popularity (the products with the most buyers)",
            f"baseline_hit_rate_at_{k}": baseline["hit_rate"], f"baseline_precision_at_{k}": baseline["precision"],
            f"baseline_recall_at_{k}": baseline["recall"]}


def _train(record: InsightModel) -> None:
    now = timezone.now()
    cutoff = now - timedelta(days=TEST_DAYS)
    begin = clock.monotonic()
    data = interactions_read(cutoff=cutoff)
    catalog = catalog_read(data)
    read_seconds = clock.monotonic() - begin
    params = {"purchase_weight": reco.PURCHASE_WEIGHT, "view_weight": reco.VIEW_WEIGHT, "shrink": reco.SHRINK,
              "neighbours": reco.NEIGHBOURS, "history_weights": {"view": reco.HISTORY_WEIGHTS[reco.VIEW],
                                                                  "add": reco.HISTORY_WEIGHTS[reco.ADD],
                                                                  "purchase": reco.HISTORY_WEIGHTS[reco.PURCHASE]}}
    record.cutoff_at = cutoff
    record.training_rows = len(data.people)
    if not len(data.people):
        record.status, record.method = InsightModel.Status.HEURISTIC, "popularity"
        record.reason = (f"No product events yet ({reco.VIEW_EVENT}, {reco.ADD_EVENT} or {reco.ORDER_EVENT} "
                         "with a product_id or sku): there is nothing to recommend.")
        record.metrics, record.params = {"products": 0, "people": 0}, {**params, "popular": []}
        products_rebuild(data=data, catalog={}, similarity=None)
        insight_values_write(values={"top_recommendation": {}}, full=True, now=now)
        record.train_seconds = round(clock.monotonic() - begin, 3)
        return
    metrics = _evaluation(data)
    everything = data.interactions()
    similarity = reco.item_similarity(everything)
    popular = reco.popularity(everything, data.views())  # the order of the Product list
    record.train_seconds = round(clock.monotonic() - begin, 3)
    begin = clock.monotonic()
    found = reco.recommend(everything, similarity if similarity.score.nnz else None, popular)
    products, affinities = products_rebuild(data=data, catalog=catalog, similarity=similarity)
    first = found.first()
    values = {int(data.profile_ids[person]): str(data.products[item])
              for person, item in enumerate(first) if item >= 0}
    insight_values_write(values={"top_recommendation": values}, full=True, now=now)
    record.scored_rows = len(values)
    record.score_seconds = round(clock.monotonic() - begin, 3)
    metrics.update({"products": products, "affinities": affinities, "people": len(data.profile_ids),
                    "read_seconds": round(read_seconds, 3),
                    "from_item_to_item": round(float((found.because[:, 0] != reco.POPULAR).mean()), 4)})
    record.metrics = metrics
    record.params = {**params, "popular": [str(data.products[i]) for i in popular[:POPULAR_KEPT]]}
    if similarity.score.nnz:
        record.status, record.method = InsightModel.Status.OK, "item_to_item"
    else:
        record.status, record.method = InsightModel.Status.HEURISTIC, "popularity"
        record.reason = ("No one has viewed or bought two different products yet, so no product is known to go with "
                         "another: everyone gets the most popular products they did not buy.")


def run() -> InsightModel:
    return insight_run_record(kind=InsightModel.Kind.RECOMMENDATIONS, run=_train)
