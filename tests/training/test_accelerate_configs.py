"""The example ``accelerate`` config files in ``examples/accelerate/`` are checked with accelerate's own code.

Every file goes through what ``accelerate launch --config_file <file> -m hf_recsys.cli train ...`` does before it
starts a process: ``load_config_from_file`` (unknown keys, enum values), the launcher's ``_validate_launch_command``
(which launcher, defaults copied into the arguments) and the ``prepare_*_env`` helper of the chosen launcher (the
environment the workers get). The DeepSpeed and FSDP plugins are then built from that environment, as the training
process would build them. Nothing here needs a GPU or DeepSpeed installed; the CPU configs are also really launched.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from unittest import mock

import pytest
import yaml
from accelerate.commands.config.config_args import ClusterConfig, load_config_from_file
from accelerate.commands.launch import _validate_launch_command, launch_command_parser
from accelerate.utils import ComputeEnvironment, DeepSpeedPlugin, DistributedType, FullyShardedDataParallelPlugin
from accelerate.utils.launch import prepare_deepspeed_cmd_env, prepare_multi_gpu_env, prepare_simple_launcher_cmd_env

REPO = Path(__file__).resolve().parents[2]
CONFIG_DIR = REPO / "examples" / "accelerate"
TRAIN_ARGS = ["-m", "hf_recsys.cli", "train", "examples/train/gpt_sequential_ml_latest_small.yaml"]

# file -> (distributed_type, num_processes, num_machines, mixed_precision, use_cpu, launcher accelerate picks)
# "simple": one process, started directly; "torchrun": torch.distributed.run with nproc_per_node workers per machine.
EXPECTED = {
    "cpu_single.yaml": (DistributedType.NO, 1, 1, "no", True, "simple"),
    "cpu_2proc.yaml": (DistributedType.MULTI_GPU, 2, 1, "no", True, "torchrun"),
    "gpu_single.yaml": (DistributedType.NO, 1, 1, "bf16", False, "simple"),
    "multi_gpu.yaml": (DistributedType.MULTI_GPU, 8, 1, "bf16", False, "torchrun"),
    "multi_node.yaml": (DistributedType.MULTI_GPU, 16, 2, "bf16", False, "torchrun"),
    "deepspeed_zero2.yaml": (DistributedType.DEEPSPEED, 8, 1, "bf16", False, "deepspeed"),
    "fsdp.yaml": (DistributedType.FSDP, 8, 1, "bf16", False, "torchrun"),
}
FILES = sorted(EXPECTED)


def _path(name: str) -> str:
    return str(CONFIG_DIR / name)


def _launch(name: str, *extra: str):
    """Run the launcher's own parsing and validation for ``accelerate launch --config_file <name> ... train``; return
    (args, loaded config, launcher kind, environment for the workers)."""
    parser = launch_command_parser()
    args = parser.parse_args(["--config_file", _path(name), *extra, *TRAIN_ARGS])
    args, defaults, mp_from_config = _validate_launch_command(args)
    # the port check looks at this machine; a busy 29500 here says nothing about the config
    with mock.patch("accelerate.utils.launch.is_port_in_use", return_value=False):
        if args.use_deepspeed:
            fields = list(defaults.deepspeed_config) + (["mixed_precision"] if mp_from_config else [])
            args.deepspeed_fields_from_accelerate_config = ",".join(fields)
            cmd, env = prepare_deepspeed_cmd_env(args)
            kind = "deepspeed"
            assert cmd is None  # single machine: DeepSpeed runs through torchrun too
        elif args.multi_gpu or args.use_fsdp:
            env, kind = prepare_multi_gpu_env(args), "torchrun"
        else:
            cmd, env = prepare_simple_launcher_cmd_env(args)
            kind = "simple"
            assert cmd[-len(TRAIN_ARGS) :] == TRAIN_ARGS
    return args, defaults, kind, env


def _worker_env(env: dict[str, str]) -> dict[str, str]:
    """The variables the launcher adds for its workers (not the ones inherited from this process)."""
    return {k: v for k, v in env.items() if os.environ.get(k) != v}


def test_every_config_file_is_covered():
    on_disk = sorted(p.name for p in CONFIG_DIR.iterdir() if p.suffix in (".yaml", ".yml", ".json"))
    assert on_disk == FILES, "add new files in examples/accelerate/ to EXPECTED in this test"


@pytest.mark.parametrize("name", FILES, ids=FILES)
def test_header_names_purpose_and_launch_command(name):
    lines = (CONFIG_DIR / name).read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("# ") and len(lines[0]) > 10, "first line: what the file is for"
    header = [line for line in lines if line.startswith("#")]
    assert any(f"accelerate launch --config_file examples/accelerate/{name} " in line for line in header)


@pytest.mark.parametrize("name", FILES, ids=FILES)
def test_config_loads_with_accelerate(name):
    dist, nproc, nmachines, mp, use_cpu, _ = EXPECTED[name]
    config = load_config_from_file(_path(name))  # raises on unknown keys and invalid enum values
    assert isinstance(config, ClusterConfig)
    assert config.compute_environment == ComputeEnvironment.LOCAL_MACHINE
    assert config.distributed_type == dist
    assert (config.num_processes, config.num_machines, config.machine_rank) == (nproc, nmachines, 0)
    # a string: unquoted `no` in YAML would be the boolean False and break `accelerate launch`
    assert config.mixed_precision == mp
    assert config.use_cpu is use_cpu
    assert config.deepspeed_config == {} or dist == DistributedType.DEEPSPEED
    assert config.fsdp_config == {} or dist == DistributedType.FSDP
    if nmachines > 1:
        assert config.main_process_ip and config.main_process_port


# top-level keys `_validate_launch_command` reads from the config itself rather than through the argparse namespace
_READ_DIRECTLY = {"compute_environment", "distributed_type", "mixed_precision", "debug", "gpu_ids"}


@pytest.mark.parametrize("name", FILES, ids=FILES)
def test_no_key_is_silently_ignored_by_launch(name):
    """`accelerate launch` copies a file value only where its command-line default is None: a key whose flag has
    another default (`same_network: true`, `rdzv_backend: c10d`, `enable_cpu_affinity: true`) is dropped silently."""
    raw = yaml.safe_load((CONFIG_DIR / name).read_text(encoding="utf-8"))
    cli_defaults = vars(launch_command_parser().parse_args(["x.py"]))
    ignored = [
        key
        for key, value in raw.items()
        if not isinstance(value, dict) and key not in _READ_DIRECTLY and cli_defaults.get(key) is not None
    ]
    assert not ignored, f"{name}: accelerate launch ignores {ignored} from a config file; pass them as flags"


@pytest.mark.parametrize("name", FILES, ids=FILES)
def test_launcher_accepts_config(name):
    dist, nproc, nmachines, mp, _, launcher = EXPECTED[name]
    args, _, kind, env = _launch(name)
    assert kind == launcher
    assert args.num_processes == nproc and args.num_machines == nmachines
    assert args.mixed_precision == mp
    assert _worker_env(env)["ACCELERATE_MIXED_PRECISION"] == mp
    if kind != "simple":
        assert int(args.nproc_per_node) == nproc // nmachines


def test_multi_node_rank_and_rendezvous():
    args, _, _, _ = _launch("multi_node.yaml")
    assert (args.nnodes, args.node_rank, args.nproc_per_node) == ("2", 0, "8")
    assert (args.rdzv_backend, args.rdzv_endpoint) == ("static", "10.0.0.1:29500")
    # the second node passes --machine_rank 1 on the command line; it wins over the file
    args, _, _, _ = _launch("multi_node.yaml", "--machine_rank", "1")
    assert args.node_rank == 1


def test_cpu_2proc_uses_a_free_port():
    args, _, _, _ = _launch("cpu_2proc.yaml")
    assert args.main_process_port > 0  # 0 in the file: the launcher picked a free port


def test_deepspeed_plugin_from_launcher_env():
    _, config, _, env = _launch("deepspeed_zero2.yaml")
    assert config.deepspeed_config["zero_stage"] == 2
    assert {"gradient_accumulation_steps", "offload_optimizer_device", "offload_param_device"} <= set(
        config.deepspeed_config
    )
    worker_env = _worker_env(env)
    assert worker_env["ACCELERATE_USE_DEEPSPEED"] == "true"
    with mock.patch.dict(os.environ, worker_env):
        plugin = DeepSpeedPlugin()
    ds = plugin.deepspeed_config
    assert ds["zero_optimization"]["stage"] == 2
    assert ds["zero_optimization"]["offload_optimizer"]["device"] == "none"
    assert ds["zero_optimization"]["offload_param"]["device"] == "none"
    assert ds["gradient_accumulation_steps"] == config.deepspeed_config["gradient_accumulation_steps"]


def test_fsdp_plugin_from_launcher_env():
    _, config, _, env = _launch("fsdp.yaml")
    assert config.fsdp_config["fsdp_version"] == 2
    worker_env = _worker_env(env)
    assert worker_env["ACCELERATE_USE_FSDP"] == "true"
    with mock.patch.dict(os.environ, worker_env):
        plugin = FullyShardedDataParallelPlugin()
    assert plugin.fsdp_version == 2
    assert plugin.reshard_after_forward is True  # FSDP2's FULL_SHARD
    assert plugin.auto_wrap_policy.__name__ == "transformer_auto_wrap_policy"
    assert plugin.state_dict_type.name == config.fsdp_config["fsdp_state_dict_type"]
    assert type(plugin.cpu_offload).__name__ == "OffloadPolicy"  # the no-offload policy (CPUOffloadPolicy offloads)


def test_fsdp_wrap_class_exists_in_gpt_sequential_model():
    """The block class fsdp.yaml wraps must be a module of the model it is documented for (FSDP raises otherwise)."""
    from accelerate.utils.dataclasses import get_module_class_from_name

    from hf_recsys.models.sequential import CausalSequentialConfig, CausalSequentialRecommender

    names = load_config_from_file(_path("fsdp.yaml")).fsdp_config["fsdp_transformer_layer_cls_to_wrap"].split(",")
    model = CausalSequentialRecommender(
        CausalSequentialConfig(max_sequence_length=8, hidden_size=16, num_heads=2, num_layers=1)
    )
    for name in names:
        assert get_module_class_from_name(model, name) is not None, name


# --- really launched (CPU only) ---------------------------------------------------------------------------------

# each worker writes its own report file: the workers share one stdout, where their lines can interleave
PROBE = """
import json, sys, torch
from pathlib import Path
from accelerate import Accelerator
acc = Accelerator(cpu=True)
dist = torch.distributed.is_available() and torch.distributed.is_initialized()
report = {
    "process_index": acc.process_index,
    "num_processes": acc.num_processes,
    "distributed_type": acc.distributed_type.value,
    "world_size": torch.distributed.get_world_size() if dist else 1,
    "backend": torch.distributed.get_backend() if dist else None,
}
Path(sys.argv[1], f"report_{acc.process_index}.json").write_text(json.dumps(report))
"""


def _accelerate_launch(name: str, tmp_path: Path) -> list[dict]:
    script, out = tmp_path / "probe.py", tmp_path / "reports"
    script.write_text(PROBE, encoding="utf-8")
    out.mkdir()
    exe = shutil.which("accelerate", path=str(Path(sys.executable).parent))
    cmd = [exe] if exe else [sys.executable, "-m", "accelerate.commands.accelerate_cli"]
    # keep the launched workers independent of any distributed setup of the process running the tests
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("ACCELERATE_")
        and k not in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT")
    }
    env["HF_HUB_OFFLINE"] = "1"
    proc = subprocess.run(
        [*cmd, "launch", "--config_file", _path(name), str(script), str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    reports = [json.loads(p.read_text()) for p in sorted(out.glob("report_*.json"))]
    return sorted(reports, key=lambda r: r["process_index"])


def test_launch_cpu_single_runs_one_process(tmp_path):
    (report,) = _accelerate_launch("cpu_single.yaml", tmp_path)
    assert report["num_processes"] == 1 and report["world_size"] == 1
    assert report["distributed_type"] == "NO"


def test_launch_cpu_2proc_runs_two_gloo_processes(tmp_path):
    reports = _accelerate_launch("cpu_2proc.yaml", tmp_path)
    assert [r["process_index"] for r in reports] == [0, 1]
    for r in reports:
        assert r["num_processes"] == 2 and r["world_size"] == 2
        assert r["distributed_type"] == "MULTI_CPU" and r["backend"] == "gloo"
