"""The `deepdive-lab` command.

    deepdive-lab                      start the lab (the Textual app)
    deepdive-lab doctor               versions, devices and every model found
    deepdive-lab models               the catalogue: names, sources, sizes
    deepdive-lab train [--preset cpu] pretrain the tiny GPT headless, one line per step
Flags: --model / --base-model / --chat-model NAME|PATH|REMOTE, --device auto|cpu|cuda|mps, --backend.
A REMOTE is `openai+http://host:8000/v1#model` (completions), `openai-chat+...` (chat) or a
remote's name (`deepdive-lab models` lists them).
"""

from __future__ import annotations

import argparse
import sys

from lab.catalogue import BASE_DEFAULT, CHAT_DEFAULT


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="deepdive-lab", description="A terminal lab for seeing how language models work.")
    p.add_argument("--base-model", default=BASE_DEFAULT, help=f"base (pretrained) model: name, .gguf path, HF folder, hub id or remote (default {BASE_DEFAULT})")
    p.add_argument("--chat-model", default=CHAT_DEFAULT, help=f"chat (assistant) model (default {CHAT_DEFAULT})")
    p.add_argument("--model", help="use this one model for both roles")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps", "gpu"], help="where models run (default: GPU when there is one)")
    p.add_argument("--backend", default="auto", choices=["auto", "llama.cpp", "transformers"], help="backend for GGUF models (default llama.cpp)")
    sub = p.add_subparsers(dest="command")
    sub.add_parser("doctor", help="versions, devices and the models found")
    sub.add_parser("models", help="list the models the catalogue finds")
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
    t.add_argument("--resume", help="continue from this checkpoint")
    t.add_argument("--quiet", action="store_true", help="print only evaluation steps")
    return p


def train_command(args) -> int:
    from dataclasses import replace

    from lab.errors import LabError
    from lab.train import PRESETS, Trainer

    if args.preset not in PRESETS:
        print(f"unknown preset {args.preset!r}; choose from {', '.join(PRESETS)}", file=sys.stderr)
        return 2
    overrides = {k: v for k, v in {
        "data": args.data, "tokenizer": args.tokenizer, "max_iters": args.iters, "n_layer": args.layers,
        "n_head": args.heads, "n_embd": args.width, "block_size": args.context, "batch_size": args.batch,
        "dropout": args.dropout, "learning_rate": args.lr, "eval_interval": args.eval_interval,
        "sample_interval": args.sample_interval, "seed": args.seed, "out_dir": args.out,
        "device": args.device if args.device != "auto" else None}.items() if v is not None}
    if args.iters is not None:
        overrides["lr_decay_iters"] = args.iters
    try:
        trainer = (Trainer.resume_from(args.resume, **overrides) if args.resume
                   else Trainer(replace(PRESETS[args.preset], **overrides)))
        print(f"training {trainer.model.n_params():,} parameters on {trainer.device}, "
              f"{len(trainer.train_data):,} training tokens ({trainer.corpus.kind}, vocab {len(trainer.corpus.pieces)})",
              flush=True)
        for event in trainer.run():
            if not args.quiet or event.val_loss is not None or event.stopped:
                print(event.line(), flush=True)
    except LabError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        path = trainer.save()
        print(f"interrupted at step {trainer.step}; checkpoint {path}")
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


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.model:
        args.base_model = args.chat_model = args.model
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
    from screens.app import make_app

    app = make_app(base_model=args.base_model, chat_model=args.chat_model, device=args.device, backend=args.backend)
    app.run()
    return app.return_code or 0


if __name__ == "__main__":
    sys.exit(main())
