"""Run by tests/training/test_distributed.py under ``torchrun --nproc_per_node 2``: trains a small BPRMF with the
Accelerate trainer and writes, per process, what it trained on and evaluated, and its final parameters.

    torchrun --standalone --nproc_per_node 2 tests/training/ddp_worker.py OUT_DIR [RESUME_FROM_CHECKPOINT]
"""

from __future__ import annotations

import json
import sys
from collections import defaultdict
from pathlib import Path

from safetensors.torch import save_file

from hf_recsys import AutoModelForRecommendation
from hf_recsys.data import build_vocabs, encode_interactions, generate_interactions, leave_last_out
from hf_recsys.training import RecTrainer, RecTrainingArguments, TrainerCallback


class Recorder(TrainerCallback):
    """Keeps the example indices this process trained on, per epoch, and the users of every evaluation."""

    def __init__(self):
        self.seen = defaultdict(list)
        self.evals = []

    def on_batch(self, trainer, indices):
        # the epoch of the step in progress: state.epoch moves on only after the epoch's last step
        self.seen[trainer.state.epoch].extend(indices.tolist())

    def on_evaluate(self, trainer, metrics):
        self.evals.append(
            {
                "users": [str(u) for u in trainer.last_eval_users[trainer.accelerator.process_index]],
                "all_users": [[str(u) for u in part] for part in trainer.last_eval_users],
                "metrics": metrics,
            }
        )


def main(out: Path, resume: str | None = None) -> None:
    # 397 users, odd sizes: the last step of an epoch is short and unevenly split between the processes
    log, _ = generate_interactions(num_users=397, num_items=211, num_interactions=6_007, seed=3)
    splits = leave_last_out(log, n_validation=1)
    model = AutoModelForRecommendation.for_model("bprmf", factors=16)
    model.set_vocabs(*build_vocabs(splits["train"]))
    train = encode_interactions(splits["train"], model.user_vocab, model.item_vocab)
    args = RecTrainingArguments(
        output_dir=str(out / "run"),
        num_train_epochs=3,
        per_device_train_batch_size=100,
        gradient_accumulation_steps=2,
        learning_rate=0.02,
        optim="adamw",  # gradients averaged over the processes (BPR's in-place SGD trains on one process)
        max_grad_norm=1.0,
        eval_strategy="epoch",
        save_strategy="steps",
        save_steps=10,
        save_total_limit=None,
        logging_steps=5,
        disable_tqdm=True,
        load_best_model_at_end=False,
    )
    rec = Recorder()
    trainer = RecTrainer(model, args, train, eval_data=splits["validation"], callbacks=[rec])
    trainer.train(resume_from_checkpoint=resume)
    acc = trainer.accelerator
    rank = acc.process_index
    params = {k: v.detach().cpu().contiguous() for k, v in trainer.unwrapped.state_dict().items()}
    save_file(params, str(out / f"params_{rank}.safetensors"))
    report = {
        "rank": rank,
        "num_processes": acc.num_processes,
        "distributed_type": str(acc.distributed_type),
        "num_examples": len(trainer.examples),
        "steps_per_epoch": trainer.state.steps_per_epoch,
        "global_step": trainer.state.global_step,
        "seen": {str(k): v for k, v in rec.seen.items()},
        "evals": rec.evals,
        "validation_users": sorted(str(u) for u in set(splits["validation"]["user_id"])),
        "model_wrapped": type(trainer.model).__name__,
    }
    (out / f"report_{rank}.json").write_text(json.dumps(report))
    trainer.close()


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2] if len(sys.argv) > 2 else None)
