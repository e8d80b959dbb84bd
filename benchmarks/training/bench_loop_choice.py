"""Benchmark: per-step cost of three training loops on the same model, batches and optimizer (AdamW).

Helps choose between subclassing ``transformers.Trainer`` and a lean Accelerate loop for hf-recsys models.

Loops (same initial weights, same pre-generated batches in the same order, AdamW lr/betas/eps/weight_decay=0,
gradient clipping at 1.0, model in train mode):

a. ``bare``: ``opt.zero_grad(); loss = model(**batch).loss; loss.backward(); clip_grad_norm_(...); opt.step()``.
b. ``accelerate``: ``Accelerator(cpu=True)``, ``model, opt = accelerator.prepare(model, opt)``; per step
   ``accelerator.backward(loss)``, ``accelerator.clip_grad_norm_``, ``opt.step()``, a tqdm bar updated every step
   (disabled only off the main process) and the loss logged every 10 steps through ``loss.item()``.
c. ``trainer``: ``transformers.Trainer`` (``TrainingArguments(per_device_train_batch_size=B, max_steps=warmup+N,
   logging_steps=10, save_strategy="no", report_to=[], use_cpu=True, dataloader_num_workers=0, disable_tqdm=False,
   optim="adamw_torch", lr_scheduler_type="constant", train_sampling_strategy="sequential")``) fed a
   ``torch.utils.data.Dataset`` of single examples and a ``data_collator`` that rebuilds the very same batch dicts
   (the sequential sampler keeps the batch order; this is checked). Steps are timed by a ``TrainerCallback``: the
   time between consecutive ``on_step_end`` events covers all per-step work (data loading + collation, forward,
   backward, clipping, optimizer and scheduler step, callbacks, logging, the tqdm bar).

Loops (a) and (b) read pre-built batch tensors; (c) builds every batch from examples through its DataLoader. The
collation cost alone and the cost of iterating the Trainer's own train DataLoader (no model) are measured and
reported separately, and for BPRMF an extra loop ``trainer_batched`` (the same Trainer fed a Dataset whose items
are the pre-built batches, batch size 1, an unwrapping collator) separates the Trainer's loop overhead from its
per-example data pipeline.

Models: BPRMF (``hf_recsys_classic``, 610 users x 9742 items, 64 factors, B=1024 random triples) and the GPT-2
style causal sequential recommender (hidden 64, 2 layers, 50 positions, 9742 items, full softmax loss, B=128).

Protocol: for every thread setting (``torch.set_num_threads(1)`` and the default), model, repeat and loop (loops
interleaved inside a repeat, so load drift on a shared machine hits all three): fresh model from the same initial
weights, warm-up steps (5 BPRMF / 2 GPT), then N timed steps (100 BPRMF / 8 GPT) with ``time.perf_counter``;
seconds/step = elapsed / N (a timestamp is also taken at the end of every step, for the median single step).
Reported: median and min over repeats, overhead vs (a) in % (ratio of medians, of minima, and the median of the
per-repeat paired ratios), ``os.getloadavg()`` before each measurement. Some Trainer behaviours that matter for
recommenders are also probed (untimed) and reported. A GPT step (full softmax over 9742 items for 128 x 50
positions) takes 0.9-1.5 s here, so the GPT defaults are 8 timed steps after 2 warm-up steps (30 + 5 would take
~20 minutes for the whole grid).

Run (about 4 minutes on an idle 2-core machine; it took 11 minutes under a load average of 3-5):
    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/training/bench_loop_choice.py \
        --out benchmarks/training/results_loop_choice.md
Options: --bprmf-steps 100 --gpt-steps 8 --warmup 5 --gpt-warmup 2 --repeats 3 --threads 1,default
         --models bprmf,gpt --loops bare,accelerate,trainer --bprmf-extra-loops trainer_batched --no-probes
A text written after the ``<!-- INTERPRETATION -->`` marker of an existing ``--out`` file is kept on rerun.
"""

from __future__ import annotations

import argparse
import copy
import datetime
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import warnings

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import accelerate
import torch
import transformers
from accelerate import Accelerator
from hf_recsys_classic import BPRMFConfig, BPRMFModel
from tqdm.auto import tqdm
from transformers import Trainer, TrainerCallback, TrainingArguments

from hf_recsys.models.sequential import CausalSequentialConfig, CausalSequentialRecommender

