"""Training on several processes: torchrun's environment, the process group, the launcher.

    world = World.from_env()              # RANK, WORLD_SIZE, LOCAL_RANK as torchrun sets them (1 process without)
    world.init("cpu")                     # gloo on CPUs, NCCL on CUDA GPUs (one GPU per local rank)
    world.shard(12)                       # this rank's rows of a global batch: rank 1 of 2 -> (6, 12)
    world.all_mean([loss, stop], "cpu")   # the mean over every rank (a stop asked on one rank reaches all)
    launch(2, ["train", "--preset", "cpu-quick"])   # torchrun --standalone here; RunFailed names a dead rank

How the trainer (lab.train) uses it: every rank draws the same global batch from the same seeded
generator and keeps its own contiguous rows, so the ranks' rows together are the batch one process
would draw; DistributedDataParallel averages the gradients; the loss, the evaluation and a request
to stop are averaged the same way, so every rank takes the same decisions. Only rank 0 samples text,
prints events and writes checkpoints (atomically, as always). A checkpoint holds no trace of the
number of processes: it resumes on any number that divides the global batch.

`launch` runs torchrun's agent in this process; when a rank dies, the agent stops the others and
`launch` raises `RunFailed`, whose message names the rank and how it ended (an exit code or a signal).
"""

from __future__ import annotations

import os
import signal
import tempfile
from dataclasses import dataclass

from lab.errors import LabError

# A rank whose collective call failed because another rank is gone exits with this code, so the launcher
# can tell the rank that died first (the cause) from the ranks that lost it (the consequences).
PEER_LOST = 3
# The launcher names a file here; rank 0 writes the latest checkpoint's path and steps to it, so a failed
# run's message can say which checkpoint is intact.
NOTE_ENV = "DEEPDIVE_LAB_CHECKPOINT_NOTE"


@dataclass(frozen=True)
class World:
    """Where this process sits in a run: `rank` of `size` processes, `local_rank` on its machine."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @classmethod
    def from_env(cls, env: dict | None = None) -> "World":
        """Read torchrun's RANK / WORLD_SIZE / LOCAL_RANK; a process started any other way is rank 0 of 1."""
        env = os.environ if env is None else env
        if "WORLD_SIZE" not in env:
            return cls()
        try:
            world = cls(int(env.get("RANK", 0)), int(env["WORLD_SIZE"]), int(env.get("LOCAL_RANK", 0)))
        except ValueError:
            raise LabError(f"RANK, WORLD_SIZE and LOCAL_RANK must be whole numbers (got {env.get('RANK')!r}, "
                           f"{env.get('WORLD_SIZE')!r}, {env.get('LOCAL_RANK')!r}).") from None
        if world.size < 1 or not 0 <= world.rank < world.size or world.local_rank < 0:
            raise LabError(f"rank {world.rank} of {world.size} processes is not a place in a run.")
        return world

    @property
    def distributed(self) -> bool:
        return self.size > 1

    @property
    def main(self) -> bool:
        """Rank 0: the one process that prints, samples and writes checkpoints."""
        return self.rank == 0

    def shard(self, rows: int) -> tuple[int, int]:
        """This rank's rows [lo, hi) of a global batch: 12 rows, rank 1 of 2 -> (6, 12)."""
        share = split_batch(rows, self.size)
        return self.rank * share, (self.rank + 1) * share

    def init(self, device: str) -> None:
        """Join the process group (NCCL on "cuda", gloo on "cpu"); on CUDA, take GPU `local_rank`."""
        import torch
        import torch.distributed as dist

        if device not in ("cpu", "cuda"):
            raise LabError(f"distributed training runs on CUDA GPUs (NCCL) or CPUs (gloo), not on {device}.",
                           "Pass --device cpu, or train in one process.")
        if device == "cuda":
            if self.local_rank >= torch.cuda.device_count():
                raise LabError(f"local rank {self.local_rank} needs GPU {self.local_rank}, and this machine has "
                               f"{torch.cuda.device_count()}.", "Start at most one process per GPU (--nproc).")
            torch.cuda.set_device(self.local_rank)  # "cuda" now means this rank's GPU
        if not dist.is_initialized():
            dist.init_process_group("nccl" if device == "cuda" else "gloo")

    def all_mean(self, values, device: str) -> list[float]:
        """The mean of each value over every rank (float64 on `device`, since NCCL reduces GPU tensors only;
        one collective call for the whole list)."""
        import torch
        import torch.distributed as dist

        t = torch.stack([torch.as_tensor(v, dtype=torch.float64, device=device).detach().reshape(())
                         for v in values])
        dist.all_reduce(t)
        return (t / self.size).tolist()

    def close(self) -> None:
        """Leave the process group (after the last collective call)."""
        import torch.distributed as dist

        if self.distributed and dist.is_initialized():
            dist.destroy_process_group()


