"""The `deepdive-lab` command.

    deepdive-lab                      start the lab (the Textual app)
    deepdive-lab doctor               versions, devices and every model found
    deepdive-lab models               the catalogue: names, sources, sizes
    deepdive-lab train [--preset cpu] pretrain the tiny GPT headless, one line per step
    deepdive-lab train --nproc 2      the same on 2 processes (torchrun, DistributedDataParallel)
    deepdive-lab sft [MODEL]          finetune on conversations headless (tiny -> tiny-chat, or Gemma with LoRA)
    deepdive-lab rl                   RL on the tiny chat model headless (grpo or keep), one line per step
    deepdive-lab rlhf                 RLHF on tiny-chat headless: rank, reward model, RL against it
    deepdive-lab talk [TRACK]         give the talk: the lab in talk mode, one key a step
    deepdive-lab talk rehearse [TRACK] run every step headless, fill the caches, time each step
    deepdive-lab talk notes           follow the presenter notes of the talk running elsewhere
    deepdive-lab serve [--port 8000]  the lab in a browser tab (one lab per tab)
Flags: --model / --base-model / --chat-model NAME|PATH|REMOTE, --device auto|cpu|cuda|mps, --backend, --no-models.
A REMOTE is `openai+http://host:8000/v1#model` (completions), `openai-chat+...` (chat) or a
remote's name (`deepdive-lab models` lists them).
"""

from __future__ import annotations

import argparse
import signal
import sys

