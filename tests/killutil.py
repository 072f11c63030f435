"""Kill a subprocess with SIGKILL as soon as a condition on its output holds (for resume tests)."""
import signal
import time


def kill_when(proc, ready, timeout: float = 120.0) -> bool:
    """Poll ``ready()`` (exceptions count as not ready) until it holds, then SIGKILL ``proc``.
    Returns True if the process was still running and was killed."""
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        try:
            if ready():
                break
        except Exception:
            pass
        time.sleep(0.05)
    if proc.poll() is not None:
        return False
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    return True
