"""What the persona client scripts share: PASS lines and bounded waits."""
import time


def ok(what):
    print('PASS', what, flush=True)


def wait(check, what, timeout=30):
    end = time.time() + timeout
    while time.time() < end:
        if check():
            return
        time.sleep(0.2)
    raise AssertionError('timed out waiting for ' + what)