from lab.catalogue import BASE_DEFAULT, CHAT_DEFAULT
from lab.memory import keep_freed_memory


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="deepdive-lab", description="A terminal lab for seeing how language models work.")
    p.add_argument("--base-model", help=f"base (pretrained) model: name, .gguf path, HF folder, hub id or remote (default {BASE_DEFAULT})")
    p.add_argument("--chat-model", help=f"chat (assistant) model (default {CHAT_DEFAULT})")
    p.add_argument("--model", help="use this one model for both roles")
    p.add_argument("--device", choices=["auto", "cpu", "cuda", "mps", "gpu"], help="where models run (default: GPU when there is one)")
    p.add_argument("--backend", choices=["auto", "llama.cpp", "transformers"], help="backend for GGUF models (default llama.cpp)")
    p.add_argument("--theme", help="projector-dark, projector-light (high contrast, for projectors) or any Textual theme")
    p.add_argument("--open", metavar="FILE", help="reopen a saved lab state (palette: app: save the lab's state)")
    p.add_argument("--config", help="a config file instead of the platform's (deepdive-lab doctor shows where it is)")
    p.add_argument("--no-models", action="store_true", help="start without loading the models (the encodings still work)")
    sub = p.add_subparsers(dest="command")
    sub.add_parser("doctor", help="versions, devices and the models found")
    sub.add_parser("models", help="list the models the catalogue finds")
    k = sub.add_parser("talk", help="give a talk from the lab (talk [TRACK] | talk rehearse [TRACK] | talk notes)")
    k.add_argument("words", nargs="*", metavar="[rehearse|notes] [TRACK]",
                   help="a track file (default: the shipped Deep Dive track); 'rehearse' runs it headless first; "
                        "'notes' follows the notes of the talk running in another terminal")
    t = sub.add_parser("train", help="pretrain the tiny GPT headless, printing events as lines")
    t.add_argument("--preset", default="cpu", help="cpu (nanoGPT's CPU Shakespeare config), cpu-quick, gpu-small, gpu-gpt2")
    t.add_argument("--data", help="a text file (default: the shipped Tiny Shakespeare)")
    t.add_argument("--tokenizer", choices=["char", "bpe"])
    t.add_argument("--iters", type=int, help="training steps (the cosine decay follows)")
    t.add_argument("--layers", type=int)
    t.add_argument("--heads", type=int)
    t.add_argument("--width", type=int)
    t.add_argument("--context", type=int)
    t.add_argument("--batch", type=int)
    t.add_argument("--dropout", type=float)
    t.add_argument("--lr", type=float)
    t.add_argument("--eval-interval", type=int)
    t.add_argument("--sample-interval", type=int)
    t.add_argument("--seed", type=int)
    t.add_argument("--out", help="checkpoint folder (default: the lab cache's tiny/)")
    t.add_argument("--resume", help="continue from this checkpoint (on any number of processes)")
    t.add_argument("--checkpoint-interval", type=int, help="steps between checkpoints (default: only at the end)")
    t.add_argument("--nproc", type=int, help="train on N processes on this machine (one per GPU, or CPU processes) "
                                             "with torchrun; --batch is then the global batch")
    t.add_argument("--micro-batch", type=int, help="sequences per forward pass on each process; gradients "
                                                   "accumulate to the whole batch")
    t.add_argument("--quiet", action="store_true", help="print only evaluation steps")
    f = sub.add_parser("sft", help="supervised finetuning on conversations, headless, printing events as lines")
    f.add_argument("target", nargs="?", default="tiny", metavar="MODEL",
                   help="tiny (pretrain the tiny GPT, then SFT: tiny-chat) or a transformers model to LoRA-finetune "
                        f"(e.g. {BASE_DEFAULT}; a GGUF is de-quantised)")
    f.add_argument("--data", help="conversations as JSONL in the OpenAI messages format (default: the lab's set)")
    f.add_argument("--style", choices=["working", "answer"], help="solution style of the default word problems")
    f.add_argument("--steps", type=int, help="SFT steps")
    f.add_argument("--rank", type=int, help="LoRA rank (transformers models)")
    f.add_argument("--out", help=f"name of the finetuned model (LoRA; default {BASE_DEFAULT}-sft); tiny gives tiny-chat")
    f.add_argument("--preset", default="cpu-quick", help="tiny model presets: cpu-quick, cpu, gpu")
    f.add_argument("--pretrain-steps", type=int, help="tiny: pretraining steps before SFT")
    f.add_argument("--batch", type=int)
    f.add_argument("--lr", type=float)
    f.add_argument("--seed", type=int)
    f.add_argument("--experiment", action="store_true",
                   help="tiny: answer-first vs working-first SFT on the word problems, scored on held-out ones")
    f.add_argument("--quiet", action="store_true", help="print only evaluation steps")
    r = sub.add_parser("rl", help="reinforcement learning on checkable problems (tiny-chat), printing events as lines")
    r.add_argument("--preset", default="tiny", help="tiny or tiny-keep")
    r.add_argument("--rule", choices=["grpo", "keep"], help="grpo (group-normalised policy gradient) or keep "
                                                             "(SFT on the rollouts that passed)")
    r.add_argument("--base", help="the tiny-chat checkpoint to start from (default: the lab's tiny-chat)")
    r.add_argument("--tasks", help="comma-separated: apples,letters,arithmetic")
    r.add_argument("--steps", type=int)
    r.add_argument("--group", type=int, help="samples per prompt (G)")
    r.add_argument("--prompts", type=int, help="prompts per step")
    r.add_argument("--kl", type=float, help="KL coefficient to the starting model (grpo)")
    r.add_argument("--lr", type=float)
    r.add_argument("--seed", type=int)
    r.add_argument("--out", help="folder of the result's ckpt.pt (default <cache>/tiny-chat-rl)")
    r.add_argument("--model", metavar="NAME",
                   help="a transformers chat model instead of tiny-chat (e.g. gemma-3-270m-sft): GRPO through "
                        "trl with LoRA; presets gpu (default) or cpu-smoke; says how long it will take first")
    r.add_argument("--yes", action="store_true", help="with --model: start without asking after the estimate")
    r.add_argument("--imperfect", type=float, metavar="FRACTION",
                   help="the AlphaGo experiment: SFT from scratch on data with this fraction of wrong worked "
                        "solutions, then RL; prints the held-out pass rates")
    h = sub.add_parser("rlhf", help="RLHF on the tiny chat model with a simulated person, printing events as lines")
    h.add_argument("--from", dest="source", default="tiny-chat", metavar="MODEL",
                   help="the SFT model: tiny-chat (default) or a tiny-chat checkpoint path")
    h.add_argument("--prompts", type=int, help="prompts ranked in step 1 (5 rollouts each)")
    h.add_argument("--rm-steps", type=int, help="reward model training steps")
    h.add_argument("--steps", type=int, help="RL steps against the reward model")
    h.add_argument("--kl", type=float, help="KL penalty to the SFT model (a defence)")
    h.add_argument("--patience", type=int, help="stop early after N held-out evaluations without improvement")
    h.add_argument("--defences", action="store_true", help="run RL three times: no defence, KL penalty, early stop")
    h.add_argument("--seed", type=int)
    s = sub.add_parser("serve", help="serve the lab to a browser (textual-serve); each tab runs its own lab")
    s.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    s.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    return p


