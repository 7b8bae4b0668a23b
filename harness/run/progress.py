"""The live view of a run: one line per notable event, a progress bar per training phase."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn


class RunDisplay:
    def __init__(self, console: Console | None = None) -> None:
        self.console = console or Console(stderr=True, highlight=False)
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.fields[detail]}"),
            TimeElapsedColumn(),
            console=self.console,
            transient=True,
        )
        self._tasks: dict[str, Any] = {}
        self.framework = ""

    def __enter__(self) -> RunDisplay:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def say(self, text: str) -> None:
        self.progress.console.print(text)

    def begin(self, framework: str) -> None:
        self.framework = framework

    def on_event(self, event: dict[str, Any]) -> None:
        kind = event.get("event")
        handler = getattr(self, f"_on_{kind}", None)
        if handler is not None:
            handler(event)

    def _on_start(self, e: dict[str, Any]) -> None:
        self.say(
            f"[bold]{self.framework}[/]: training on {e.get('device')}, {e.get('threads')} threads"
        )

    def _on_phase(self, e: dict[str, Any]) -> None:
        phase, state = e.get("phase"), e.get("state")
        if state == "start":
            self.say(f"[bold]{self.framework}[/] {phase}: started")
            return
        self._finish_bar(phase)
        if state == "done":
            acc = e.get("accuracy")
            shown = f"top-1 {acc * 100:.1f}%" if isinstance(acc, (int, float)) else "done"
            self.say(f"[bold]{self.framework}[/] {phase}: [green]{shown}[/]")
        else:
            self.say(f"[bold]{self.framework}[/] {phase}: [yellow]{state}[/] ({e.get('reason')})")

    def _on_epoch(self, e: dict[str, Any]) -> None:
        phase = str(e.get("phase"))
        key = f"{self.framework}/{phase}"
        detail = (
            f"epoch {e['epoch']}/{e['epochs']}  loss {e['loss']:.3f}  "
            f"acc {e['accuracy'] * 100:.1f}%  {e['images_per_s']:.0f} img/s"
        )
        if key not in self._tasks:
            self._tasks[key] = self.progress.add_task(
                f"{self.framework} {phase}", total=e["epochs"], detail=detail
            )
        self.progress.update(self._tasks[key], completed=e["epoch"], detail=detail)
        if not self.console.is_terminal:  # no live bar in a log: print the line
            self.say(f"{self.framework} {phase}: {detail}")

    def _on_latency(self, e: dict[str, Any]) -> None:
        self.say(
            f"{self.framework} {e.get('phase')}: latency batch {e.get('batch_size')} "
            f"p50 {e.get('p50_ms', 0):.2f} ms on {e.get('device')}, {e.get('threads')} thread(s)"
        )

    def _on_profile(self, e: dict[str, Any]) -> None:
        state = e.get("state")
        if state == "start":
            return
        colour = "green" if state == "ok" else "yellow"
        self.say(
            f"{self.framework} {e.get('phase')}: {e.get('trace')} profile [{colour}]{state}[/]"
        )

    def _finish_bar(self, phase: object) -> None:
        task = self._tasks.pop(f"{self.framework}/{phase}", None)
        if task is not None:
            self.progress.remove_task(task)