NUM_USERS, NUM_ITEMS = 610, 9742
MAX_GRAD_NORM = 1.0
LOOPS = ("bare", "accelerate", "trainer")
#: optional extra loop (not run by default): the same Trainer fed pre-built batches (a Dataset whose items are whole
#: batches, per_device_train_batch_size=1, a collator that unwraps them): the Trainer loop without its per-example
#: data pipeline
EXTRA_LOOPS = ("trainer_batched",)


def unwrap_batch(items):
    return items[0]


# ---------------------------------------------------------------------------------------------- models and data
def build_bprmf(seed: int) -> BPRMFModel:
    torch.manual_seed(seed)
    model = BPRMFModel(BPRMFConfig(num_users=NUM_USERS, num_items=NUM_ITEMS, factors=64))
    # post_init does not apply init_std at construction (see the probes); fit() would, so do it here too
    model.reset_parameters(torch.Generator().manual_seed(seed))
    return model


def build_gpt(seed: int) -> CausalSequentialRecommender:
    torch.manual_seed(seed)
    cfg = CausalSequentialConfig(
        num_items=NUM_ITEMS, hidden_size=64, num_layers=2, max_sequence_length=50, loss="full"
    )
    model = CausalSequentialRecommender(cfg)  # __init__ builds the item tables from config.num_items
    assert model.item_embeddings.num_embeddings == NUM_ITEMS + 2, model.item_embeddings
    return model


def bprmf_batches(n: int, b: int, gen: torch.Generator) -> list[dict]:
    return [
        {
            "user_ids": torch.randint(0, NUM_USERS, (b,), generator=gen),
            "item_ids": torch.randint(0, NUM_ITEMS, (b,), generator=gen),
            "neg_item_ids": torch.randint(0, NUM_ITEMS, (b,), generator=gen),
        }
        for _ in range(n)
    ]


def gpt_batches(n: int, b: int, gen: torch.Generator, length: int = 50) -> list[dict]:
    return [
        {
            "input_ids": torch.randint(1, NUM_ITEMS + 1, (b, length), generator=gen),
            "labels": torch.randint(0, NUM_ITEMS, (b, length), generator=gen),
        }
        for _ in range(n)
    ]


def bprmf_examples(batches):
    """One example per triple, as Python ints (what a Dataset over a log would hand out)."""
    return [{k: int(v[i]) for k, v in batch.items()} for batch in batches for i in range(len(batch["user_ids"]))]


def bprmf_collate(examples):
    keys = examples[0].keys()
    return {k: torch.tensor([ex[k] for ex in examples], dtype=torch.long) for k in keys}


def gpt_examples(batches):
    """One example per sequence, as (50,) tensors."""
    return [{k: v[i] for k, v in batch.items()} for batch in batches for i in range(len(batch["input_ids"]))]


def gpt_collate(examples):
    keys = examples[0].keys()
    return {k: torch.stack([ex[k] for ex in examples]) for k in keys}


class ListDataset(torch.utils.data.Dataset):
    def __init__(self, examples):
        self.examples = examples

    def __len__(self):
        return len(self.examples)

    def __getitem__(self, i):
        return self.examples[i]


MODELS = {
    "bprmf": {
        "label": "BPRMF (610x9742, 64 factors), B=1024",
        "build": build_bprmf,
        "batches": bprmf_batches,
        "examples": bprmf_examples,
        "collate": bprmf_collate,
        "batch_size": 1024,
    },
    "gpt": {
        "label": "Causal sequential (GPT-2: 64 hidden, 2 layers, L=50, 9742 items, full softmax), B=128",
        "build": build_gpt,
        "batches": gpt_batches,
        "examples": gpt_examples,
        "collate": gpt_collate,
        "batch_size": 128,
    },
}


# ---------------------------------------------------------------------------------------------- the three loops
def step_stats(ends: list[float], warmup: int, steps: int) -> dict:
    """``ends``: a timestamp at the end of every step. Mean seconds/step over the timed steps (elapsed / steps) and
    the median single-step duration (robust to a step preempted by another process on a shared machine)."""
    assert len(ends) == warmup + steps, (len(ends), warmup, steps)
    timed = ends[warmup - 1 :]
    return {
        "s_per_step": (timed[-1] - timed[0]) / steps,
        "step_median_s": statistics.median(b - a for a, b in zip(timed, timed[1:])),
    }


