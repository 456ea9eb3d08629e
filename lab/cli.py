"""The `deepdive-lab` command.

    deepdive-lab                      start the lab (the Textual app)
    deepdive-lab doctor               versions, devices and every model found
    deepdive-lab models               the catalogue: names, sources, sizes
Flags: --model / --base-model / --chat-model NAME|PATH, --device auto|cpu|cuda|mps, --backend.
"""

from __future__ import annotations

import argparse
import sys

from lab.catalogue import BASE_DEFAULT, CHAT_DEFAULT


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="deepdive-lab", description="A terminal lab for seeing how language models work.")
    p.add_argument("--base-model", default=BASE_DEFAULT, help=f"base (pretrained) model: name, .gguf path, HF folder or hub id (default {BASE_DEFAULT})")
    p.add_argument("--chat-model", default=CHAT_DEFAULT, help=f"chat (assistant) model (default {CHAT_DEFAULT})")
    p.add_argument("--model", help="use this one model for both roles")
    p.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps", "gpu"], help="where models run (default: GPU when there is one)")
    p.add_argument("--backend", default="auto", choices=["auto", "llama.cpp", "transformers"], help="backend for GGUF models (default llama.cpp)")
    sub = p.add_subparsers(dest="command")
    sub.add_parser("doctor", help="versions, devices and the models found")
    sub.add_parser("models", help="list the models the catalogue finds")
    return p


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
        return 0
    from screens.app import make_app

    app = make_app(base_model=args.base_model, chat_model=args.chat_model, device=args.device, backend=args.backend)
    app.run()
    return app.return_code or 0


if __name__ == "__main__":
    sys.exit(main())
