"""BPR's SGD step as one compiled loop over the triples (numba, the plugin's ``fast`` extra).

The same update as the torch path of :meth:`~hf_recsys_classic.BPRMFModel.sgd_step` (every gradient taken at the
rows' values before the step, the steps of a repeated row added up), without materialising the gathered rows: each
triple reads its three rows once and adds its steps into per-row accumulators; the touched rows are then updated
and their accumulators cleared. The work of a step grows with the batch, not with the tables (the accumulators,
as large as the tables, are made once per model). The loop waits mostly on memory (rows scattered over tables
larger than the L2 cache), so it prefetches the rows of the triple ``_AHEAD`` places later while it computes one
(LLVM's prefetch hint: about 14% less CPU time per ml-latest-small epoch, the same numbers). On several threads
(``BPRMFConfig.sgd_threads``) each takes a contiguous share of the triples into accumulators of its own while the
tables are only read, and the shares are applied one after the other: no race, and the same result on every run.
"""

from __future__ import annotations

import importlib.util
import math

import numpy as np
import torch

_HAS_NUMBA = importlib.util.find_spec("numba") is not None


def available() -> bool:
    """Whether numba is installed (``pip install "hf-recsys-classic[fast]"``)."""
    return _HAS_NUMBA


#: triples ahead whose rows are prefetched (the step waits on memory: rows scattered over tables larger than L2)
_AHEAD = 6


def _prefetch_rows(users, items, du, di, a, b, c, f):
    for off in range(0, f, 16):  # one cache line of 16 float32 at a time
        _prefetch(users, a * f + off)
        _prefetch(du, a * f + off)
        _prefetch(items, b * f + off)
        _prefetch(di, b * f + off)
        _prefetch(items, c * f + off)
        _prefetch(di, c * f + off)


def _accumulate(
    users, items, biases, u, i, j, start, stop, lr, reg, use_bias, du, di, db, seen_u, seen_i, rows_u, rows_i
):
    """The steps of the triples ``start:stop`` added into the accumulators (the tables are only read); returns the
    summed loss and how many user and item rows were touched (listed in ``rows_u`` / ``rows_i``)."""
    n, f = stop, users.shape[1]
    rate = np.float32(2.0 * reg * lr)
    loss = 0.0
    nu = ni = 0
    for t in range(start, stop):
        if t + _AHEAD < n:  # the rows of a later triple, on their way to the cache while this one is computed
            _prefetch_rows(users, items, du, di, u[t + _AHEAD], i[t + _AHEAD], j[t + _AHEAD], f)
        uu, ii, jj = u[t], i[t], j[t]
        x = np.float32(0.0)
        for k in range(f):
            x += users[uu, k] * (items[ii, k] - items[jj, k])
        if use_bias:
            x += biases[ii] - biases[jj]
        xd = float(x)
        loss += max(-xd, 0.0) + math.log1p(math.exp(-abs(xd)))  # softplus(-x), stable
        zl = np.float32(lr / (1.0 + math.exp(xd)))  # lr * sigmoid(-x)
        for k in range(f):
            p, qi, qj = users[uu, k], items[ii, k], items[jj, k]
            du[uu, k] += zl * (qi - qj) - rate * p
            di[ii, k] += zl * p - rate * qi
            di[jj, k] += -zl * p - rate * qj
        if use_bias:
            db[ii] += zl - rate * biases[ii]
            db[jj] += -zl - rate * biases[jj]
        if not seen_u[uu]:  # the rows to update (and clear) after the loop
            seen_u[uu] = True
            rows_u[nu] = uu
            nu += 1
        if not seen_i[ii]:
            seen_i[ii] = True
            rows_i[ni] = ii
            ni += 1
        if not seen_i[jj]:
            seen_i[jj] = True
            rows_i[ni] = jj
            ni += 1
    return loss, nu, ni


def _apply(users, items, biases, use_bias, du, di, db, seen_u, seen_i, rows_u, rows_i, nu, ni):
    """Add the accumulated steps of the touched rows to the tables and clear the accumulators."""
    f = users.shape[1]
    for s in range(nu):
        r = rows_u[s]
        for k in range(f):
            users[r, k] += du[r, k]
            du[r, k] = 0.0
        seen_u[r] = False
    for s in range(ni):
        r = rows_i[s]
        for k in range(f):
            items[r, k] += di[r, k]
            di[r, k] = 0.0
        if use_bias:
            biases[r] += db[r]
            db[r] = 0.0
        seen_i[r] = False


def _step(users, items, biases, u, i, j, lr, reg, use_bias, du, di, db, seen_u, seen_i, rows_u, rows_i):
    n = len(u)
    loss, nu, ni = _accumulate(
        users, items, biases, u, i, j, 0, n, lr, reg, use_bias, du, di, db, seen_u, seen_i, rows_u, rows_i
    )
    _apply(users, items, biases, use_bias, du, di, db, seen_u, seen_i, rows_u, rows_i, nu, ni)
    return loss / max(n, 1)