def run_bare(model, batches, warmup, steps, lr):
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    t_setup = 0.0
    loss, ends = None, []
    for batch in batches[: warmup + steps]:
        opt.zero_grad()
        loss = model(**batch).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), MAX_GRAD_NORM)
        opt.step()
        ends.append(time.perf_counter())
    return {**step_stats(ends, warmup, steps), "setup_s": t_setup, "final_loss": loss.item()}


def run_accelerate(model, batches, warmup, steps, lr):
    t_setup0 = time.perf_counter()
    accelerator = Accelerator(cpu=True)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    model, opt = accelerator.prepare(model, opt)
    t_setup = time.perf_counter() - t_setup0
    model.train()
    logged, ends = [], []
    bar = tqdm(total=warmup + steps, desc="accelerate", disable=not accelerator.is_main_process)
    device = accelerator.device
    for i, batch in enumerate(batches[: warmup + steps]):
        batch = {k: v.to(device) for k, v in batch.items()}
        opt.zero_grad()
        loss = model(**batch).loss
        accelerator.backward(loss)
        accelerator.clip_grad_norm_(model.parameters(), MAX_GRAD_NORM)
        opt.step()
        bar.update(1)
        if (i + 1) % 10 == 0:
            logged.append(loss.item())
            bar.set_postfix(loss=f"{logged[-1]:.4f}")
        ends.append(time.perf_counter())
    bar.close()
    assert not accelerator.optimizer_step_was_skipped
    return {**step_stats(ends, warmup, steps), "setup_s": t_setup, "final_loss": loss.item(), "logged": len(logged)}


class StepTimer(TrainerCallback):
    def __init__(self):
        self.begin, self.ends = None, []

    def on_step_begin(self, args, state, control, **kwargs):
        if self.begin is None:
            self.begin = time.perf_counter()

    def on_step_end(self, args, state, control, **kwargs):
        self.ends.append(time.perf_counter())


def training_args(tmp, batch_size, max_steps, lr, seed, **extra):
    return TrainingArguments(
        output_dir=tmp,
        per_device_train_batch_size=batch_size,
        max_steps=max_steps,
        logging_steps=10,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        dataloader_num_workers=0,
        disable_tqdm=False,
        learning_rate=lr,
        optim="adamw_torch",
        lr_scheduler_type="constant",
        train_sampling_strategy="sequential",  # default "random" would shuffle the examples
        seed=seed,
        **extra,
    )


def run_trainer(model, dataset, collate, batch_size, warmup, steps, lr, seed):
    timer = StepTimer()
    with tempfile.TemporaryDirectory() as tmp:
        t_setup0 = time.perf_counter()
        trainer = Trainer(
            model=model,
            args=training_args(tmp, batch_size, warmup + steps, lr, seed),
            train_dataset=dataset,
            data_collator=collate,
            callbacks=[timer],
        )
        out = trainer.train()
        t_end = time.perf_counter()
    ends = timer.ends
    return {
        **step_stats(ends, warmup, steps),
        "setup_s": timer.begin - t_setup0,  # Trainer() + train() up to the first on_step_begin
        "teardown_s": t_end - ends[-1],
        "final_loss": float(out.training_loss),  # mean over all steps (the Trainer keeps no last-step loss)
        "logged": sum("loss" in h for h in trainer.state.log_history),
    }


def params_moved(model, init_state) -> bool:
    state = model.state_dict()
    return any(not torch.equal(state[k], v) for k, v in init_state.items() if v.is_floating_point())


def final_params(model) -> dict:
    return {k: v.detach().clone() for k, v in model.state_dict().items() if v.is_floating_point()}


def max_abs_diff(a: dict, b: dict) -> float:
    return max(float((a[k] - b[k]).abs().max()) for k in a)


def trainer_loader_cost(spec, dataset, n, lr, seed) -> float:
    """Seconds per batch of the Trainer's own train DataLoader (sampler, fetch, RemoveColumnsCollator, collator,
    accelerate's DataLoaderShard), iterated without any model work."""
    model = spec["build"](seed)
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(
            model=model,
            args=training_args(tmp, spec["batch_size"], n, lr, seed),
            train_dataset=dataset,
            data_collator=spec["collate"],
        )
        it = iter(trainer.get_train_dataloader())
        next(it)
        t0 = time.perf_counter()
        k = 0
        for _ in it:
            k += 1
            if k == n - 1:
                break
    return (time.perf_counter() - t0) / max(k, 1)


