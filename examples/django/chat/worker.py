"""One background thread that runs jobs in order: the example's stand-in for a task queue.

Jobs take database ids and look their rows up, so work that a crash interrupts is still in the
database; `resume` (the first job of every worker) finds it again.
"""

import logging
import queue
import threading
import time
from collections.abc import Callable

from django.db import close_old_connections

log = logging.getLogger(__name__)


class Worker:
    def __init__(self, resume: Callable[[], None] | None = None):
        self._jobs: queue.Queue = queue.Queue()
        self._resume = resume
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Start the thread, once; later calls do nothing."""
        with self._lock:
            if self._thread is not None:
                return
            if self._resume is not None:
                self._jobs.put((self._resume, ()))
            self._thread = threading.Thread(target=self._run, name="chat-worker", daemon=True)
            self._thread.start()

    def submit(self, job: Callable[..., None], *args) -> None:
        self.start()
        self._jobs.put((job, args))

    def wait_idle(self, timeout: float) -> bool:
        """Whether every submitted job finished within `timeout` seconds (for tests)."""
        deadline = time.monotonic() + timeout
        with self._jobs.all_tasks_done:
            while self._jobs.unfinished_tasks:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._jobs.all_tasks_done.wait(remaining)
        return True

    def _run(self) -> None:
        while True:
            job, args = self._jobs.get()
            close_old_connections()
            try:
                job(*args)
            except Exception:
                log.exception("job %s%r failed", job.__name__, args)
            finally:
                close_old_connections()
                self._jobs.task_done()