def train_command(args) -> int:
    import os
    from dataclasses import replace

    from lab.errors import LabError

    from lab.train import PRESETS, Trainer

    if args.preset not in PRESETS:
        print(f"unknown preset {args.preset!r}; choose from {', '.join(PRESETS)}", file=sys.stderr)
        return 2
    if args.nproc is not None and "WORLD_SIZE" not in os.environ:
        return launch_training(args)
    from lab.distributed import World, note_checkpoint

    overrides = {k: v for k, v in {
        "data": args.data, "tokenizer": args.tokenizer, "max_iters": args.iters, "n_layer": args.layers,
        "n_head": args.heads, "n_embd": args.width, "block_size": args.context, "batch_size": args.batch,
        "dropout": args.dropout, "learning_rate": args.lr, "eval_interval": args.eval_interval,
        "sample_interval": args.sample_interval, "seed": args.seed, "out_dir": args.out,
        "checkpoint_interval": args.checkpoint_interval, "micro_batch": args.micro_batch,
        "device": args.device if args.device != "auto" else None}.items() if v is not None}
    if args.iters is not None:
        overrides["lr_decay_iters"] = args.iters
    trainer = world = None
    restore = {}
    try:
        world = World.from_env()
        if args.nproc is not None and args.nproc != world.size:
            raise LabError(f"--nproc {args.nproc}, but torchrun started {world.size} processes.",
                           "Under torchrun, leave --nproc out (its --nproc-per-node and --nnodes decide).")
        say = print if world.main else (lambda *a, **k: None)  # rank 0 alone prints events
        trainer = (Trainer.resume_from(args.resume, **overrides) if args.resume
                   else Trainer(replace(PRESETS[args.preset], **overrides)))
        if world.distributed:
            restore = stop_on_signals(trainer)
        on = f"{world.size} processes ({trainer.device})" if world.distributed else trainer.device
        say(f"training {trainer.model.n_params():,} parameters on {on}, "
            f"{len(trainer.train_data):,} training tokens ({trainer.corpus.kind}, vocab {len(trainer.corpus.pieces)})",
            flush=True)
        for event in trainer.run():
            if not args.quiet or event.val_loss is not None or event.stopped:
                say(event.line(), flush=True)
            if event.checkpoint and world.main:
                note_checkpoint(event.checkpoint, trainer.step)
    except LabError as exc:
        where = f"rank {world.rank}: " if world is not None and world.distributed else ""
        print(f"{where}error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        if trainer is None:
            return 130
        path = trainer.save()
        print(f"interrupted at step {trainer.step}; checkpoint {path}")
        return 130
    except Exception as exc:  # another rank is gone: its failure, not this one's, is the cause
        from lab.distributed import PEER_LOST, is_peer_lost

        if world is None or not world.distributed or not is_peer_lost(exc):
            raise
        print(f"rank {world.rank}: lost contact with the other processes of the run; stopping.", file=sys.stderr)
        return PEER_LOST
    finally:
        for sig, handler in restore.items():  # past this point a SIGTERM simply ends the process
            signal.signal(sig, handler)
        if world is not None:
            world.close()
    return 0


def stop_on_signals(trainer) -> dict:
    """In a distributed rank: Ctrl+C (which torchrun passes on) stops every rank at the end of a step,
    and rank 0 writes the checkpoint; SIGTERM (torchrun stopping the run) exits at once, through the
    `finally` blocks, so a checkpoint being written leaves no temporary file. Returns the handlers replaced."""
    return {signal.SIGINT: signal.signal(signal.SIGINT, lambda *_: trainer.stop()),
            signal.SIGTERM: signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))}


