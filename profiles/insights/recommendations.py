"""Product recommendations: item to item from co-purchase and co-view, with a popularity fallback.

Pure computation over arrays (numpy and scipy.sparse); profiles.services.insights_recommendations reads the events
and writes the outputs. An interaction is (person index, item index, kind): a view (Product Viewed), an add to the
cart (Product Added) or a purchase (a line of Order Completed).

- Similarity: the cosine between the columns of the binary person x item matrices, one for purchases and one for
  views (any interaction: viewed, added or bought), shrunk towards 0 for pairs seen by few people
  (``C / (sqrt(n_i * n_j) + shrink)``), then ``purchase_weight * purchases + view_weight * views``; each item keeps
  its ``neighbours`` best others.
- Scores: a person's history (each item they touched, weighted by the strongest kind: purchase above add above view)
  times the similarity; what they bought is left out; the top ``n`` are theirs, and a person with fewer candidates
  (a short history, or none) is filled up with the most popular products they did not buy.
- Popularity: the products with the most buyers (then the most views).

The cost is that of two sparse products ``X.T @ X`` (the sum over people of the square of their distinct items)
and one ``H @ S`` (the sum over people of their items times ``neighbours``): near-linear in the people.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse

VIEW, ADD, PURCHASE = 0, 1, 2
# The events that carry products (Segment's e-commerce spec): the kind of interaction each one is.
VIEW_EVENT, ADD_EVENT, ORDER_EVENT = "Product Viewed", "Product Added", "Order Completed"
EVENT_KINDS = {VIEW_EVENT: VIEW, ADD_EVENT: ADD, ORDER_EVENT: PURCHASE}
# How much each kind of interaction says about a person's interest (the strongest per item counts).
HISTORY_WEIGHTS = {VIEW: 0.3, ADD: 0.6, PURCHASE: 1.0}
PURCHASE_WEIGHT = 1.0
VIEW_WEIGHT = 0.3
SHRINK = 5.0
NEIGHBOURS = 20
TOP_N = 10
POPULAR = -1  # the ``because`` of a recommendation that comes from popularity
MAX_SKIPPED = 1000  # popularity fills look this far past ``n`` (a person who bought more may get fewer)
FILL_CELLS = 5_000_000


def product_key(properties) -> str | None:
    """A product's id in an event's properties (or an order line): ``product_id``, else ``sku``; None without one."""
    if not isinstance(properties, dict):
        return None
    for key in ("product_id", "sku"):
        value = properties.get(key)
        if isinstance(value, str | int | float) and not isinstance(value, bool) and str(value).strip():
            return str(value).strip()
    return None


def event_products(name: str, properties) -> list[tuple[str, int]]:
    """The (product, kind) pairs of one event: the product of a view or an add, the lines of an order."""
    kind = EVENT_KINDS.get(name)
    if kind is None or not isinstance(properties, dict):
        return []
    if kind != PURCHASE:
        product = product_key(properties)
        return [(product, kind)] if product else []
    lines = properties.get("products")
    products = [product_key(line) for line in lines] if isinstance(lines, list) else []
    return [(product, PURCHASE) for product in products if product]


@dataclass
class Interactions:
    """Who touched which item how: three aligned arrays (duplicates allowed) over ``people`` x ``items``."""

    people: np.ndarray
    items: np.ndarray
    kinds: np.ndarray
    n_people: int
    n_items: int

    @classmethod
    def of(cls, people, items, kinds, *, n_people: int, n_items: int) -> Interactions:
        return cls(np.asarray(people, dtype=np.int64), np.asarray(items, dtype=np.int64),
                   np.asarray(kinds, dtype=np.int8), int(n_people), int(n_items))

    def where(self, mask: np.ndarray) -> Interactions:
        return Interactions(self.people[mask], self.items[mask], self.kinds[mask], self.n_people, self.n_items)

    def _binary(self, mask: np.ndarray) -> sparse.csr_matrix:
        matrix = sparse.csr_matrix((np.ones(int(mask.sum()), dtype=np.float64),
                                    (self.people[mask], self.items[mask])), shape=(self.n_people, self.n_items))
        matrix.sum_duplicates()
        matrix.data[:] = 1.0
        return matrix

    def purchases(self) -> sparse.csr_matrix:
        """Person x item, 1 where the person bought the item."""
        return self._binary(self.kinds == PURCHASE)

    def views(self) -> sparse.csr_matrix:
        """Person x item, 1 where the person looked at the item: viewed it, put it in the cart or bought it."""
        return self._binary(np.ones(len(self.kinds), dtype=bool))

    def history(self) -> sparse.csr_matrix:
        """Person x item, the weight of the strongest kind of interaction (``HISTORY_WEIGHTS``)."""
        weights = np.array([HISTORY_WEIGHTS[k] for k in sorted(HISTORY_WEIGHTS)])[self.kinds]
        # The strongest per cell: order by person, item and weight, and keep the last of each cell.
        order = np.lexsort((weights, self.items, self.people))
        people, items, weights = self.people[order], self.items[order], weights[order]
        last = np.ones(len(order), dtype=bool)
        last[:-1] = (people[1:] != people[:-1]) | (items[1:] != items[:-1])
        return sparse.csr_matrix((weights[last], (people[last], items[last])), shape=(self.n_people, self.n_items))


@dataclass
class Similarity:
    """Item x item: ``score`` (row i: item i's kept neighbours) and, on the same cells, how many people bought
    (``co_purchases``) and viewed (``co_views``) both."""

    score: sparse.csr_matrix
    co_purchases: sparse.csr_matrix
    co_views: sparse.csr_matrix

    def pairs(self) -> list[tuple[int, int, float, int, int]]:
        """Every kept (item, other, score, co_purchases, co_views)."""
        coo = self.score.tocoo()
        co_p = np.asarray(self.co_purchases[coo.row, coo.col]).ravel() if coo.nnz else np.empty(0)
        co_v = np.asarray(self.co_views[coo.row, coo.col]).ravel() if coo.nnz else np.empty(0)
        return [(int(i), int(j), float(s), int(p), int(v))
                for i, j, s, p, v in zip(coo.row, coo.col, coo.data, co_p, co_v, strict=True)]


def _cooccurrence(matrix: sparse.csr_matrix) -> sparse.csr_matrix:
    """Item x item: how many people have both (the diagonal removed)."""
    co = (matrix.T @ matrix).tocsr()
    co.setdiag(0)
    co.eliminate_zeros()
    return co


def _cosine(co: sparse.csr_matrix, counts: np.ndarray, shrink: float) -> sparse.csr_matrix:
    coo = co.tocoo()
    data = coo.data / (np.sqrt(counts[coo.row] * counts[coo.col]) + shrink)
    return sparse.csr_matrix((data, (coo.row, coo.col)), shape=co.shape)


def _order_within(groups: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Indexes ordered by group (ascending), then value (highest first), ties in their given order. One stable
    argsort of a float key: the group plus a fraction of at most 1 that falls as the value rises."""
    if not len(values):
        return np.empty(0, dtype=np.int64)
    low, high = float(values.min()), float(values.max())
    span = (high - low) * (1 + 1e-9) or 1.0
    return np.argsort(groups + (high - values) / span, kind="stable")


def _ranked(matrix: sparse.csr_matrix) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The cells of a CSR matrix ordered by row, then score (highest first), then column; and each one's rank
    within its row."""
    matrix = matrix.tocsr()
    matrix.sum_duplicates()  # canonical: the columns of a row in order
    rows = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
    order = _order_within(rows, matrix.data)
    rank = np.arange(len(order)) - matrix.indptr[rows[order]]
    return order, rows[order], rank


def top_per_row(matrix: sparse.csr_matrix, k: int) -> sparse.csr_matrix:
    """The ``k`` highest cells of each row (ties: the lower column)."""
    matrix = matrix.tocsr()
    matrix.eliminate_zeros()
    order, rows, rank = _ranked(matrix)
    keep = order[rank < k]
    return sparse.csr_matrix((matrix.data[keep], (rows[rank < k], matrix.indices[keep])), shape=matrix.shape)


def item_similarity(interactions: Interactions, *, purchase_weight: float = PURCHASE_WEIGHT,
                    view_weight: float = VIEW_WEIGHT, shrink: float = SHRINK,
                    neighbours: int = NEIGHBOURS) -> Similarity:
    """Item to item from co-purchase and co-view (see the module)."""
    purchases, views = interactions.purchases(), interactions.views()
    co_purchases, co_views = _cooccurrence(purchases), _cooccurrence(views)
    buyers = np.asarray(purchases.sum(axis=0)).ravel()
    viewers = np.asarray(views.sum(axis=0)).ravel()
    score = (purchase_weight * _cosine(co_purchases, buyers, shrink)
             + view_weight * _cosine(co_views, viewers, shrink))
    score = top_per_row(score, neighbours)
    return Similarity(score=score, co_purchases=co_purchases, co_views=co_views)


def popularity(interactions: Interactions, views: np.ndarray | None = None) -> np.ndarray:
    """Item indexes, the most popular first: most buyers, then most ``views`` (per item; by default the people who
    viewed it or put it in the cart), then the lower index."""
    buyers = np.asarray(interactions.purchases().sum(axis=0)).ravel()
    if views is None:
        views = np.asarray(interactions._binary(interactions.kinds != PURCHASE).sum(axis=0)).ravel()
    return np.lexsort((np.arange(interactions.n_items), -np.asarray(views), -buyers))


@dataclass
class Recommendations:
    """Per person (rows) the top ``n`` item indexes (-1: none), their scores (0 for popularity fills) and the item
    of their history that contributed most (``POPULAR`` for popularity fills)."""

    items: np.ndarray
    scores: np.ndarray
    because: np.ndarray

    def first(self) -> np.ndarray:
        return self.items[:, 0] if self.items.shape[1] else np.full(self.items.shape[0], -1)


def _keys(people: np.ndarray, items: np.ndarray, n_items: int) -> np.ndarray:
    return people.astype(np.int64) * n_items + items.astype(np.int64)


def _in_sorted(keys: np.ndarray, sorted_keys: np.ndarray) -> np.ndarray:
    if not len(sorted_keys):
        return np.zeros(keys.shape, dtype=bool)
    at = np.clip(np.searchsorted(sorted_keys, keys), 0, len(sorted_keys) - 1)
    return sorted_keys[at] == keys


def _popular_fill(result: Recommendations, filled: np.ndarray, excluded: np.ndarray, popular: np.ndarray,
                  n_items: int) -> None:
    """Fill each row's free places (after ``filled[row]``) with the most popular items not in ``excluded`` (sorted
    person * n_items + item keys) and not recommended already."""
    n_people, n = result.items.shape
    need = n - filled
    if not need.any() or not len(popular):
        return
    taken = result.items >= 0
    rows = np.repeat(np.arange(n_people), taken.sum(axis=1))
    skip = np.union1d(excluded, _keys(rows, result.items[taken], n_items))
    per_person = np.bincount(skip // n_items, minlength=n_people) if len(skip) else np.zeros(n_people, int)
    width = int(min(len(popular), n + min(int(per_person.max(initial=0)), MAX_SKIPPED)))
    candidates = popular[:width]
    people = np.flatnonzero(need > 0)
    step = max(1, FILL_CELLS // width)  # bounded memory: a block of people x width candidates at a time
    for start in range(0, len(people), step):
        block = people[start:start + step]
        allowed = ~_in_sorted(_keys(block[:, None], candidates[None, :], n_items), skip)
        running = np.cumsum(allowed, axis=1)
        use = allowed & (running <= need[block, None])
        row, col = np.nonzero(use)
        places = filled[block[row]] + running[row, col] - 1
        result.items[block[row], places] = candidates[col]
        result.scores[block[row], places] = 0.0
        result.because[block[row], places] = POPULAR


def recommend(interactions: Interactions, similarity: Similarity | None, popular: np.ndarray, *,
              n: int = TOP_N) -> Recommendations:
    """Every person's top ``n``: item to item from their history (without what they bought), filled up with the
    most popular items they did not buy. With ``similarity`` None: popularity alone (the baseline)."""
    n_people, n_items = interactions.n_people, interactions.n_items
    result = Recommendations(items=np.full((n_people, n), -1, dtype=np.int64),
                             scores=np.zeros((n_people, n), dtype=np.float64),
                             because=np.full((n_people, n), POPULAR, dtype=np.int64))
    bought = interactions.purchases().tocoo()
    excluded = np.unique(_keys(bought.row, bought.col, n_items))
    filled = np.zeros(n_people, dtype=np.int64)
    if similarity is not None and similarity.score.nnz:
        history = interactions.history()
        scores = (history @ similarity.score).tocoo()
        keep = ~_in_sorted(_keys(scores.row, scores.col, n_items), excluded) & (scores.data > 0)
        scores = sparse.csr_matrix((scores.data[keep], (scores.row[keep], scores.col[keep])),
                                   shape=(n_people, n_items))
        order, rows, rank = _ranked(scores)
        top = rank < n
        cells, rows, rank = order[top], rows[top], rank[top]
        items = scores.indices[cells]
        result.items[rows, rank] = items
        result.scores[rows, rank] = scores.data[cells]
        result.because[rows, rank] = _strongest_source(history, similarity.score, rows, items)
        filled = np.bincount(rows, minlength=n_people).astype(np.int64)
    _popular_fill(result, filled, excluded, popular, n_items)
    return result


def _strongest_source(history: sparse.csr_matrix, score: sparse.csr_matrix, people: np.ndarray,
                      items: np.ndarray) -> np.ndarray:
    """For each (person, recommended item): the item of the person's history with the largest contribution
    ``history[person, i] * score[i, item]`` (ties: the lower index)."""
    if not len(people):
        return np.empty(0, dtype=np.int64)
    # Pairs (person's item i, recommended item j): expand each recommendation over the person's history.
    counts = np.diff(history.indptr)[people]
    rec = np.repeat(np.arange(len(people)), counts)
    starts = np.repeat(history.indptr[people], counts)
    offsets = np.arange(len(rec)) - np.repeat(np.cumsum(counts) - counts, counts)
    cells = starts + offsets
    source = history.indices[cells]
    value = history.data[cells] * np.asarray(score[source, items[rec]]).ravel()
    order = _order_within(rec, value)  # the history's items of a row are in index order: ties go to the lower
    first = np.ones(len(order), dtype=bool)
    first[1:] = rec[order][1:] != rec[order][:-1]
    best = np.full(len(people), POPULAR, dtype=np.int64)
    best[rec[order][first]] = source[order][first]
    return best


def evaluate(recommended: np.ndarray, test_people: np.ndarray, test_items: np.ndarray, *, k: int = TOP_N) -> dict:
    """How well the top ``k`` of each person (rows of ``recommended``) found the held-out (person, item) pairs:
    over the people with at least one, the share with a hit (hit rate), hits / k (precision) and hits / their
    held-out items (recall)."""
    test_people = np.asarray(test_people, dtype=np.int64)
    test_items = np.asarray(test_items, dtype=np.int64)
    if not len(test_people):
        return {"people": 0, "hit_rate": None, "precision": None, "recall": None}
    pairs = np.unique(np.stack([test_people, test_items], axis=1), axis=0)
    test_people, test_items = pairs[:, 0], pairs[:, 1]
    hit = (recommended[test_people, :k] == test_items[:, None]).any(axis=1)
    people, index = np.unique(test_people, return_inverse=True)
    hits = np.bincount(index, weights=hit, minlength=len(people))
    held = np.bincount(index, minlength=len(people))
    return {"people": len(people), "hit_rate": round(float((hits > 0).mean()), 4),
            "precision": round(float((hits / k).mean()), 4), "recall": round(float((hits / held).mean()), 4)}


# --- one person, on the fly (the selector) ----------------------------------------------------------------------


@dataclass(frozen=True)
class Neighbour:
    other: str
    score: float
    co_purchases: int
    co_views: int


def recommend_one(*, history: dict[str, float], bought: set[str], neighbours: dict[str, list[Neighbour]],
                  popular: list[str], n: int = TOP_N) -> list[dict]:
    """One person's top ``n`` from their ``history`` ({product: weight}, ``HISTORY_WEIGHTS``) and the kept
    neighbours of those products, the same scoring as ``recommend``: each {product, score, because (the history
    product that contributed most, or None), together ("bought" or "viewed": how ``because`` and the product go
    together), popular (a popularity fill)}."""
    totals: dict[str, float] = {}
    best: dict[str, tuple[float, str, Neighbour]] = {}
    for product, weight in sorted(history.items()):
        for neighbour in neighbours.get(product, ()):
            if neighbour.other in bought or neighbour.score <= 0:
                continue
            contribution = weight * neighbour.score
            totals[neighbour.other] = totals.get(neighbour.other, 0.0) + contribution
            if neighbour.other not in best or contribution > best[neighbour.other][0]:
                best[neighbour.other] = (contribution, product, neighbour)
    ranked = sorted(totals.items(), key=lambda pair: (-pair[1], pair[0]))[:n]
    rows = [{"product": other, "score": round(score, 6), "because": best[other][1],
             "together": "bought" if best[other][2].co_purchases else "viewed", "popular": False}
            for other, score in ranked]
    chosen = {row["product"] for row in rows}
    for product in popular:
        if len(rows) >= n:
            break
        if product not in bought and product not in chosen:
            rows.append({"product": product, "score": 0.0, "because": None, "together": None, "popular": True})
            chosen.add(product)
    return rows