def split_batch(rows: int, processes: int, micro: int = 0) -> int:
    """Rows per process of a global batch; with `micro` set, also checks they split into micro-batches.

    split_batch(12, 2) -> 6; split_batch(12, 5) raises: the global batch must divide evenly, so the
    ranks' rows together are exactly the batch one process would train on."""
    if rows % processes:
        raise LabError(f"a global batch of {rows} sequences does not split evenly over {processes} processes.",
                       f"Use a batch that is a multiple of {processes} (--batch), or another --nproc.")
    share = rows // processes
    if micro and (micro < 0 or share % micro):
        raise LabError(f"each process trains {share} sequences a step, which do not split into micro-batches "
                       f"of {micro}.", f"Use a --micro-batch that divides {share}.")
    return share


def note_checkpoint(path: str, steps: int) -> None:
    """Tell the launcher (if any) that `path` now holds a checkpoint after `steps` steps."""
    note = os.environ.get(NOTE_ENV)
    if note:
        tmp = f"{note}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(f"{steps}\n{path}")
        os.replace(tmp, note)


def last_checkpoint(note: str) -> tuple[int, str] | None:
    """(steps, path) from a note file, or None when no checkpoint was written."""
    try:
        steps, path = open(note, encoding="utf-8").read().split("\n", 1)
        return int(steps), path
    except (OSError, ValueError):
        return None


def is_peer_lost(exc: BaseException) -> bool:
    """Whether a collective call failed because another rank is gone (its socket closed or reset)."""
    import torch.distributed as dist

    text = str(exc).lower()
    return isinstance(exc, (dist.DistError, RuntimeError)) and any(
        words in text for words in ("connection closed by peer", "connection reset", "broken pipe",
                                    "socket", "timed out", "nccl communicator was aborted"))


class RunFailed(LabError):
    """A distributed run ended because a rank failed; the message names it and how it ended."""


def describe(rank: int, exitcode: int, signal_name: str = "") -> str:
    """`rank 1 was killed by SIGKILL` / `rank 0 exited with code 1`."""
    if exitcode < 0:
        return f"rank {rank} was killed by {signal_name or f'signal {-exitcode}'}"
    return f"rank {rank} exited with code {exitcode}"


def launch(nproc: int, argv: list[str]) -> None:
    """Run `python -m deepdive_lab ARGV` as `nproc` ranks on this machine (torchrun --standalone).

    Returns when every rank has finished; raises RunFailed naming the rank that failed first (a rank that
    only lost contact with it, exit code PEER_LOST, or that the agent stopped with SIGTERM, is not the
    cause), or KeyboardInterrupt on Ctrl+C
    (the agent has passed it on: the ranks stop together at the end of a step and rank 0 saves)."""
    import logging

    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args, run

    if nproc < 1:
        raise LabError(f"--nproc {nproc}: a run needs at least one process.")
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    # The agent's own log lines (rendezvous, the failure block with its traceback) would repeat what the
    # message below says; its errors still reach us as exceptions. (Each of its loggers has its own level.)
    for name in list(logging.root.manager.loggerDict):
        if name.startswith(("torch.distributed.elastic", "torch.distributed.run")):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    args = parse_args(["--standalone", "--nproc-per-node", str(nproc), "--module", "deepdive_lab", *argv])
    notes = tempfile.TemporaryDirectory(prefix="deepdive-run-")
    note = os.path.join(notes.name, "checkpoint")
    os.environ[NOTE_ENV] = note
    try:
        run(args)
    except ChildFailedError as exc:
        failures = exc.failures
        # a rank that lost the failed one (PEER_LOST), or that the agent then stopped (SIGTERM), is not a cause
        causes = {r: f for r, f in failures.items() if f.exitcode not in (PEER_LOST, -signal.SIGTERM)} or failures
        first = min(causes, key=lambda r: (causes[r].timestamp, r))
        others = [describe(r, f.exitcode, f.signal_name()) for r, f in sorted(causes.items()) if r != first]
        text = describe(first, causes[first].exitcode, causes[first].signal_name())
        saved = last_checkpoint(note)
        kept = (f"The last checkpoint, after {saved[0]} steps, is intact: {saved[1]} (continue it with "
                f"--resume {saved[1]}, on any number of processes)." if saved else
                "No checkpoint was written before it stopped (--checkpoint-interval writes them as it goes).")
        raise RunFailed(f"the run of {nproc} processes stopped: {text}"
                        + (f" ({'; '.join(others)})" if others else "")
                        + "; the other ranks were stopped.", kept) from None
    except SignalException:
        raise KeyboardInterrupt from None
    except (RuntimeError, ValueError, OSError) as exc:  # the agent could not start or meet its processes
        raise LabError(f"torchrun could not run {nproc} processes here: {exc.__class__.__name__}: {exc}") from None
    finally:
        os.environ.pop(NOTE_ENV, None)
        notes.cleanup()
