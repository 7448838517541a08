"""The ways of choosing a person's next best offers, on one matrix of who did what with which
item: item-to-item co-occurrence, implicit-feedback matrix factorisation (alternating least
squares), and the popularity baseline both must beat.

Persons and items are rows and columns of sparse matrices (items in the order of their
names, so ties rank by name): ``interest`` counts each person's interest events and purchases
of an item, ``bought`` marks what the person bought. Every method scores items for a block
of persons at once; :func:`top` picks each person's best, never an item they bought.

**Co-occurrence**: item i leads to item j by the persons who showed interest in (or bought)
i and bought j, as a cosine (``count(i → j) / sqrt(n_i · m_j)``); a person's score for j adds
up what their items lead to.

**Matrix factorisation** (``implicit``'s ALS, Hu, Koren & Volinsky 2008): persons and items
get ``FACTORS`` latent factors each, fitted to the confidence that a person wants an item
(``1 + ALPHA · events``: their interest events and purchases of it); a person's score for an
item is the dot product of their factors. Seeded and run in one BLAS
thread (implicit's own threads solve each person or item independently), so the same data
gives the same factors.

**Popularity**: the items bought by the most persons, the same for everyone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

if TYPE_CHECKING:
    # scipy takes most of a second to import, and every CLI command imports the core: the
    # functions import it when they run.
    import scipy.sparse as sp

Method = Literal["co-occurrence", "factorisation"]
METHODS: tuple[Method, ...] = ("co-occurrence", "factorisation")
TOP = 10

# Matrix factorisation's settings, from a grid (factors 8 to 64, regularisation 0.01 to 1,
# alpha 1 to 20, a purchase weighted 1 or 5 times) on three synthetic shops: the family shop
# of the tests (600 persons, 8 families of 6), a shop of 3,000 persons with two of 12 tastes
# each (300 items), and one of 20,000 persons, 40 tastes, 2,000 items. Regularisation and
# weighting moved precision@10 by less than 0.005; the factors are what matter, and the best
# number follows the shop's hidden tastes: 8 factors give 0.100 / 0.071 / 0.033, 32 give
# 0.078 / 0.065 / 0.056 (co-occurrence: 0.100 / 0.068 / 0.050; popularity 0.041 / 0.017 /
# 0.004). 32 is the one that does not fail a big catalogue; see docs/predictions.md.
FACTORS = 32
ITERATIONS = 15
REGULARIZATION = 0.1
ALPHA = 5.0
SEED = 7

# Dense score blocks stay below this many cells (8 bytes each: 160 MB).
_BLOCK_CELLS = 20_000_000


@dataclass(frozen=True)
class Interactions:
    """Who showed interest in and bought which item."""

    persons: np.ndarray  # int64, sorted: row i is persons[i]
    items: list[str]  # sorted: column j is items[j]
    interest: sp.csr_matrix  # interest events and purchases per (person, item): counts
    bought: sp.csr_matrix  # 1 where the person bought the item

    @property
    def shape(self) -> tuple[int, int]:
        return int(self.persons.size), len(self.items)

    def row(self, person: int) -> int | None:
        """The row of ``person`` (None: no interaction)."""
        found = int(np.searchsorted(self.persons, person))
        if found < self.persons.size and int(self.persons[found]) == person:
            return found
        return None


def interactions(table: pa.Table) -> Interactions:
    """The matrices of a table of ``person`` (int64), ``item`` (string), ``bought`` (bool)
    rows, one per event (a purchase of several items: one row per item)."""
    import scipy.sparse as sp

    table = table.filter(pc.is_valid(table.column("item")))
    items = pc.unique(table.column("item")).sort().to_pylist() if table.num_rows else []
    persons, rows = np.unique(table.column("person").to_numpy(), return_inverse=True)
    columns = pc.index_in(table.column("item"), value_set=pa.array(items, pa.string()))
    columns_np = columns.to_numpy(zero_copy_only=False).astype(np.int64)
    bought = table.column("bought").to_numpy(zero_copy_only=False).astype(bool)
    shape = (int(persons.size), len(items))
    interest = sp.csr_matrix(
        (np.ones(rows.size, np.float32), (rows, columns_np)), shape=shape, dtype=np.float32
    )
    interest.sum_duplicates()
    purchases = sp.csr_matrix(
        (np.ones(int(bought.sum()), np.float32), (rows[bought], columns_np[bought])),
        shape=shape,
        dtype=np.float32,
    )
    purchases.sum_duplicates()
    purchases.data[:] = 1.0
    return Interactions(persons.astype(np.int64), items, interest.tocsr(), purchases.tocsr())


# -- co-occurrence ------------------------------------------------------------------------------
def co_occurrence(x: Interactions) -> sp.csr_matrix:
    """items × items: how strongly item i leads to item j (the cosine above)."""
    import scipy.sparse as sp

    seen = x.interest.copy()
    seen.data[:] = 1.0  # persons, not events
    leads = (seen.T @ x.bought).tocsr().astype(np.float64)
    n = np.asarray(seen.sum(axis=0)).ravel()
    m = np.asarray(x.bought.sum(axis=0)).ravel()
    inv_n = np.divide(1.0, np.sqrt(n), out=np.zeros_like(n, dtype=np.float64), where=n > 0)
    inv_m = np.divide(1.0, np.sqrt(m), out=np.zeros_like(m, dtype=np.float64), where=m > 0)
    return (sp.diags(inv_n) @ leads @ sp.diags(inv_m)).tocsr()


def co_occurrence_scores(
    x: Interactions, weights: sp.csr_matrix, rows: slice | np.ndarray
) -> np.ndarray:
    seen = x.interest[rows].copy()
    seen.data[:] = 1.0
    return np.asarray((seen @ weights).todense())


# -- matrix factorisation -----------------------------------------------------------------------
@dataclass(frozen=True)
class Factors:
    persons: np.ndarray  # persons × FACTORS
    items: np.ndarray  # items × FACTORS


def factorise(x: Interactions, *, threads: int = 0) -> Factors:
    """Alternating least squares on the confidence matrix (see the module's docstring)."""
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    strength = x.interest.astype(np.float32).tocsr()
    # implicit solves each person (or item) in its own thread; a second pool inside BLAS
    # only fights it (implicit warns of it, and it is slower).
    with threadpool_limits(1, "blas"):
        model = AlternatingLeastSquares(
            factors=FACTORS,
            regularization=REGULARIZATION,
            alpha=ALPHA,
            iterations=ITERATIONS,
            random_state=SEED,
            num_threads=threads,
        )
        model.fit(strength, show_progress=False)
    return Factors(np.asarray(model.user_factors), np.asarray(model.item_factors))


def factorisation_scores(factors: Factors, rows: slice | np.ndarray) -> np.ndarray:
    return np.asarray(factors.persons[rows] @ factors.items.T, dtype=np.float64)


# -- popularity ---------------------------------------------------------------------------------
def popularity(x: Interactions) -> np.ndarray:
    """Per item, the persons who bought it."""
    return np.asarray(x.bought.sum(axis=0), dtype=np.float64).ravel()


# -- choosing -----------------------------------------------------------------------------------
def blocks(x: Interactions) -> list[slice]:
    """Slices of persons whose dense score block stays small."""
    size = max(1, _BLOCK_CELLS // max(1, len(x.items)))
    return [slice(i, min(i + size, x.shape[0])) for i in range(0, x.shape[0], size)]


@dataclass(frozen=True)
class Chosen:
    """Each person's best items, flat: ``row`` (into the block's persons), ``column`` (the
    item), ``score``, sorted by row, then best first (ties: the item's name first)."""

    row: np.ndarray
    column: np.ndarray
    score: np.ndarray

    def per_row(self, rows: int) -> list[np.ndarray]:
        """The columns chosen for each of ``rows`` rows, best first."""
        bounds = np.searchsorted(self.row, np.arange(rows + 1))
        return [self.column[bounds[i] : bounds[i + 1]] for i in range(rows)]


def top_sparse(scores: sp.csr_matrix, bought: sp.csr_matrix, n: int = TOP) -> Chosen:
    """The ``n`` best positive scores of each row of a sparse matrix, never a column the row
    bought: one sort of the non-zero scores (a person's co-occurrence scores touch only the
    items their items were seen with, so the rows stay short)."""
    scores = scores.tocsr()
    scores = (scores - scores.multiply(bought)).tocsr()
    scores.data[scores.data <= 0] = 0.0
    scores.eliminate_zeros()
    rows = np.repeat(np.arange(scores.shape[0]), np.diff(scores.indptr))
    order = np.lexsort((scores.indices, -scores.data, rows))
    rows, columns, values = rows[order], scores.indices[order], scores.data[order]
    rank = np.arange(rows.size) - scores.indptr[rows]
    keep = rank < n
    return Chosen(rows[keep], columns[keep].astype(np.int64), values[keep])


def top_dense(scores: np.ndarray, bought: sp.csr_matrix, n: int = TOP) -> Chosen:
    """The ``n`` best scores of each row of a dense block, never a column the row bought."""
    scores = np.array(scores, dtype=np.float64, copy=True)
    coo = bought.tocoo()
    scores[coo.row, coo.col] = -np.inf
    k = min(n, scores.shape[1])
    if k == 0 or scores.shape[0] == 0:
        empty = np.empty(0, dtype=np.int64)
        return Chosen(empty, empty, np.empty(0))
    if k < scores.shape[1]:
        picked = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    else:
        picked = np.tile(np.arange(k), (scores.shape[0], 1))
    values = np.take_along_axis(scores, picked, axis=1)
    order = np.lexsort((picked, -values), axis=1)
    picked = np.take_along_axis(picked, order, axis=1)
    values = np.take_along_axis(values, order, axis=1)
    rows = np.repeat(np.arange(scores.shape[0]), k)
    keep = np.isfinite(values.ravel())
    return Chosen(rows[keep], picked.ravel()[keep], values.ravel()[keep])