def _parallel_step(users, items, biases, u, i, j, lr, reg, use_bias, du, di, db, seen_u, seen_i, rows_u, rows_i):
    """:func:`_step` with the triples split into ``len(du)`` contiguous parts, each accumulated by its own thread
    into its own accumulators (the tables are only read while the threads run: no race); then each thread updates
    the touched rows of its own range of the tables, adding every part's step of a row in part order, so the result
    depends on the number of parts, not on the threads' timing."""
    n, parts = len(u), du.shape[0]
    losses = np.zeros(parts)
    touched = np.zeros((parts, 2), dtype=np.int64)
    for p in prange(parts):  # noqa: F821 (numba's prange, bound when compiled)
        start, stop = p * n // parts, (p + 1) * n // parts
        loss, nu, ni = _accumulate(
            users, items, biases, u, i, j, start, stop, lr, reg, use_bias,
            du[p], di[p], db[p], seen_u[p], seen_i[p], rows_u[p], rows_i[p],
        )  # fmt: skip
        losses[p], touched[p, 0], touched[p, 1] = loss, nu, ni
    f, n_users, n_items = users.shape[1], users.shape[0], items.shape[0]
    for p in prange(parts):  # noqa: F821
        lo, hi = p * n_users // parts, (p + 1) * n_users // parts
        for q in range(parts):  # every part's touched rows that fall in this thread's range
            for s in range(touched[q, 0]):
                r = rows_u[q, s]
                if lo <= r < hi:
                    for q2 in range(parts):  # a row listed by several parts is done at its first listing
                        if seen_u[q2, r]:
                            for k in range(f):
                                users[r, k] += du[q2, r, k]
                                du[q2, r, k] = 0.0
                            seen_u[q2, r] = False
        lo, hi = p * n_items // parts, (p + 1) * n_items // parts
        for q in range(parts):
            for s in range(touched[q, 1]):
                r = rows_i[q, s]
                if lo <= r < hi:
                    for q2 in range(parts):
                        if seen_i[q2, r]:
                            for k in range(f):
                                items[r, k] += di[q2, r, k]
                                di[q2, r, k] = 0.0
                            if use_bias:
                                biases[r] += db[q2, r]
                                db[q2, r] = 0.0
                            seen_i[q2, r] = False
    return losses.sum() / max(n, 1)


# reassociation and contraction let LLVM vectorise the dot product (about 1.5x faster here); NaN and inf keep their
# IEEE meaning, so a diverging run still shows a non-finite loss
_FASTMATH = {"reassoc", "contract", "nsz", "arcp"}
_compiled = None  # the jitted _step, made on first use: numba is imported (about 0.5 s) only when a step runs
_prefetch = None  # the prefetch intrinsic, made with the step


def _make_prefetch():
    """``prefetch(array, flat_index)``: LLVM's prefetch hint (read, keep in all cache levels) for one element of a
    C-contiguous array; it never faults and changes no value."""
    from llvmlite import ir
    from numba import types
    from numba.extending import intrinsic

    @intrinsic
    def prefetch(typingctx, arr, idx):
        def codegen(context, builder, signature, args):
            data = context.make_array(signature.args[0])(context, builder, args[0]).data
            i8p, i32 = ir.IntType(8).as_pointer(), ir.IntType(32)
            fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
            name = "llvm.prefetch.p0i8"
            fn = builder.module.globals.get(name) or ir.Function(builder.module, fnty, name=name)
            ptr = builder.bitcast(builder.gep(data, [args[1]]), i8p)
            builder.call(fn, [ptr, ir.Constant(i32, 0), ir.Constant(i32, 3), ir.Constant(i32, 1)])
            return context.get_dummy_value()

        return types.void(arr, idx), codegen

    return prefetch


def compiled(parallel: bool = False):
    """The jitted step, or with ``parallel`` the step split over threads (compiled once, then loaded from numba's
    on-disk cache, about 1 s in a new process)."""
    global _compiled, _prefetch, _prefetch_rows, _accumulate, _apply, prange
    if _compiled is None:
        import numba
        from numba import njit

        jit = njit(cache=True, nogil=True, fastmath=_FASTMATH)
        _prefetch = _make_prefetch()  # the step's helpers, compiled into it (module globals, read when it compiles)
        _prefetch_rows = jit(_prefetch_rows)
        _accumulate, _apply, prange = jit(_accumulate), jit(_apply), numba.prange
        _compiled = (jit(_step), njit(cache=True, nogil=True, fastmath=_FASTMATH, parallel=True)(_parallel_step))
    return _compiled[1 if parallel else 0]


def _clashes(bits, users, items, num_items, out):
    """The places ``t`` whose pair ``(users[t], items[t])`` is set in ``bits`` (the flat user x item table packed
    eight pairs a byte, little-endian: 8x fewer cache lines to miss than a byte each), written to ``out``; returns
    how many there are."""
    n = 0
    for t in range(len(items)):
        k = users[t] * num_items + items[t]
        if (bits[k >> 3] >> (k & 7)) & 1:
            out[n] = t
            n += 1
    return n