# ---------------------------------------------------------------------------------------------- probes
class _Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.WARNING)
        self.messages = []

    def emit(self, record):
        msg = record.getMessage().strip().splitlines()[0][:200]
        if msg not in self.messages:
            self.messages.append(msg)


def probe_trainer(name, spec, batches, lr, seed) -> dict:
    """Untimed checks of how Trainer treats the model (two short trainings / evaluations)."""
    res = {}
    handler = _Collect()
    tlog = logging.getLogger("transformers")
    tlog.addHandler(handler)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = spec["build"](seed)
            if name == "bprmf":
                fresh = BPRMFModel(BPRMFConfig(num_users=NUM_USERS, num_items=NUM_ITEMS, factors=64))
                res["bprmf_embedding_std_after_init"] = round(fresh.user_embeddings.weight.detach().std().item(), 4)
                res["bprmf_config_init_std"] = fresh.config.init_std
            res["config_has_use_cache_before"] = "use_cache" in model.config.to_dict()
            examples = spec["examples"](batches[:4])
            with tempfile.TemporaryDirectory() as tmp:
                trainer = Trainer(
                    model=model,
                    args=training_args(tmp, spec["batch_size"], 2, lr, seed),
                    train_dataset=ListDataset(examples),
                    data_collator=spec["collate"],
                )
                res["config_has_use_cache_after_Trainer()"] = "use_cache" in model.config.to_dict()
                res["trainer.label_names"] = trainer.label_names
                res["trainer.model_accepts_loss_kwargs"] = trainer.model_accepts_loss_kwargs
                res["trainer.can_return_loss"] = trainer.can_return_loss
                first = next(iter(trainer.get_train_dataloader()))
                res["first_trainer_batch_equals_ours"] = all(torch.equal(first[k], batches[0][k]) for k in batches[0])
                default_sampler = type(
                    Trainer(
                        model=model,
                        args=TrainingArguments(output_dir=tmp, report_to=[], use_cpu=True),
                        train_dataset=ListDataset(examples),
                    )._get_train_sampler()
                ).__name__
                res["default_train_sampler"] = default_sampler
                trainer.train()
                res["trainer.state.total_flos_after_2_steps"] = trainer.state.total_flos
                metrics = trainer.evaluate(eval_dataset=ListDataset(examples[: spec["batch_size"]]))
                res["evaluate()_metric_keys"] = sorted(metrics)
                # a collator that needs a column the model's forward does not take (e.g. the user, to sample
                # negatives or cut a history window) with the default remove_unused_columns=True
                seen = {}

                def user_collate(feats):
                    seen["keys"] = sorted(feats[0])
                    return spec["collate"]([batches_example(name, batches)] * len(feats))

                trainer2 = Trainer(
                    model=model,
                    args=training_args(tmp, 4, 1, lr, seed),
                    train_dataset=ListDataset([{"user_index": i} for i in range(8)]),
                    data_collator=user_collate,
                )
                next(iter(trainer2.get_train_dataloader()))
                res["collator_sees_keys_of_{'user_index': i}_examples"] = seen.get("keys")
                pred = trainer.predict(ListDataset(examples[: spec["batch_size"]]))
                p = pred.predictions
                res["predict().predictions_shapes"] = [
                    getattr(x, "shape", None) for x in (p if isinstance(p, tuple) else (p,))
                ]
                # forward kwargs when the batch carries a `labels` key and gradient accumulation is on
                got = {}

                def spy(module, a, kw):
                    got.setdefault("keys", sorted(kw))

                m3 = spec["build"](seed)
                hook = m3.register_forward_pre_hook(spy, with_kwargs=True)
                if name == "bprmf":
                    ex_l = [{**ex, "labels": 1} for ex in examples]
                else:
                    ex_l = examples
                trainer3 = Trainer(
                    model=m3,
                    args=training_args(tmp, spec["batch_size"], 1, lr, seed, gradient_accumulation_steps=2),
                    train_dataset=ListDataset(ex_l),
                    data_collator=spec["collate"],
                )
                res["train_loss_1_step_grad_accum=2_with_labels"] = round(trainer3.train().training_loss, 4)
                hook.remove()
                res["forward_kwargs_with_labels_and_grad_accum=2"] = got.get("keys")
                if name == "bprmf":  # same examples without the dummy labels column
                    trainer4 = Trainer(
                        model=spec["build"](seed),
                        args=training_args(tmp, spec["batch_size"], 1, lr, seed, gradient_accumulation_steps=2),
                        train_dataset=ListDataset(examples),
                        data_collator=spec["collate"],
                    )
                    res["train_loss_1_step_grad_accum=2_without_labels"] = round(trainer4.train().training_loss, 4)
                res["per_device_eval_batch_size_default"] = trainer.args.per_device_eval_batch_size
            res["torch_threads_after_probe"] = torch.get_num_threads()
        res["warnings"] = sorted({str(w.message).strip().splitlines()[0][:200] for w in caught})
    finally:
        tlog.removeHandler(handler)
    res["transformers_log_warnings"] = handler.messages
    return res