def launch_training(args) -> int:
    """`train --nproc N` outside torchrun: start N ranks of this same command on this machine."""
    from lab.distributed import launch, split_batch
    from lab.errors import LabError
    from lab.train import PRESETS

    argv, skip = [], False
    for word in args.argv:  # each rank gets the same command without --nproc (torchrun sets its place)
        if not skip and not word.startswith("--nproc="):
            argv += [word] if word != "--nproc" else []
        skip = word == "--nproc"
    try:
        if not args.resume:  # said at once, before any process starts (a resumed run's batch is in its file)
            split_batch(args.batch or PRESETS[args.preset].batch_size, args.nproc, args.micro_batch or 0)
        launch(args.nproc, argv)
    except LabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted: every rank was asked to stop at the end of its step; rank 0 wrote the checkpoint "
              "named above.", file=sys.stderr)
        return 130
    return 0


def sft_command(args) -> int:
    """Finetune headless; each event is one line (tiny: "pretrain ..." then "sft ...")."""
    from dataclasses import replace

    from lab.errors import LabError

    common = {k: v for k, v in {"conversations": args.data, "style": args.style, "max_iters": args.steps,
                                "lr_decay_iters": args.steps, "batch_size": args.batch, "learning_rate": args.lr,
                                "seed": args.seed}.items() if v is not None}
    trainer = None
    try:
        if args.target == "tiny":
            from lab.sft import PRESETS, TinyChat

            if args.preset not in PRESETS:
                print(f"unknown preset {args.preset!r}; choose from {', '.join(PRESETS)}", file=sys.stderr)
                return 2
            if args.pretrain_steps is not None:
                common["pretrain_iters"] = args.pretrain_steps
            device = {"device": args.device} if args.device != "auto" else {}
            cfg = replace(PRESETS[args.preset], **common, **device)
            if args.experiment:
                from lab.sft import StyleExperiment

                trainer = StyleExperiment(replace(cfg, counts=(0, cfg.counts[1], 0, 0)))
            else:
                trainer = TinyChat(cfg)
            events = trainer.run()
        else:
            from lab.lora import LoRAConfig, LoRATrainer

            lora = {"rank": args.rank} if args.rank else {}
            trainer = LoRATrainer(LoRAConfig(model=args.target, device=args.device, **common, **lora))
            print(f"LoRA rank {trainer.cfg.rank} on {trainer.backend.info.name} ({trainer.device}): "
                  f"{sum(p.numel() for p in trainer.params):,} trainable parameters, "
                  f"{len(trainer.train_convs)} training conversations", flush=True)
            events = (("sft", e) for e in trainer.run())
        last = None
        for phase, event in events:
            last = event
            if not args.quiet or event.val_loss is not None or event.stopped:
                print(f"{phase} {event.line()}", flush=True)
        if getattr(trainer, "results", None):
            for style, scored in trainer.results.items():
                right = sum(s.passed for s in scored)
                print(f"{style}-first: {right}/{len(scored)} held-out problems right ({right / len(scored):.0%})")
                for s in scored[:3]:
                    print(f"  {'✓' if s.passed else '✗'} {s.question}\n    {s.reply} (checker read {s.got})")
        elif last is not None and last.stopped == "done":
            if args.target == "tiny":
                print(f"saved tiny-chat: {last.checkpoint} (open it with --chat-model tiny-chat)")
            else:
                name = args.out or f"{BASE_DEFAULT}-sft"
                print(f"saved {name}: {trainer.save_model(name)} (open it with --chat-model {name})")
    except LabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        current = getattr(trainer, "current", trainer)
        if current is not None:
            print(f"interrupted at step {current.step}; checkpoint {current.save()}")
        return 130
    return 0


