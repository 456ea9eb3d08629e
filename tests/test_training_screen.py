"""The Training screen: start a short real run, watch it update, pause, leave, come back, stop."""

from dataclasses import replace

from textual.widgets import RichLog

from lab.train import PRESETS, Trainer
from tests.helpers import make_test_app, shown


async def wait_for(pilot, condition, tries=200):
    for _ in range(tries):
        if condition():
            return True
        await pilot.pause(0.1)
    return condition()


async def test_start_watch_pause_leave_return_stop(tmp_path):
    app = make_test_app(load_models=False, training_dir=tmp_path)
    async with app.run_test(size=(130, 36)) as pilot:
        await pilot.press("f5")
        await pilot.pause()
        assert "preset cpu-quick · idle" in shown(app.screen.query_one("#train-readout"))
        await pilot.press("s")
        assert await wait_for(pilot, lambda: app.training.last is not None and app.training.last.step >= 60)
        screen = app.screen
        await pilot.pause(0.3)
        readout = shown(screen.query_one("#train-readout"))
        assert "running" in readout and "loss " in readout and "device cpu" in readout
        assert "loss" in shown(screen.query_one("#train-plot"))  # the plot's title: it is drawn
        log_lines = [str(line.text) for line in screen.query_one("#train-samples", RichLog).lines]
        assert any("step 0" in line for line in log_lines) and any("step 50" in line for line in log_lines)
        await pilot.press("p")
        await pilot.pause(0.5)
        paused_at = app.training.last.step
        await pilot.pause(0.5)
        assert app.training.state == "paused" and app.training.last.step == paused_at
        await pilot.press("c")  # save while paused
        await pilot.pause()
        assert (tmp_path / "ckpt.pt").exists()
        await pilot.press("f1", "p")  # leaving the screen does not stop the run ("p" types into the text box)
        await pilot.press("f5")
        await pilot.pause(0.3)
        assert "paused" in shown(app.screen.query_one("#train-readout"))
        await pilot.press("p")
        assert await wait_for(pilot, lambda: app.training.last.step > paused_at)
        await pilot.press("x")
        assert await wait_for(pilot, lambda: app.training.state == "finished")
        assert "checkpoint" in app.training.message


async def test_quitting_stops_training_with_a_final_checkpoint(tmp_path):
    app = make_test_app(load_models=False, training_dir=tmp_path)
    async with app.run_test(size=(130, 36)) as pilot:
        await pilot.press("f5", "n", "s")  # the "cpu" preset: 2,000 steps, far from done when we quit
        assert await wait_for(pilot, lambda: app.training.last is not None and app.training.last.step >= 5)
    assert app.training.state == "finished"
    assert app.training.last.stopped == "stopped"
    assert (tmp_path / "ckpt.pt").exists()


def test_training_screen_snapshot(snap_compare, tmp_path):
    """Mid-run, seeded: 120 steps of cpu-quick recorded, then shown (speed readouts off)."""
    app = make_test_app(load_models=False, training_dir=tmp_path)

    async def run_before(pilot):
        t = Trainer(replace(PRESETS["cpu-quick"], out_dir=str(tmp_path), seed=3))
        for ev in t.run():
            app.training.record(ev)
            if ev.step >= 120:
                break
        app.training.state = "paused"
        await pilot.press("f5")
        app.screen.show_speed = False
        app.screen.redraw(force=True)
        await pilot.pause()

    assert snap_compare(app, run_before=run_before, terminal_size=(120, 34))


async def test_gpu_preset_on_a_cpu_machine_is_refused_with_a_reason(tmp_path):
    import torch

    if torch.cuda.is_available():
        return  # the refusal is for machines without a GPU
    app = make_test_app(load_models=False, training_dir=tmp_path)
    async with app.run_test(size=(130, 36)) as pilot:
        await pilot.press("f5", "n", "n", "n", "s")  # cpu-quick -> cpu -> gpu-small -> gpu-gpt2, start
        assert await wait_for(pilot, lambda: app.training.state == "failed")
        await pilot.pause(0.3)
        assert "sized for a GPU" in shown(app.screen.query_one("#train-readout"))
        assert app.is_running