def batches_example(name, batches):
    return MODELS[name]["examples"](batches[:1])[0]


# ---------------------------------------------------------------------------------------------- main
def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=10).stdout.strip()
    except Exception as exc:  # noqa: BLE001
        return f"n/a ({exc})"


def fmt_load(vals):
    return f"{min(vals):.2f}-{max(vals):.2f}" if len(vals) > 1 else f"{vals[0]:.2f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bprmf-steps", type=int, default=100)
    ap.add_argument("--gpt-steps", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=5, help="warm-up steps (BPRMF)")
    ap.add_argument("--gpt-warmup", type=int, default=2, help="warm-up steps (GPT; its steps take ~0.9-1.5 s here)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", default="1,default", help="comma list of torch thread counts; 'default' = as started")
    ap.add_argument("--models", default="bprmf,gpt")
    ap.add_argument("--loops", default=",".join(LOOPS), help=f"comma list of {LOOPS + EXTRA_LOOPS}")
    ap.add_argument("--bprmf-extra-loops", default="trainer_batched", help="loops run for BPRMF only ('' for none)")
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-probes", action="store_true", help="skip the untimed Trainer behaviour probes")
    ap.add_argument("--out", default="benchmarks/training/results_loop_choice.md")
    args = ap.parse_args()
    if min(args.warmup, args.gpt_warmup) < 1:
        ap.error("--warmup must be >= 1 (the Trainer timing starts at the end of the last warm-up step)")

    transformers.logging.set_verbosity_warning()
    default_threads = torch.get_num_threads()
    thread_settings = [default_threads if t == "default" else int(t) for t in args.threads.split(",")]
    thread_labels = [
        f"{t} (default)" if s == "default" else str(t) for t, s in zip(thread_settings, args.threads.split(","))
    ]
    models = args.models.split(",")
    loops = args.loops.split(",")
    extra = [x for x in args.bprmf_extra_loops.split(",") if x and x not in loops]
    loops_of = {"bprmf": loops + extra, "gpt": loops}
    steps_of = {"bprmf": args.bprmf_steps, "gpt": args.gpt_steps}
    warmup_of = {"bprmf": args.warmup, "gpt": args.gpt_warmup}
    started = datetime.datetime.now(datetime.timezone.utc)
    t_total = time.perf_counter()

    data = {}
    for name in models:
        spec = MODELS[name]
        n = warmup_of[name] + steps_of[name]
        batches = spec["batches"](n, spec["batch_size"], torch.Generator().manual_seed(args.seed + 1))
        model = spec["build"](args.seed)
        init_state = copy.deepcopy(model.state_dict())
        examples = spec["examples"](batches)
        # collation cost alone: the Trainer's extra data work per step, without any model
        ct = []
        for i in range(n):
            chunk = examples[i * spec["batch_size"] : (i + 1) * spec["batch_size"]]
            t0 = time.perf_counter()
            spec["collate"](chunk)
            ct.append(time.perf_counter() - t0)
        data[name] = {
            "batches": batches,
            "init_state": init_state,
            "dataset": ListDataset(examples),
            "collate_s": statistics.median(ct),
            "loader_s": trainer_loader_cost(spec, ListDataset(examples), n, args.lr, args.seed),
            "num_params": sum(p.numel() for p in model.parameters()),
        }

    records = []  # one per (threads, model, loop, repeat)
    for threads, tlabel in zip(thread_settings, thread_labels):
        for name in models:
            spec, d, steps, warmup = MODELS[name], data[name], steps_of[name], warmup_of[name]
            for rep in range(args.repeats):
                ref = None
                for loop in loops_of[name]:
                    torch.set_num_threads(threads)
                    model = spec["build"](args.seed)
                    model.load_state_dict(d["init_state"])
                    transformers.set_seed(args.seed)  # same dropout stream as the Trainer (it seeds in __init__)
                    load = os.getloadavg()
                    if loop == "bare":
                        r = run_bare(model, d["batches"], warmup, steps, args.lr)
                    elif loop == "accelerate":
                        r = run_accelerate(model, d["batches"], warmup, steps, args.lr)
                    elif loop == "trainer_batched":
                        r = run_trainer(
                            model, ListDataset(d["batches"]), unwrap_batch, 1, warmup, steps, args.lr, args.seed
                        )
                    elif loop == "trainer":
                        r = run_trainer(
                            model,
                            d["dataset"],
                            spec["collate"],
                            spec["batch_size"],
                            warmup,
                            steps,
                            args.lr,
                            args.seed,
                        )
                    else:
                        raise ValueError(f"unknown loop {loop!r}")
                    r.update(
                        threads=tlabel,
                        model=name,
                        loop=loop,
                        repeat=rep,
                        load=load,
                        threads_after=torch.get_num_threads(),
                        moved=params_moved(model, d["init_state"]),
                    )
                    fin = final_params(model)
                    if ref is None:
                        ref = fin
                    r["max_abs_param_diff_vs_first_loop"] = max_abs_diff(fin, ref)
                    records.append(r)
                    print(
                        f"[threads={tlabel} {name} rep={rep} {loop}] {r['s_per_step'] * 1e3:.2f} ms/step "
                        f"load={load[0]:.2f} loss={r['final_loss']:.4f} "
                        f"dparam={r['max_abs_param_diff_vs_first_loop']:.2e}",
                        file=sys.stderr,
                        flush=True,
                    )
                    del model

    probes = {}
    if not args.no_probes:
        torch.set_num_threads(default_threads)
        for name in models:
            probes[name] = probe_trainer(name, MODELS[name], data[name]["batches"], args.lr, args.seed)
    total_s = time.perf_counter() - t_total

    # ------------------------------------------------------------------ report
    cpu_model = sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").strip()
    lines = ["# Training loop choice: bare PyTorch vs lean Accelerate vs transformers.Trainer", ""]
    lines += [
        f"Generated by `benchmarks/training/bench_loop_choice.py` "
        f"(`{' '.join(['python', *sys.argv])}`), total run time {total_s:.0f} s.",
        "",
        "## Setup",
        "",
        f"- date: `{sh('date')}` (started {started.isoformat(timespec='seconds')})",
        f"- machine: {platform.platform()}, {platform.processor() or platform.machine()}; `nproc` = {sh('nproc')}; "
        f"no GPU; torch default threads = {default_threads}",
        f"- CPU model: {cpu_model}",
        f"- load averages (1/5/15 min): before first run {tuple(round(x, 2) for x in records[0]['load'])}, "
        f"end {tuple(round(x, 2) for x in os.getloadavg())}; the machine is shared, per-cell ranges below",
        f"- versions: python {platform.python_version()}, torch {torch.__version__}, transformers "
        f"{transformers.__version__}, accelerate {accelerate.__version__}",
        f"- protocol: {args.warmup} (BPRMF) / {args.gpt_warmup} (GPT) warm-up steps then {args.bprmf_steps} (BPRMF) / "
        f"{args.gpt_steps} (GPT) timed "
        f"steps, {args.repeats} repeats, loops interleaved within a repeat, fresh model from the same initial weights "
        f"each run; AdamW(lr={args.lr}, weight_decay=0), clip 1.0; random ids (uniform).",
    ]
    for name in models:
        d = data[name]
        lines.append(
            f"- {MODELS[name]['label']}: {d['num_params']:,} parameters; collating one batch from examples "
            f"(Trainer only): {d['collate_s'] * 1e3:.2f} ms (median, collator alone); the Trainer's whole train "
            f"DataLoader (sampler, fetch, column removal, collator, accelerate wrapper): {d['loader_s'] * 1e3:.2f} ms "
            f"per batch (no model)"
        )
    lines.append("")

    for tlabel in thread_labels:
        lines += [f"## torch threads = {tlabel}", ""]
        lines += [
            "| model | loop | s/step, median of repeats | s/step, min of repeats | overhead vs bare (median) "
            "| overhead vs bare (min) | overhead vs bare, median of per-repeat paired ratios | median single step s "
            "| overhead vs bare (single step) | setup s | 1-min load before runs |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
        ]
        for name in models:
            cells = {}
            for loop in loops_of[name]:
                rs = [r for r in records if r["threads"] == tlabel and r["model"] == name and r["loop"] == loop]
                cells[loop] = rs
            base = cells.get("bare")
            bmed = statistics.median(r["s_per_step"] for r in base) if base else None
            bmin = min(r["s_per_step"] for r in base) if base else None
            bstep = statistics.median(r["step_median_s"] for r in base) if base else None
            for loop in loops_of[name]:
                rs = cells[loop]
                med = statistics.median(r["s_per_step"] for r in rs)
                mn = min(r["s_per_step"] for r in rs)
                ov_med = f"{(med / bmed - 1) * 100:+.1f}%" if bmed and loop != "bare" else "-"
                ov_min = f"{(mn / bmin - 1) * 100:+.1f}%" if bmin and loop != "bare" else "-"
                bare_of = {r["repeat"]: r["s_per_step"] for r in base} if base else {}
                paired = [r["s_per_step"] / bare_of[r["repeat"]] for r in rs if r["repeat"] in bare_of]
                ov_pair = f"{(statistics.median(paired) - 1) * 100:+.1f}%" if paired and loop != "bare" else "-"
                stp = statistics.median(r["step_median_s"] for r in rs)
                ov_stp = f"{(stp / bstep - 1) * 100:+.1f}%" if bstep and loop != "bare" else "-"
                setup = statistics.median(r["setup_s"] for r in rs)
                lines.append(
                    f"| {name} | {loop} | {med:.5f} | {mn:.5f} | {ov_med} | {ov_min} | {ov_pair} | {stp:.5f} | "
                    f"{ov_stp} | {setup:.3f} | {fmt_load([r['load'][0] for r in rs])} |"
                )
        lines.append("")

    lines += ["## Per-run details", ""]
    lines += [
        "| threads | model | repeat | loop | s/step | median single step s | loadavg (1/5/15) before | threads after "
        "| loss* | params moved | max abs param diff vs bare |",
        "|---|---|---:|---|---:|---:|---|---:|---:|---|---:|",
    ]
    for r in records:
        la = "/".join(f"{x:.2f}" for x in r["load"])
        lines.append(
            f"| {r['threads']} | {r['model']} | {r['repeat']} | {r['loop']} | {r['s_per_step']:.5f} | "
            f"{r['step_median_s']:.5f} | {la} | "
            f"{r['threads_after']} | {r['final_loss']:.4f} | {r['moved']} | "
            f"{r['max_abs_param_diff_vs_first_loop']:.1e} |"
        )
    lines += [
        "",
        "*loss: last step's loss for bare/accelerate, `TrainOutput.training_loss` (mean over all steps) for trainer. "
        "The parameter diff compares each loop's final weights with the bare loop's in the same repeat "
        "(same init, batches, optimizer and dropout seed).",
        "",
    ]
    if probes:
        lines += ["## Trainer probes (untimed, measured in this run)", ""]
        for name, res in probes.items():
            lines += [f"### {name}", "", "```json", json.dumps(res, indent=1, default=str), "```", ""]
    lines += ["<!-- INTERPRETATION -->", ""]

    out = args.out
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    # keep a hand-written interpretation (everything after the marker) across reruns
    tail = ""
    if os.path.exists(out):
        prev = open(out).read()
        if "<!-- INTERPRETATION -->" in prev:
            tail = prev.split("<!-- INTERPRETATION -->", 1)[1].lstrip("\n")
    with open(out, "w") as f:
        f.write("\n".join(lines) + tail)
    with open(os.path.splitext(out)[0] + ".json", "w") as f:
        json.dump({"records": records, "probes": probes, "args": vars(args)}, f, indent=1, default=str)
    print(f"wrote {out} ({total_s:.0f} s)", file=sys.stderr)


if __name__ == "__main__":
    main()