def rl_command(args) -> int:
    """RL headless; each event is one line ("rl step 3/30 · pass 41% · ...")."""
    from dataclasses import replace

    from lab.errors import LabError
    from lab.rl import PRESETS, ImperfectExperiment, trainer_for

    if args.model:
        return rl_transformers(args)
    if args.preset not in PRESETS:
        print(f"unknown preset {args.preset!r}; choose from {', '.join(PRESETS)}", file=sys.stderr)
        return 2
    changes = {k: v for k, v in {"rule": args.rule, "base": args.base, "steps": args.steps, "group": args.group,
                                 "prompts_per_step": args.prompts, "kl_coef": args.kl, "learning_rate": args.lr,
                                 "seed": args.seed, "out_dir": args.out}.items() if v is not None}
    if args.tasks:
        changes["tasks"] = tuple(t.strip() for t in args.tasks.split(",") if t.strip())
    cfg = replace(PRESETS[args.preset], **changes)
    job = None
    try:
        if args.imperfect is not None:
            from lab.paths import cache_dir
            from lab.sft import PRESETS as SFT_PRESETS

            if not 0 <= args.imperfect <= 1:
                print("--imperfect takes a fraction from 0 to 1", file=sys.stderr)
                return 2
            out = cache_dir() / "rl-imperfect"
            base_counts = SFT_PRESETS[cfg.sft_preset].counts
            counts = (0,) + tuple(n if task in cfg.tasks else 0 for task, n in zip(("apples", "letters", "arithmetic"),
                                                                                   base_counts[1:]))
            sft = replace(SFT_PRESETS[cfg.sft_preset], counts=counts, out_dir=str(out / "sft"))
            job = ImperfectExperiment(sft, replace(cfg, out_dir=str(out / "rl")), args.imperfect)
            events = job.run()
        else:
            job = trainer_for(cfg)
            print(f"{cfg.rule} on {job.model.n_params():,} parameters: {len(job.train_set)} training problems, "
                  f"{len(job.held_set)} held-out, {cfg.prompts_per_step} prompts x {cfg.group} samples a step",
                  flush=True)
            events = (("rl", e) for e in job.run())
        for phase, ev in events:
            if phase != "rl" and not (ev.val_loss is not None or ev.stopped):
                continue
            print(f"{phase} {ev.line()}", flush=True)
        if isinstance(job, ImperfectExperiment) and job.results:
            r = job.results
            print(f"SFT data right: {r['data']:.0%} · held-out after SFT: {r.get('sft', float('nan')):.0%} · "
                  f"after RL: {r.get('rl', float('nan')):.0%}")
    except LabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        current = getattr(job, "current", job)
        if current is not None:
            print(f"interrupted at step {current.step}; checkpoint {current.save()}")
        return 130
    return 0