def _redraw(bits, users, negs, todo, fresh, num_items):
    """``negs[todo[c]]`` = the first of the draws ``fresh[:, c]`` that is not one of the user's positives (in the
    packed ``bits``), the last draw when all of them are: what :meth:`NegativeSampler.sample`'s torch operations
    pick."""
    last = fresh.shape[0] - 1
    for c in range(len(todo)):
        t = todo[c]
        pick = fresh[last, c]
        for r in range(last):
            k = users[t] * num_items + fresh[r, c]
            if not (bits[k >> 3] >> (k & 7)) & 1:
                pick = fresh[r, c]
                break
        negs[t] = pick


_sampler = None  # the jitted (_clashes, _redraw), made on first use


def sampler_functions():
    """The compiled membership check and redraw of :class:`~hf_recsys_classic.bprmf.NegativeSampler`'s bit table
    (numba's on-disk cache after the first compilation)."""
    global _sampler
    if _sampler is None:
        from numba import njit

        jit = njit(cache=True, nogil=True)
        _sampler = (jit(_clashes), jit(_redraw))
    return _sampler


#: triples per thread below which a step runs on one thread (starting the threads costs more than they save)
MIN_TRIPLES_PER_THREAD = 2048
#: most threads a step is split over (each holds accumulators as large as the tables)
MAX_THREADS = 8


class BPRKernel:
    """The per-row accumulators of one model's tables (kept between steps, all zero between them): one set per
    thread a step may use."""

    def __init__(self, num_users: int, num_items: int, factors: int, threads: int = 1):
        self.shape, self.threads = (num_users, num_items, factors), threads
        self.du = np.zeros((threads, num_users, factors), dtype=np.float32)
        self.di = np.zeros((threads, num_items, factors), dtype=np.float32)
        self.db = np.zeros((threads, num_items), dtype=np.float32)
        self.seen_u = np.zeros((threads, num_users), dtype=np.bool_)
        self.seen_i = np.zeros((threads, num_items), dtype=np.bool_)

    def step(self, users, items, biases, u, i, j, lr: float, reg: float, use_bias: bool) -> float:
        """One step on the CPU tables (``torch`` tensors, updated in place); returns the batch's mean BPR loss.
        Split over up to ``threads`` threads (numba's), at least :data:`MIN_TRIPLES_PER_THREAD` triples each."""
        u, i, j = (t.detach().numpy() for t in (u, i, j))
        parts = max(1, min(self.threads, len(u) // MIN_TRIPLES_PER_THREAD))
        tables = tuple(t.detach().numpy() for t in (users, items, biases))  # views: updated in place
        head = (*tables, u, i, j, float(lr), float(reg), bool(use_bias))
        if parts == 1:
            rows_u, rows_i = np.empty(len(u), dtype=np.int64), np.empty(2 * len(u), dtype=np.int64)
            acc = (self.du[0], self.di[0], self.db[0], self.seen_u[0], self.seen_i[0])
            return float(compiled()(*head, *acc, rows_u, rows_i))
        import numba

        size = -(-len(u) // parts)
        rows_u, rows_i = np.empty((parts, size), dtype=np.int64), np.empty((parts, 2 * size), dtype=np.int64)
        acc = (self.du[:parts], self.di[:parts], self.db[:parts], self.seen_u[:parts], self.seen_i[:parts])
        previous, wanted = numba.get_num_threads(), min(parts, numba.config.NUMBA_NUM_THREADS)
        if wanted != previous:  # usually equal (a step per millisecond): then no thread-count calls
            numba.set_num_threads(wanted)
        try:
            return float(compiled(parallel=True)(*head, *acc, rows_u, rows_i))
        finally:
            if wanted != previous:
                numba.set_num_threads(previous)


def _default_threads() -> int:
    """Threads of a step when the config does not say: the cores numba sees (at most :data:`MAX_THREADS`)."""
    import numba

    return max(1, min(numba.config.NUMBA_NUM_THREADS, MAX_THREADS))


def kernel_for(model, users: torch.Tensor, items: torch.Tensor) -> BPRKernel | None:
    """The model's kernel for its current tables (made or remade when their sizes change); ``None`` when numba is
    absent or the tables are not float32 on the CPU."""
    if not available() or users.device.type != "cpu" or users.dtype != torch.float32:
        return None
    shape = (users.shape[0], items.shape[0], users.shape[1])
    threads = min(getattr(model.config, "sgd_threads", None) or _default_threads(), MAX_THREADS)
    kernel = getattr(model, "_sgd_kernel", None)
    if kernel is None or kernel.shape != shape or kernel.threads != threads:
        kernel = model._sgd_kernel = BPRKernel(*shape, threads=threads)
    return kernel


__all__ = ["BPRKernel", "available", "kernel_for"]