def rl_transformers(args) -> int:
    """`rl --model NAME`: GRPO (trl) with LoRA on a transformers chat model (lab.rl_gemma)."""
    from dataclasses import replace
    from pathlib import Path

    from lab.errors import LabError
    from lab.rl_gemma import PRESETS, GemmaRL

    preset = args.preset if args.preset in PRESETS else "gpu"
    changes = {k: v for k, v in {"steps": args.steps, "group": args.group, "prompts_per_step": args.prompts,
                                 "beta": args.kl, "learning_rate": args.lr, "seed": args.seed,
                                 "out_dir": args.out}.items() if v is not None}
    if args.tasks:
        changes["tasks"] = tuple(t.strip() for t in args.tasks.split(",") if t.strip())
    run = None
    try:
        run = GemmaRL(replace(PRESETS[preset], model=args.model, **changes))
        print(f"estimate: {run.estimate()}", flush=True)
        if not args.yes and sys.stdin.isatty():
            if input("start? [y/N] ").strip().lower() not in ("y", "yes"):
                return 0
        last = None
        for ev in run.run():
            print(f"rl {ev.line()}", flush=True)
            last = ev
        if last is not None and last.stopped in ("done", "stopped"):
            print(f"saved {run.save_model(f'{Path(args.model).name}-rl')}")
    except LabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        if run is not None:
            run.stop()
        print("interrupted", file=sys.stderr)
        return 130
    return 0


def print_remotes() -> None:
    """The remotes (presets and the config file) with what each can do; keys never printed."""
    from lab import remotes
    from lab.errors import LabError

    print(f"\nremotes (use the name as --base-model/--chat-model; add your own in {remotes.config_file()})")
    try:
        table = remotes.all_remotes()
    except LabError as exc:
        print(f"  {exc}")
        return
    for r in table.values():
        can = (f"next-token top {r.top_logprobs}, streams, surprisal if the server echoes prompt logprobs"
               if r.kind == "completions" else
               f"chat with the server's template, streams, top {r.top_logprobs} logprobs where offered")
        print(f"{r.name:<28} {r.kind:<11} {r.host:<26} {r.key_status()}  ({r.source})\n{'':<28} {can}; "
              f"no logit lens{'; ' + r.note if r.note else ''}")


def serve_command(args) -> int:
    """Serve the lab; each browser tab starts `python -m deepdive_lab` with this command's flags."""
    from deepdive_lab.serve import serve

    if build_app(args) is None:  # a bad flag (an unknown theme, say) is said here, not in each tab
        return 2
    lab_args = ["--base-model", args.base_model, "--chat-model", args.chat_model, "--device", args.device,
                "--backend", args.backend]
    for flag, value in (("--theme", args.theme), ("--config", args.config), ("--open", args.open)):
        lab_args += [flag, value] if value else []
    lab_args += ["--no-models"] if args.no_models else []
    try:
        serve(lab_args, host=args.host, port=args.port)
    except (OSError, OverflowError) as exc:  # the port is taken, out of range, or the host is not this machine's
        print(f"error: cannot serve on {args.host}:{args.port}: {exc}", file=sys.stderr)
        return 1
    return 0


def talk_command(args) -> int:
    from lab.errors import LabError
    from lab.talk import load_track

    words = list(args.words)
    action = words.pop(0) if words and words[0] in ("rehearse", "notes") else "give"
    if len(words) > 1:
        print("usage: deepdive-lab talk [rehearse|notes] [TRACK]", file=sys.stderr)
        return 2
    if action == "notes":
        from screens.talk import follow_notes

        try:
            follow_notes(print)
        except KeyboardInterrupt:
            pass
        return 0
    try:
        track = load_track(words[0] if words else (args.config_data.track or None))
    except LabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for problem in track.problems:
        print(f"warning: {problem}", file=sys.stderr)
    app = build_app(args, talk=None if action == "rehearse" else track)
    if app is None:
        return 2
    if action == "give":
        app.run()
        return app.return_code or 0
    from screens.talk import rehearse

    report: list = []
    app.run(headless=True, size=(120, 40), auto_pilot=lambda pilot: rehearse(pilot, track, report, print))
    return 1 if any(r.problem for r in report) else 0


def build_app(args, talk=None):
    """The app for these flags, or None after printing why not (an unknown theme, say)."""
    from lab.errors import LabError
    from screens.app import make_app

    try:
        return make_app(base_model=args.base_model, chat_model=args.chat_model, device=args.device,
                        backend=args.backend, theme=args.theme, keys=args.config_data.keys, talk=talk,
                        open_state=getattr(args, "open", None), load_models=not args.no_models)
    except LabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return None


def apply_config(args) -> int:
    """Fill the flags not given from the config file, then the defaults. 0, or 2 with a message."""
    from lab.config import load_config
    from lab.errors import LabError

    try:
        config = load_config(args.config)
    except LabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.config:
        from pathlib import Path

        from lab import remotes

        remotes.config_override = Path(args.config).expanduser()  # its [remotes.NAME] tables too
    if args.model:
        args.base_model = args.chat_model = args.model
    args.base_model = args.base_model or config.base_model or BASE_DEFAULT
    args.chat_model = args.chat_model or config.chat_model or CHAT_DEFAULT
    args.device = args.device or config.device or "auto"
    args.backend = args.backend or config.backend or "auto"
    args.theme = args.theme or config.theme or ("projector-dark" if args.command == "talk" else None)
    args.config_data = config
    return 0


def rlhf_command(args) -> int:
    """The three RLHF steps headless; each event is one line, then the over-rated outputs (and the defences)."""
    from dataclasses import replace

    from lab.errors import LabError
    from lab.rlhf import DEFENCES, RLHF, RLHFConfig, summary

    changes = {k: v for k, v in {"prompts": args.prompts, "rm_steps": args.rm_steps, "rl_steps": args.steps,
                                 "kl_coef": args.kl, "patience": args.patience, "seed": args.seed}.items()
               if v is not None}
    try:
        path = args.source
        if args.source == "tiny-chat":
            from lab.catalogue import resolve

            path = resolve("tiny-chat").path
        job = RLHF.from_checkpoint(path, replace(RLHFConfig(), **changes))
        arms = {"run": job}
        for event in job.run():
            print(event.line(), flush=True)
        if args.defences and job.reward_model is not None:
            for name, change in DEFENCES.items():
                if name != "none":
                    arms[name] = arm = job.arm(**change)
                    for event in arm.reinforce():
                        print(f"{name}: {event.line()}", flush=True)
        print(job.cost().line())
        if job.rm_accuracy is not None:
            print(f"reward model: held-out pair accuracy {job.rm_accuracy:.1%} (chance 50%)")
        for name, arm in arms.items():
            print(f"{'no defence' if name == 'run' else name}: {summary(arm.curves)}")
        print("most over-rated by the reward model:")
        for o in job.over_rated:
            print(f"  step {o.step} rm {o.rm_score:+.2f} true {o.true_score:.2f}  {o.prompt}\n    {o.reply!r}")
    except LabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted")
        return 130
    return 0


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    keep_freed_memory()
    args.argv = argv  # what `train --nproc N` passes on to each of its processes
    if code := apply_config(args):
        return code
    if args.command == "doctor":
        from lab.doctor import report

        print("\n".join(report()))
        return 0
    if args.command == "models":
        from lab.catalogue import discover
        from lab.doctor import human_size

        for e in discover():
            role = f"  [{e.role} default]" if e.role else ""
            print(f"{e.name:<28} {e.kind:<9} {human_size(e.size_bytes):>9}  {e.source}{role}\n{'':<28} {e.path}")
        print_remotes()
        return 0
    if args.command == "train":
        return train_command(args)
    if args.command == "sft":
        return sft_command(args)
    if args.command == "rl":
        return rl_command(args)
    if args.command == "rlhf":
        return rlhf_command(args)
    if args.command == "talk":
        return talk_command(args)
    if args.command == "serve":
        return serve_command(args)
    app = build_app(args)
    if app is None:
        return 2
    app.run()
    for note in app.exit_notes:  # the terminal is back: say what quitting stopped and saved
        print(note)
    return app.return_code or 0


if __name__ == "__main__":
    sys.exit(main())
